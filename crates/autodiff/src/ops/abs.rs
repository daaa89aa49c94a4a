//! `abs`: the elementwise absolute value. y = |x|; dy/dx = sign(x), taken as 0 at x = 0 (the subgradient PyTorch uses). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise absolute value: y = |x|; dy/dx = sign(x), taken as 0 at x = 0 (the subgradient PyTorch uses).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(-3.0));
    /// let y = x.abs();
    /// assert!((y.item()? - 3.0).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - -1.0).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn abs(self) -> Self {
        self.record_elementwise(Op::Abs, forward, |x| x.abs())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    x.abs()
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, _y: E) -> E {
    if x > E::ZERO {
        g
    } else if x < E::ZERO {
        -g
    } else {
        E::ZERO
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
