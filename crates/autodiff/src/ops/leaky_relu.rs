//! `leaky_relu`: Elementwise leaky ReLU: y = x for x > 0, else `slope` x; dy/dx = 1 for x > 0, else `slope` (so `slope` at 0, as PyTorch). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise leaky ReLU: y = x for x > 0, else `slope` x; dy/dx = 1 for x > 0, else `slope` (so `slope` at 0, as PyTorch).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(-2.0));
    /// let y = x.leaky_relu(0.1);
    /// assert!((y.item()? - -0.2).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 0.1).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn leaky_relu(self, slope: E) -> Self {
        self.record_elementwise(
            Op::LeakyRelu(slope),
            |x| forward(x, slope),
            |x| x.leaky_relu(slope),
        )
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E, p: E) -> E {
    if x > E::ZERO { x } else { p * x }
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, _y: E, p: E) -> E {
    if x > E::ZERO { g } else { g * p }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, p: E) -> Result<()> {
    ctx.accumulate_elementwise(0, |g, x, y| derivative(g, x, y, p))
}
