//! `mean`: the mean of all elements, a rank-0 var; d/dx_i = 1 / n.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The mean of all elements (rank 0); d/dx_i = 1 / n.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 6.0], &[2, 2])?);
    /// let m = x.mean();
    /// assert_eq!(m.item()?, 3.0);
    /// assert_eq!(tape.backward(m)?[x].to_vec(), vec![0.25; 4]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn mean(self) -> Self {
        self.record_unary(Op::Mean, |x| x.mean())
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let n = E::from_usize(ctx.input(0).len());
    let g = ctx.grad().item()? / n;
    super::sum::accumulate_constant(ctx, g)
}
