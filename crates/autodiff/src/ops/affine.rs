//! `affine`: y = scale * x + shift with constant scale and shift; dy/dx = scale. This one op
//! records every operator between a var and a plain number (`x + 1.0`, `2.0 * x`, `x / 2.0`,
//! `1.0 - x`) except `c / x`, so each costs one node.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// y = scale * x + shift elementwise; dy/dx = scale.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let y = x.affine(3.0, 1.0);
    /// assert_eq!(y.item()?, 7.0);
    /// assert_eq!(tape.backward(y)?[x].item()?, 3.0);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn affine(self, scale: E, shift: E) -> Self {
        let f = move |v: E| scale * v + shift;
        self.record_elementwise(Op::Affine { scale, shift }, f, |x| x.map(f))
    }

    /// Adds a constant to every element (one `affine` node).
    pub fn add_scalar(self, c: E) -> Self {
        self.affine(E::ONE, c)
    }

    /// Multiplies every element by a constant (one `affine` node).
    pub fn mul_scalar(self, c: E) -> Self {
        self.affine(c, E::ZERO)
    }
}

/// The gradient contribution g dy/dx for one element.
#[inline]
pub(super) fn derivative<E: Float>(g: E, scale: E) -> E {
    g * scale
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, scale: E) -> Result<()> {
    ctx.accumulate_elementwise(0, |g, _x, _y| derivative(g, scale))
}
