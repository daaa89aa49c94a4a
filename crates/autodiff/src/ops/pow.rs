//! `pow`: the elementwise power with a differentiable exponent, with NumPy broadcasting.
//! y = a^b; dy/da = b a^(b-1) (0 where b = 0), dy/db = a^b ln a (0 where a = 0 and b >= 0), as
//! PyTorch's `pow_backward_self` and `pow_backward_exponent`.

use std::borrow::Cow;

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// The elementwise power `self^exponent` with broadcasting (see [`Var::powf`] for a
    /// constant exponent).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let (a, b) = (tape.var(Tensor::scalar(2.0)), tape.var(Tensor::scalar(3.0)));
    /// let y = a.pow(b)?;
    /// assert_eq!(y.item()?, 8.0);
    /// let g = tape.backward(y)?;
    /// assert_eq!(g[a].item()?, 12.0);
    /// assert!((g[b].item()? - 8.0 * 2f64.ln()).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the shapes do not broadcast, or `exponent` belongs to another tape.
    #[inline]
    pub fn pow(self, exponent: Var<'t, E>) -> Result<Self> {
        self.record_elementwise_binary(exponent, "pow", Op::Pow, forward, |a, b| {
            a.zip_with(b, "pow", forward)
        })
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(a: E, b: E) -> E {
    a.powf(b)
}

/// dy/da: b a^(b-1), 0 for b = 0 (a^0 is constant).
#[inline]
fn d_base<E: Float>(a: E, b: E) -> E {
    if b == E::ZERO {
        E::ZERO
    } else {
        b * a.powf(b - E::ONE)
    }
}

/// dy/db: a^b ln a, 0 for a = 0 and b >= 0 (where a^b is 0 or 1 for every b near it).
#[inline]
fn d_exponent<E: Float>(a: E, b: E) -> E {
    if a == E::ZERO && b >= E::ZERO {
        E::ZERO
    } else {
        a.powf(b) * a.ln()
    }
}

/// The gradient contributions (g dy/da, g dy/db) for one element.
#[inline]
pub(super) fn derivatives<E: Float>(g: E, a: E, b: E, _y: E) -> [E; 2] {
    [g * d_base(a, b), g * d_exponent(a, b)]
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_binary(
        0,
        |g, a, b, y| derivatives(g, a, b, y)[0],
        |g, a, b, _y| Ok(Cow::Owned(g.mul(&a.zip_with(b, "pow", d_base)?)?)),
    )?;
    ctx.accumulate_binary(
        1,
        |g, a, b, y| derivatives(g, a, b, y)[1],
        |g, a, b, _y| Ok(Cow::Owned(g.mul(&a.zip_with(b, "pow", d_exponent)?)?)),
    )
}
