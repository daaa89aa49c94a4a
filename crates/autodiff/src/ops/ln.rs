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
    pub fn ln(self) -> Self {
        self.record_unary(Op::Ln, |x| x.ln())
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, |g, x, _y| g / x)
}
