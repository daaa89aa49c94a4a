//! `neg`: the elementwise negation. y = -x; dy/dx = -1. Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise negation: y = -x; dy/dx = -1.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let y = x.neg();
    /// assert!((y.item()? - -2.0).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - -1.0).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[allow(
        clippy::should_implement_trait,
        reason = "the same name as on Tensor; the operator is also implemented and panics where this returns an error"
    )]
    #[inline]
    pub fn neg(self) -> Self {
        self.record_elementwise(Op::Neg, forward, |x| x.neg())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    -x
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, _x: E, _y: E) -> E {
    -g
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
