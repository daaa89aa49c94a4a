//! `pad`: a constant border around every axis; the gradient is the upstream gradient with the
//! border cropped off.

use tapegrad_tensor::{Float, TensorError};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Padded with `value`: `pads[d] = (before, after)` for each axis `d`, first axis first
    /// (unlike `F.pad`, which lists the last axis first).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[1, 2])?);
    /// let y = x.pad(&[(1, 0), (0, 1)], -1.0)?;
    /// assert_eq!(y.value().to_vec(), vec![-1.0, -1.0, -1.0, 1.0, 2.0, -1.0]);
    /// let w = tape.constant(Tensor::from_fn(&[2, 3], |i| i as f64));
    /// assert_eq!(tape.backward(y.mul(w)?.sum())?[x].to_vec(), vec![3.0, 4.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Unless there is one pair per axis; for a result too large to hold.
    pub fn pad(self, pads: &[(usize, usize)], value: E) -> Result<Self> {
        let flat: Vec<usize> = pads.iter().flat_map(|&(b, a)| [b, a]).collect();
        let (start, len) = self.tape().push_indices(&flat);
        self.try_record_unary(|x| Ok((Op::Pad { start, len, value }, x.pad(pads, value)?, None)))
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, flat: &[usize]) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let pads: Vec<(usize, usize)> = flat.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let g = ctx.grad().crop(&pads).map_err(|e: TensorError| e)?;
    ctx.accumulate(0, g)
}
