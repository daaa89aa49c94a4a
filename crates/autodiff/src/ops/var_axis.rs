//! `var_axis`: the variance along an axis with a chosen correction; dy/dx_i = 2 (x_i - mean) /
//! (n - correction).

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The variance along `axis`: the sum of squared deviations from the mean over
    /// `n - correction` (1: the unbiased sample variance, PyTorch's default; 0: the population
    /// variance).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 6.0], &[4])?);
    /// let v = x.var_axis(0, false, 1)?;
    /// assert_eq!(v.item()?, 14.0 / 3.0);
    /// // d/dx_i = 2 (x_i - 3) / 3
    /// assert_eq!(tape.backward(v)?[x].to_vec(), vec![-4.0 / 3.0, -2.0 / 3.0, 0.0, 2.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis >= rank` or the axis has no more than `correction` elements.
    pub fn var_axis(self, axis: usize, keepdim: bool, correction: usize) -> Result<Self> {
        self.try_record_unary(|x| {
            let value = x.var_axis(axis, keepdim, correction)?;
            Ok((
                Op::VarAxis {
                    axis: axis as u32,
                    keepdim,
                    correction: correction as u32,
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
    keepdim: bool,
    correction: usize,
) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let (x, g) = (ctx.input(0), ctx.grad());
    let g = if keepdim {
        g.clone()
    } else {
        g.unsqueeze(axis)?
    };
    let n = x.shape()[axis];
    let scale = E::from_f64(2.0) / E::from_usize(n - correction);
    let mean = x.mean_axis(axis, true)?;
    let t = x.sub(&mean)?.mul(&g)?.mul_scalar(scale);
    ctx.accumulate(0, t)
}
