//! `ln`: the elementwise natural logarithm. y = ln x; dy/dx = 1 / x. Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise natural logarithm: y = ln x; dy/dx = 1 / x.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let y = x.ln();
    /// assert!((y.item()? - std::f64::consts::LN_2).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 0.5).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[doc(alias = "log")]
    #[inline]
    pub fn ln(self) -> Self {
        self.record_elementwise(Op::Ln, forward, |x| x.ln())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    x.ln()
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, _y: E) -> E {
    g / x
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
