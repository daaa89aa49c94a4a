//! `elu`: Elementwise ELU: y = x for x > 0, else `alpha` (e^x - 1); dy/dx = 1 for x > 0, else `alpha` e^x (so `alpha` at 0, as PyTorch). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise ELU: y = x for x > 0, else `alpha` (e^x - 1); dy/dx = 1 for x > 0, else `alpha` e^x (so `alpha` at 0, as PyTorch).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.elu(1.5);
    /// assert!((y.item()? - 0.0).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 1.5).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn elu(self, alpha: E) -> Self {
        self.record_elementwise(Op::Elu(alpha), |x| forward(x, alpha), |x| x.elu(alpha))
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E, p: E) -> E {
    if x > E::ZERO { x } else { p * x.exp_m1() }
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, _y: E, p: E) -> E {
    if x > E::ZERO { g } else { g * p * x.exp() }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, p: E) -> Result<()> {
    ctx.accumulate_elementwise(0, |g, x, y| derivative(g, x, y, p))
}
