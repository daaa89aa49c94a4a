//! `max_axis`: maxima along one axis. The gradient flows to the first maximal element of each
//! slice only (as in PyTorch's `max(dim)`).

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Maxima along `axis`; the gradient goes to the first maximal element of each slice.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 5.0, 3.0, 7.0, 2.0, 0.0], &[2, 3])?);
    /// let m = x.max_axis(1, false)?;
    /// assert_eq!(m.value().to_vec(), vec![5.0, 7.0]);
    /// assert_eq!(tape.backward(m.sum())?[x].to_vec(), vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis >= rank` or the axis is empty.
    pub fn max_axis(self, axis: usize, keepdim: bool) -> Result<Self> {
        let argmax = self.with_value(|x| x.argmax_indices(axis))?;
        let (start, len) = self.tape().push_indices(&argmax);
        self.try_record_unary(|x| {
            let value = x.max_axis(axis, keepdim)?;
            Ok((
                Op::MaxAxis {
                    axis: axis as u32,
                    keepdim,
                    start,
                    len,
                },
                value,
                None,
            ))
        })
    }
}

pub(super) fn backward<E: Float>(
    ctx: &mut BackwardCtx<'_, E>,
    axis: usize,
    _keepdim: bool,
    argmax: &[usize],
) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let (g, x) = (ctx.grad().as_slice(), ctx.input(0));
    let shape = x.shape();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut full = Tensor::zeros(shape);
    let data = full.as_mut_slice();
    for (r, (&j, &gv)) in argmax.iter().zip(g).enumerate() {
        let (o, i) = (r / inner.max(1), r % inner.max(1));
        data[(o * n + j) * inner + i] += gv;
    }
    ctx.accumulate(0, full)
}
