//! `log1p`: Elementwise ln(1 + x), accurate near 0; dy/dx = 1 / (1 + x). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise ln(1 + x), accurate near 0; dy/dx = 1 / (1 + x).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.log1p();
    /// assert!((y.item()? - 0.0).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 1.0).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[doc(alias = "ln_1p")]
    #[inline]
    pub fn log1p(self) -> Self {
        self.record_elementwise(Op::Log1p, forward, |x| x.log1p())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    x.ln_1p()
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, _y: E) -> E {
    g / (E::ONE + x)
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
