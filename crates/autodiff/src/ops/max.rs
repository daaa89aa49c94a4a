//! `max`: the largest element of a whole tensor. At ties the gradient is split evenly among
//! the maximal elements (as PyTorch's `max()` and `amax`).

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The largest element, as a rank-0 var; the gradient is split evenly among ties.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![3.0, 7.0, 7.0, -1.0], &[2, 2])?);
    /// let m = x.max()?;
    /// assert_eq!(m.item()?, 7.0);
    /// assert_eq!(tape.backward(m)?[x].to_vec(), vec![0.0, 0.5, 0.5, 0.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an empty tensor.
    #[doc(alias = "amax")]
    pub fn max(self) -> Result<Self> {
        self.try_record_unary(|x| Ok((Op::Max, x.max()?, None)))
    }
}

/// The backward of `max` and `min`: the upstream gradient split evenly among the elements
/// equal to the result.
pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let (x, y, g) = (
        ctx.input(0),
        ctx.output().as_slice()[0],
        ctx.grad().as_slice()[0],
    );
    let ties = x.as_slice().iter().filter(|&&v| v == y).count().max(1);
    let share = g / E::from_usize(ties);
    let t = Tensor::from_fn(x.shape(), |i| {
        if x.as_slice()[i] == y { share } else { E::ZERO }
    });
    ctx.accumulate(0, t)
}
