//! `where_cond`: an elementwise choice between two vars by a constant condition, all three
//! broadcast together. The gradient flows to `on_true` where the condition is nonzero and to
//! `on_false` elsewhere, each summed back to its shape.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// `on_true` where `cond` is nonzero, else `on_false` (PyTorch's `torch.where`), with
    /// broadcasting among the three.
    ///
    /// ```
    /// use tapegrad_autodiff::{Tape, Var};
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?);
    /// let b = tape.var(Tensor::scalar(-1.0));
    /// let cond = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3])?;
    /// let y = Var::where_cond(&cond, a, b)?;
    /// assert_eq!(y.value().to_vec(), vec![1.0, -1.0, 3.0]);
    /// let g = tape.backward(y.sum())?;
    /// assert_eq!((g[a].to_vec(), g[b].item()?), (vec![1.0, 0.0, 1.0], 1.0));
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the three shapes do not broadcast together, or the vars belong to different tapes.
    #[doc(alias = "where")]
    pub fn where_cond(cond: &Tensor<E>, on_true: Var<'t, E>, on_false: Var<'t, E>) -> Result<Self> {
        on_true.record_binary(on_false, "where_cond", |t, f| {
            let value = Tensor::where_cond(cond, t, f)?;
            Ok((Op::WhereCond, value, Some(cond.clone())))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let g = ctx.grad();
    let cond = ctx.saved().broadcast_to(g.shape())?;
    let c = cond.as_slice();
    let gs = g.as_slice();
    if ctx.wants(0) {
        let t = Tensor::from_fn(g.shape(), |i| if c[i] != E::ZERO { gs[i] } else { E::ZERO });
        ctx.accumulate_reduced(0, &t)?;
    }
    if ctx.wants(1) {
        let f = Tensor::from_fn(g.shape(), |i| if c[i] != E::ZERO { E::ZERO } else { gs[i] });
        ctx.accumulate_reduced(1, &f)?;
    }
    Ok(())
}
