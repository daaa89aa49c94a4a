//! `recip`: Elementwise reciprocal: y = 1 / x; dy/dx = -y^2 (-inf at 0, as PyTorch). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise reciprocal: y = 1 / x; dy/dx = -y^2 (-inf at 0, as PyTorch).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let y = x.recip();
    /// assert!((y.item()? - 0.5).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - -0.25).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[doc(alias = "reciprocal")]
    #[inline]
    pub fn recip(self) -> Self {
        self.record_elementwise(Op::Recip, forward, |x| x.recip())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    E::ONE / x
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, _x: E, y: E) -> E {
    -g * y * y
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
