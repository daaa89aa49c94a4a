//! `mean_axis`: means along one axis; d/dx = 1 / n along the axis.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Means along `axis`; `keepdim` keeps the axis with size 1. d/dx = 1 / n along the axis.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?);
    /// let m = x.mean_axis(1, true)?;
    /// assert_eq!(m.shape().as_slice(), &[2, 1]);
    /// assert_eq!(m.value().to_vec(), vec![1.5, 3.5]);
    /// assert_eq!(tape.backward(m.sum())?[x].to_vec(), vec![0.5; 4]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis >= rank`.
    pub fn mean_axis(self, axis: usize, keepdim: bool) -> Result<Self> {
        self.try_record_unary(|x| {
            let value = x.mean_axis(axis, keepdim)?;
            let op = Op::MeanAxis {
                axis: axis as u32,
                keepdim,
            };
            Ok((op, value, None))
        })
    }
}

pub(super) fn backward<E: Float>(
    ctx: &mut BackwardCtx<'_, E>,
    axis: usize,
    _keepdim: bool,
) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let n = E::from_usize(ctx.input(0).shape()[axis]);
    let full = super::sum_axis::spread(ctx, axis, E::ONE / n)?;
    ctx.accumulate(0, full)
}
