//! `exp`: the elementwise exponential. y = e^x; dy/dx = e^x = y (the saved output is reused). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise exponential: y = e^x; dy/dx = e^x = y (the saved output is reused).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.exp();
    /// assert!((y.item()? - 1.0).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 1.0).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn exp(self) -> Self {
        self.record_unary(Op::Exp, |x| x.exp())
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, |g, _x, y| g * y)
}
