//! `layer_norm`: normalization over the last axis with a learned scale and shift, as one
//! node. With x̂ = (x - mean) rstd and rstd = 1 / sqrt(var + eps): dβ = Σ g, dγ = Σ g x̂ over
//! the rows, and dx = rstd (gγ - mean(gγ) - x̂ mean(gγ x̂)) along each row.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// Layer normalization over the last axis of `[..., d]`, scaled by `gamma` and shifted by
    /// `beta` (both `[d]`), as one node; the population variance, as PyTorch's `layer_norm`.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 3.0, 2.0, 2.0], &[2, 2])?);
    /// let gamma = tape.var(Tensor::from_vec(vec![2.0, 1.0], &[2])?);
    /// let beta = tape.var(Tensor::from_vec(vec![0.5, 0.0], &[2])?);
    /// let y = x.layer_norm(gamma, beta, 0.0)?;
    /// // Row 2 is constant: with eps = 0 its deviation is 0 / 0; use eps > 0 in practice.
    /// assert_eq!(y.value().as_slice()[..2], [-1.5, 1.0]);
    /// let y = x.layer_norm(gamma, beta, 1e-5)?;
    /// let g = tape.backward(y.sum())?;
    /// assert_eq!(g[beta].to_vec(), vec![2.0, 2.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Unless `self` is `[..., d]` and `gamma`, `beta` are `[d]`; for a negative or NaN `eps`;
    /// for vars of several tapes.
    pub fn layer_norm(self, gamma: Var<'t, E>, beta: Var<'t, E>, eps: E) -> Result<Self> {
        Var::record_nary(&[self, gamma, beta], "layer_norm", |v| {
            let (y, stats) = v[0].layer_norm_with_stats(v[1], v[2], eps)?;
            Ok((Op::LayerNorm { eps }, y, Some(stats)))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let (g, x, gamma) = (ctx.grad(), ctx.input(0), ctx.input(1));
    let stats = ctx.saved().as_slice();
    let d = gamma.len();
    let n = E::from_usize(d);
    let (gs, xs, gm) = (g.as_slice(), x.as_slice(), gamma.as_slice());
    let rows = stats.len() / 2;
    let xhat = |r: usize, j: usize| (xs[r * d + j] - stats[2 * r]) * stats[2 * r + 1];
    if ctx.wants(2) {
        let mut db = vec![E::ZERO; d];
        for r in 0..rows {
            for j in 0..d {
                db[j] += gs[r * d + j];
            }
        }
        ctx.accumulate(2, Tensor::from_vec(db, &[d])?)?;
    }
    if ctx.wants(1) {
        let mut dg = vec![E::ZERO; d];
        for r in 0..rows {
            for j in 0..d {
                dg[j] += gs[r * d + j] * xhat(r, j);
            }
        }
        ctx.accumulate(1, Tensor::from_vec(dg, &[d])?)?;
    }
    if ctx.wants(0) {
        let mut dx = vec![E::ZERO; xs.len()];
        for r in 0..rows {
            let rstd = stats[2 * r + 1];
            let (mut mean_gg, mut mean_ggx) = (E::ZERO, E::ZERO);
            for j in 0..d {
                let gg = gs[r * d + j] * gm[j];
                mean_gg += gg;
                mean_ggx += gg * xhat(r, j);
            }
            mean_gg /= n;
            mean_ggx /= n;
            for j in 0..d {
                let gg = gs[r * d + j] * gm[j];
                dx[r * d + j] = rstd * (gg - mean_gg - xhat(r, j) * mean_ggx);
            }
        }
        ctx.accumulate(0, Tensor::from_vec(dx, x.shape())?)?;
    }
    Ok(())
}
