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
    pub fn powf(self, p: E) -> Self {
        self.record_unary(Op::PowF(p), |x| x.powf(p))
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, p: E) -> Result<()> {
    ctx.accumulate_elementwise(0, |g, x, _y| g * p * x.powf(p - E::ONE))
}
