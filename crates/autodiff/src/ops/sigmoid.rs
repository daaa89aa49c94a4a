//! `sigmoid`: the elementwise logistic sigmoid. y = 1 / (1 + e^-x), computed stably for any x; dy/dx = y (1 - y) (the saved output is reused). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise logistic sigmoid: y = 1 / (1 + e^-x), computed stably for any x; dy/dx = y (1 - y) (the saved output is reused).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.sigmoid();
    /// assert!((y.item()? - 0.5).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 0.25).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn sigmoid(self) -> Self {
        self.record_elementwise(Op::Sigmoid, forward, |x| x.sigmoid())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    x.sigmoid()
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, _x: E, y: E) -> E {
    g * y * (E::ONE - y)
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
