//! `masked_fill`: a constant where a mask is nonzero, the input elsewhere. The gradient flows
//! only where the mask is zero. Shapes: the mask broadcasts to the input's shape, which the
//! output keeps.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// `value` where `mask` is nonzero, else this var's element (PyTorch's `masked_fill`), for
    /// example -inf above the diagonal of attention scores before a softmax.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?);
    /// let upper = Tensor::from_vec(vec![0.0, 1.0, 0.0, 0.0], &[2, 2])?;
    /// let y = x.masked_fill(&upper, -9.0)?;
    /// assert_eq!(y.value().to_vec(), vec![1.0, -9.0, 3.0, 4.0]);
    /// assert_eq!(tape.backward(y.sum())?[x].to_vec(), vec![1.0, 0.0, 1.0, 1.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `mask` does not broadcast to this var's shape.
    pub fn masked_fill(self, mask: &Tensor<E>, value: E) -> Result<Self> {
        self.try_record_unary(|x| {
            let y = x.masked_fill(mask, value)?;
            Ok((Op::MaskedFill(value), y, Some(mask.clone())))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let g = ctx.grad();
    let mask = ctx.saved().broadcast_to(g.shape())?;
    let (m, gs) = (mask.as_slice(), g.as_slice());
    let t = Tensor::from_fn(g.shape(), |i| if m[i] != E::ZERO { E::ZERO } else { gs[i] });
    ctx.accumulate(0, t)
}
