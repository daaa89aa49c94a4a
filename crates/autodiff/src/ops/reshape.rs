//! `reshape`: the same elements under a new shape; the gradient is reshaped back.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The same elements under a new shape with the same element count.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::ones(&[2, 3]));
    /// let r = a.reshape(&[3, 2])?;
    /// assert_eq!(r.shape().as_slice(), &[3, 2]);
    /// assert_eq!(tape.backward(r.sum())?[a].shape(), &[2, 3]);
    /// assert!(a.reshape(&[4]).is_err());
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the element counts differ.
    pub fn reshape(self, shape: &[usize]) -> Result<Self> {
        self.try_record_unary(|x| Ok((Op::Reshape, x.reshape(shape)?, None)))
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let g = ctx.grad().reshape(ctx.input(0).shape())?;
    ctx.accumulate(0, g)
}
