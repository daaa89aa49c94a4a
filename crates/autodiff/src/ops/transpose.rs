//! `t`: swaps the last two axes (rank 0 and 1 unchanged). The gradient is the upstream
//! gradient transposed back.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Swaps the last two axes, as [`tapegrad_tensor::Tensor::t`]; the gradient is transposed
    /// back.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?);
    /// let at = a.t();
    /// assert_eq!(at.shape().as_slice(), &[3, 2]);
    /// let w = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2])?);
    /// let grads = tape.backward(at.mul(w)?.sum())?;
    /// assert_eq!(grads[a].to_vec(), vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn t(self) -> Self {
        self.record_unary(Op::Transpose, |x| x.t())
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let g = ctx.grad().t();
    ctx.accumulate(0, g)
}
