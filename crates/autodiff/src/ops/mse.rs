//! `mse`: mean squared error, L = mean((p - t)^2) over all elements of two same-shaped vars.
//! dL/dp = 2 (p - t) / n, dL/dt = -2 (p - t) / n.

use tapegrad_tensor::{Float, Tensor, TensorError};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// Mean squared error between this prediction and `target` (same shape), a rank-0 var.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let p = tape.var(Tensor::from_vec(vec![1.0, 3.0], &[2])?);
    /// let t = tape.constant(Tensor::from_vec(vec![0.0, 1.0], &[2])?);
    /// let loss = p.mse(t)?;
    /// assert_eq!(loss.item()?, 2.5);
    /// assert_eq!(tape.backward(loss)?[p].to_vec(), vec![1.0, 2.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the shapes differ, or `target` belongs to another tape.
    pub fn mse(self, target: Var<'t, E>) -> Result<Self> {
        self.record_binary(target, "mse", |p, t| Ok((Op::Mse, compute(p, t)?, None)))
    }
}

/// Checks that a loss's two operands have one shape.
pub(super) fn same_shape<E: Float>(op: &'static str, a: &Tensor<E>, b: &Tensor<E>) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(TensorError::ShapeMismatch {
            op,
            lhs: a.shape().to_vec(),
            rhs: b.shape().to_vec(),
        }
        .into());
    }
    Ok(())
}

/// The mean squared error of `p` against `t` (recording and replay share it).
pub(super) fn compute<E: Float>(p: &Tensor<E>, t: &Tensor<E>) -> Result<Tensor<E>> {
    same_shape("mse", p, t)?;
    let n = E::from_usize(p.len());
    let total: E = p
        .as_slice()
        .iter()
        .zip(t.as_slice())
        .map(|(&a, &b)| (a - b) * (a - b))
        .sum();
    Ok(Tensor::scalar(total / n))
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let (p, t) = (ctx.input(0), ctx.input(1));
    let scale = (E::ONE + E::ONE) * ctx.grad().item()? / E::from_usize(p.len());
    let diff = p.zip_with(t, "mse backward", |a, b| scale * (a - b))?;
    if ctx.wants(1) {
        ctx.accumulate(1, diff.neg())?;
    }
    ctx.accumulate(0, diff)
}
