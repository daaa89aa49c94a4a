//! `sum_axis`: sums along one axis (optionally keeping it with size 1). The gradient is the
//! upstream gradient broadcast back along that axis.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Sums along `axis`; `keepdim` keeps the axis with size 1. d/dx = 1 along the axis.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?);
    /// let s = x.sum_axis(0, false)?;
    /// assert_eq!(s.value().to_vec(), vec![5.0, 7.0, 9.0]);
    /// let w = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?);
    /// let grads = tape.backward(s.mul(w)?.sum())?;
    /// assert_eq!(grads[x].to_vec(), vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis >= rank`.
    pub fn sum_axis(self, axis: usize, keepdim: bool) -> Result<Self> {
        self.try_record_unary(|x| {
            let value = x.sum_axis(axis, keepdim)?;
            let op = Op::SumAxis {
                axis: axis as u32,
                keepdim,
            };
            Ok((op, value, None))
        })
    }
}

/// The upstream gradient of a reduction along `axis`, broadcast back to the input's shape and
/// scaled by `scale`.
pub(super) fn spread<E: Float>(
    ctx: &BackwardCtx<'_, E>,
    axis: usize,
    scale: E,
) -> Result<Tensor<E>> {
    let x = ctx.input(0);
    let mut kept = x.shape().to_vec();
    kept[axis] = 1;
    let g = ctx.grad().reshape(&kept)?;
    let mut full = g.broadcast_to(x.shape())?;
    if scale != E::ONE {
        full.map_inplace(|v| v * scale);
    }
    Ok(full)
}

pub(super) fn backward<E: Float>(
    ctx: &mut BackwardCtx<'_, E>,
    axis: usize,
    _keepdim: bool,
) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let full = spread(ctx, axis, E::ONE)?;
    ctx.accumulate(0, full)
}
