//! `expm1`: Elementwise e^x - 1, accurate near 0; dy/dx = e^x = y + 1. Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise e^x - 1, accurate near 0; dy/dx = e^x = y + 1.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.expm1();
    /// assert!((y.item()? - 0.0).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 1.0).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[doc(alias = "exp_m1")]
    #[inline]
    pub fn expm1(self) -> Self {
        self.record_elementwise(Op::Expm1, forward, |x| x.expm1())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    x.exp_m1()
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, _x: E, y: E) -> E {
    g * (y + E::ONE)
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
