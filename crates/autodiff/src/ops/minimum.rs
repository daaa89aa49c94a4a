//! `minimum`: the elementwise smaller of two values, with NumPy broadcasting. dy/da = 1 where
//! a < b, 0 where a > b, and 1/2 at ties (the gradient split evenly, as PyTorch); dy/db the
//! mirror image. Each operand's gradient is summed back to its shape.

use std::borrow::Cow;

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// The elementwise minimum with broadcasting; at ties each operand gets half the gradient.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::from_vec(vec![1.0, 5.0, 3.0], &[3])?);
    /// let b = tape.var(Tensor::scalar(3.0));
    /// let y = a.minimum(b)?;
    /// assert_eq!(y.value().to_vec(), vec![1.0, 3.0, 3.0]);
    /// let g = tape.backward(y.sum())?;
    /// assert_eq!(g[a].to_vec(), vec![1.0, 0.0, 0.5]);
    /// assert_eq!(g[b].item()?, 1.5);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the shapes do not broadcast, or `other` belongs to another tape.
    #[inline]
    pub fn minimum(self, other: Var<'t, E>) -> Result<Self> {
        self.record_elementwise_binary(other, "minimum", Op::Minimum, forward, |a, b| a.minimum(b))
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(a: E, b: E) -> E {
    a.min(b)
}

/// The share of the gradient that goes to `a`: 1, 0, or 1/2 at a tie.
#[inline]
fn share<E: Float>(a: E, b: E) -> E {
    if a < b {
        E::ONE
    } else if a > b {
        E::ZERO
    } else {
        E::from_f64(0.5)
    }
}

/// The gradient contributions (g dy/da, g dy/db) for one element.
#[inline]
pub(super) fn derivatives<E: Float>(g: E, a: E, b: E, _y: E) -> [E; 2] {
    [g * share(a, b), g * share(b, a)]
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_binary(
        0,
        |g, a, b, y| derivatives(g, a, b, y)[0],
        |g, a, b, _y| Ok(Cow::Owned(g.mul(&a.zip_with(b, "minimum", share)?)?)),
    )?;
    ctx.accumulate_binary(
        1,
        |g, a, b, y| derivatives(g, a, b, y)[1],
        |g, a, b, _y| Ok(Cow::Owned(g.mul(&b.zip_with(a, "minimum", share)?)?)),
    )
}
