//! `clamp`: every element limited to `[lo, hi]`. dy/dx = 1 strictly inside, 0 outside and at
//! `lo` and `hi` themselves. Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Limits every element to `[lo, hi]`: y = min(max(x, lo), hi); the gradient is 1 where
    /// lo < x < hi and 0 elsewhere, including at x == lo and x == hi.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![-2.0, 0.5, 1.0, 3.0], &[4])?);
    /// let y = x.clamp(0.0, 1.0)?;
    /// assert_eq!(y.value().to_vec(), vec![0.0, 0.5, 1.0, 1.0]);
    /// assert_eq!(tape.backward(y.sum())?[x].to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `lo > hi` or either bound is NaN.
    #[doc(alias = "clip")]
    pub fn clamp(self, lo: E, hi: E) -> Result<Self> {
        if lo
            .partial_cmp(&hi)
            .is_none_or(|o| o == std::cmp::Ordering::Greater)
        {
            return Err(tapegrad_tensor::TensorError::Invalid {
                op: "clamp",
                reason: format!("the bounds must satisfy lo <= hi, got lo {lo} and hi {hi}"),
            }
            .into());
        }
        Ok(self.record_elementwise(
            Op::Clamp { lo, hi },
            |x| forward(x, lo, hi),
            |x| x.clamp(lo, hi),
        ))
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E, lo: E, hi: E) -> E {
    x.max(lo).min(hi)
}

/// The gradient contribution g dy/dx for one element.
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, lo: E, hi: E) -> E {
    if x > lo && x < hi { g } else { E::ZERO }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, lo: E, hi: E) -> Result<()> {
    ctx.accumulate_elementwise(0, |g, x, _y| derivative(g, x, lo, hi))
}
