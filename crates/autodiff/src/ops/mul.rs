//! `mul`: the elementwise product with NumPy broadcasting. y = a b; dy/da = b, dy/db = a. Each operand's gradient is
//! summed back to that operand's shape.

use std::borrow::Cow;

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// The elementwise product with broadcasting: y = a b; dy/da = b, dy/db = a.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let (a, b) = (tape.var(Tensor::scalar(2.0)), tape.var(Tensor::scalar(3.0)));
    /// let y = a.mul(b)?;
    /// assert_eq!(y.item()?, 6.0);
    /// let grads = tape.backward(y)?;
    /// assert_eq!((grads[a].item()?, grads[b].item()?), (3.0, 2.0));
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the shapes do not broadcast, or `other` belongs to another tape.
    #[allow(
        clippy::should_implement_trait,
        reason = "the same name as on Tensor; the operator is also implemented and panics where this returns an error"
    )]
    #[inline(always)]
    pub fn mul(self, other: Var<'t, E>) -> Result<Self> {
        self.record_elementwise_binary(other, "mul", Op::Mul, forward, |a, b| a.mul(b))
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(a: E, b: E) -> E {
    a * b
}

/// The gradient contributions (g dy/da, g dy/db) for one element (y the output).
#[inline]
pub(super) fn derivatives<E: Float>(g: E, a: E, b: E, _y: E) -> [E; 2] {
    [g * b, g * a]
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_binary(
        0,
        |g, a, b, y| derivatives(g, a, b, y)[0],
        |g, _a, b, _y| Ok(Cow::Owned(g.mul(b)?)),
    )?;
    ctx.accumulate_binary(
        1,
        |g, a, b, y| derivatives(g, a, b, y)[1],
        |g, a, _b, _y| Ok(Cow::Owned(g.mul(a)?)),
    )
}
