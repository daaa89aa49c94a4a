//! `broadcast_to`: NumPy broadcasting to a larger shape; the gradient is summed back.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Broadcasts to `shape`; the gradient is the upstream gradient summed back to this shape.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let b = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// let wide = b.broadcast_to(&[3, 2])?;
    /// assert_eq!(wide.value().to_vec(), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// assert_eq!(tape.backward(wide.sum())?[b].to_vec(), vec![3.0, 3.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When this var's shape does not broadcast to `shape`.
    pub fn broadcast_to(self, shape: &[usize]) -> Result<Self> {
        self.try_record_unary(|x| Ok((Op::BroadcastTo, x.broadcast_to(shape)?, None)))
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let g = ctx.grad();
    ctx.accumulate_reduced(0, g)
}
