//! `div`: the elementwise quotient with NumPy broadcasting. y = a / b; dy/da = 1 / b, dy/db = -a / b^2 = -y / b. Each operand's gradient is
//! summed back to that operand's shape.

use std::borrow::Cow;

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// The elementwise quotient with broadcasting: y = a / b; dy/da = 1 / b, dy/db = -a / b^2 = -y / b.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let (a, b) = (tape.var(Tensor::scalar(3.0)), tape.var(Tensor::scalar(2.0)));
    /// let y = a.div(b)?;
    /// assert_eq!(y.item()?, 1.5);
    /// let grads = tape.backward(y)?;
    /// assert_eq!((grads[a].item()?, grads[b].item()?), (0.5, -0.75));
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
    pub fn div(self, other: Var<'t, E>) -> Result<Self> {
        self.record_binary(other, "div", |a, b| Ok((Op::Div, a.div(b)?, None)))
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_binary(
        0,
        |g, _a, b, _y| g / b,
        |g, _a, b, _y| Ok(Cow::Owned(g.div(b)?)),
    )?;
    ctx.accumulate_binary(
        1,
        |g, _a, b, y| -g * y / b,
        |g, _a, b, y| Ok(Cow::Owned(g.mul(y)?.div(b)?.neg())),
    )
}
