//! `binary_cross_entropy_with_logits`: L = mean(softplus(z) - z t) over logits z and targets t
//! in [0, 1], computed as max(z, 0) - z t + ln(1 + e^-|z|) so it is finite for logits of
//! +-1000. dL/dz = (sigmoid(z) - t) / n, dL/dt = -z / n.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// Binary cross-entropy of these logits against `targets` (same shape, values in [0, 1]),
    /// averaged over all elements: the loss of logistic regression, stable at +-1000.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let z = tape.var(Tensor::from_vec(vec![0.0, 1000.0], &[2])?);
    /// let t = tape.constant(Tensor::from_vec(vec![1.0, 0.0], &[2])?);
    /// let loss = z.binary_cross_entropy_with_logits(t)?;
    /// assert!((loss.item()? - (std::f64::consts::LN_2 + 1000.0) / 2.0).abs() < 1e-12);
    /// assert_eq!(tape.backward(loss)?[z].to_vec(), vec![-0.25, 0.5]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the shapes differ, or `targets` belongs to another tape.
    pub fn binary_cross_entropy_with_logits(self, targets: Var<'t, E>) -> Result<Self> {
        self.record_binary(targets, "binary_cross_entropy_with_logits", |z, t| {
            let (loss, sig) = compute(z, t)?;
            Ok((Op::BceWithLogits, loss, Some(sig)))
        })
    }
}

/// The loss and sigmoid(z) (which the backward reads); recording and replay share it.
pub(super) fn compute<E: Float>(z: &Tensor<E>, t: &Tensor<E>) -> Result<(Tensor<E>, Tensor<E>)> {
    super::mse::same_shape("binary_cross_entropy_with_logits", z, t)?;
    let n = E::from_usize(z.len());
    // softplus(z) - z t, with softplus(z) = max(z, 0) + ln(1 + e^-|z|); the same e^-|z| gives
    // sigmoid(z), which the backward reads instead of computing it again.
    let mut total = E::ZERO;
    let (zs, ts) = (z.as_slice(), t.as_slice());
    let sig = Tensor::from_fn(z.shape(), |i| {
        let (z, t) = (zs[i], ts[i]);
        let e = (-z.abs()).exp();
        total += z.max(E::ZERO) + e.ln_1p() - z * t;
        let r = E::ONE / (E::ONE + e);
        if z >= E::ZERO { r } else { e * r }
    });
    Ok((Tensor::scalar(total / n), sig))
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let (z, t) = (ctx.input(0), ctx.input(1));
    let scale = ctx.grad().item()? / E::from_usize(z.len());
    if ctx.wants(1) {
        let dt = z.map(|v| -scale * v);
        ctx.accumulate(1, dt)?;
    }
    if ctx.wants(0) {
        let dz = ctx
            .saved()
            .zip_with(t, "binary_cross_entropy_with_logits backward", |s, t| {
                scale * (s - t)
            })?;
        ctx.accumulate(0, dz)?;
    }
    Ok(())
}
