//! `linear`: Y = X W + b for `X: [n, k]`, `W: [k, m]`, `b: [m]` (a layer's affine map, as
//! PyTorch's `addmm` or `F.linear`), as one node. The forward starts the output from the bias
//! rows and accumulates the product into it (one kernel call, no separate add); the backward is
//! dX = G W^T, dW = X^T G and db = the column sums of G, with no copy of G.

use tapegrad_tensor::{Float, Transpose};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// The affine map `self W + b` of `self: [..., k]` (rank 2 or more) with `w: [k, m]` and `b: [m]`: one
    /// node instead of a `matmul` and a broadcasting `add`, with the same values and gradients.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?);
    /// let w = tape.var(Tensor::from_vec(vec![1.0, 0.0, 1.0, 1.0, 1.0, 0.0], &[2, 3])?);
    /// let b = tape.var(Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3])?);
    /// let y = x.linear(w, b)?;
    /// assert_eq!(y.value().to_vec(), vec![13.0, 22.0, 31.0, 17.0, 24.0, 33.0]);
    /// let grads = tape.backward(y.sum())?;
    /// assert_eq!(grads[b].to_vec(), vec![2.0, 2.0, 2.0]); // one per row
    /// assert_eq!(grads[w].to_vec(), vec![4.0, 4.0, 4.0, 6.0, 6.0, 6.0]); // X^T 1
    /// assert_eq!(grads[x].to_vec(), vec![2.0, 2.0, 2.0, 2.0]); // 1 W^T
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `self` is not `[..., k]` (rank 2 or more) or `w` not `[k, m]`, `b` is not `[m]`, or
    /// the vars belong to several tapes.
    pub fn linear(self, w: Var<'t, E>, b: Var<'t, E>) -> Result<Self> {
        Var::record_nary(&[self, w, b], "linear", |v| {
            Ok((Op::Linear, v[0].linear(v[1], v[2])?, None))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let (g, x, w) = (ctx.grad(), ctx.input(0), ctx.input(1));
    super::matmul::accumulate_product(ctx, 0, g, Transpose::No, w, Transpose::Yes)?;
    super::matmul::accumulate_product(ctx, 1, x, Transpose::Yes, g, Transpose::No)?;
    ctx.accumulate_reduced(2, g)
}
