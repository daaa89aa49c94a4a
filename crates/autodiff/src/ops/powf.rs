//! `powf`: y = x^p for a constant exponent p; dy/dx = p x^(p-1). Shapes: elementwise.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise power with a constant exponent: y = x^p; dy/dx = p x^(p-1).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let y = x.powf(3.0);
    /// assert_eq!(y.item()?, 8.0);
    /// assert_eq!(tape.backward(y)?[x].item()?, 12.0);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn powf(self, p: E) -> Self {
        self.record_elementwise(Op::PowF(p), |v| v.powf(p), |x| x.powf(p))
    }
}

/// The gradient contribution g dy/dx = g p x^(p-1) for one element; 0 for p = 0 (x^0 is
/// constant, so its derivative is 0 even at x = 0, where p x^(p-1) would be 0 * inf = NaN: as
/// PyTorch's `pow_backward`, which masks exponent 0 to zeros).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, p: E) -> E {
    if p == E::ZERO {
        return E::ZERO;
    }
    g * p * x.powf(p - E::ONE)
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, p: E) -> Result<()> {
    ctx.accumulate_elementwise(0, |g, x, _y| derivative(g, x, p))
}
