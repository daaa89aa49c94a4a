//! `narrow`: the slice `start..start + len` along an axis; the gradient is the upstream
//! gradient placed back into a zero tensor of the input's shape.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The slice `start..start + len` along `axis`; elements outside it get zero gradient.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[4])?);
    /// let s = a.narrow(0, 1, 2)?;
    /// assert_eq!(s.value().to_vec(), vec![2.0, 3.0]);
    /// assert_eq!(tape.backward(s.sum())?[a].to_vec(), vec![0.0, 1.0, 1.0, 0.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For a bad axis or a range past the end of the axis.
    pub fn narrow(self, axis: usize, start: usize, len: usize) -> Result<Self> {
        self.try_record_unary(|x| {
            let value = x.narrow(axis, start, len)?;
            // A valid axis is below the rank; the start is kept in 32 bits in the node.
            let start =
                u32::try_from(start).map_err(|_| tapegrad_tensor::TensorError::Invalid {
                    op: "narrow",
                    reason: format!("start {start} does not fit the tape's 32-bit offsets"),
                })?;
            Ok((
                Op::Narrow {
                    axis: axis as u32,
                    start,
                },
                value,
                None,
            ))
        })
    }
}

pub(super) fn backward<E: Float>(
    ctx: &mut BackwardCtx<'_, E>,
    axis: usize,
    start: usize,
) -> Result<()> {
    let (g, x) = (ctx.grad(), ctx.input(0));
    let len = g.shape()[axis];
    let mut before_shape = x.shape().to_vec();
    before_shape[axis] = start;
    let mut after_shape = x.shape().to_vec();
    after_shape[axis] = x.shape()[axis] - start - len;
    let (before, after) = (Tensor::zeros(&before_shape), Tensor::zeros(&after_shape));
    let full = Tensor::concat(&[&before, g, &after], axis)?;
    ctx.accumulate(0, full)
}
