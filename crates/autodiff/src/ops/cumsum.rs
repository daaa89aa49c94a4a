//! `cumsum`: running sums along an axis; the gradient is the running sum of the upstream
//! gradient taken from the end.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Running sums along `axis`: element j is the sum of elements 0 to j.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?);
    /// let c = x.cumsum(0)?;
    /// assert_eq!(c.value().to_vec(), vec![1.0, 3.0, 6.0]);
    /// // x_0 appears in three sums, x_2 in one.
    /// assert_eq!(tape.backward(c.sum())?[x].to_vec(), vec![3.0, 2.0, 1.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis >= rank`.
    pub fn cumsum(self, axis: usize) -> Result<Self> {
        self.try_record_unary(|x| Ok((Op::Cumsum { axis: axis as u32 }, x.cumsum(axis)?, None)))
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, axis: usize) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let g = ctx.grad().cumsum_reverse(axis)?;
    ctx.accumulate(0, g)
}
