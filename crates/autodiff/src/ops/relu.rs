//! `relu`: the elementwise rectified linear unit. y = max(x, 0); dy/dx = 1 for x > 0, else 0. Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise rectified linear unit: y = max(x, 0); dy/dx = 1 for x > 0, else 0.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(1.5));
    /// let y = x.relu();
    /// assert!((y.item()? - 1.5).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 1.0).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn relu(self) -> Self {
        self.record_elementwise(Op::Relu, forward, |x| x.relu())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    x.max(E::ZERO)
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, _y: E) -> E {
    if x > E::ZERO { g } else { E::ZERO }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
