//! `sum`: the sum of all elements, a rank-0 var. Every element's gradient is the upstream
//! scalar.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The sum of all elements (rank 0); d/dx_i = 1.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?);
    /// let s = x.sum();
    /// assert_eq!(s.item()?, 6.0);
    /// assert_eq!(tape.backward(s)?[x].to_vec(), vec![1.0; 3]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn sum(self) -> Self {
        self.record_unary(Op::Sum, |x| x.sum())
    }
}

/// Adds the constant `v` to every element of input 0's gradient.
pub(super) fn accumulate_constant<E: Float>(ctx: &mut BackwardCtx<'_, E>, v: E) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let shape = ctx.input(0).shape();
    match ctx.slot(0) {
        Some(acc) => acc.map_inplace(|a| a + v),
        slot @ None => *slot = Some(Tensor::full(shape, v)),
    }
    Ok(())
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let g = ctx.grad().item()?;
    accumulate_constant(ctx, g)
}
