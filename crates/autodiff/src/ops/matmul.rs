//! `matmul`: C = A B with `torch.matmul`'s rules: 2-D, batched with broadcast batch axes of any
//! rank, and rank-1 operands as a row or a column. dC/dA = G B^T and dC/dB = A^T G, computed on
//! the same kernels with the transposes read through strides (never copied), summed over the
//! batch axes an operand was broadcast along (a shared weight's gradient as one product over
//! all batch rows), and accumulated straight into the gradient buffers when they exist.

use tapegrad_tensor::{Float, Tensor, Transpose, gemm_into, gemm_tn_batch_sum_into};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// The matrix product, 2-D or batched, as [`Tensor::matmul`]: dC/dA = G B^T, dC/dB = A^T G.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?);
    /// let b = tape.var(Tensor::ones(&[3, 1]));
    /// let c = a.matmul(b)?;
    /// assert_eq!(c.value().to_vec(), vec![6.0, 15.0]);
    /// let grads = tape.backward(c.sum())?;
    /// assert_eq!(grads[b].to_vec(), vec![5.0, 7.0, 9.0]); // A^T 1
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For a rank-0 operand, inner sizes that disagree, batch axes that do not broadcast, or
    /// `other` of another tape.
    pub fn matmul(self, other: Var<'t, E>) -> Result<Self> {
        if let Some(source) = self.transposed_source(other) {
            // `other` is a transpose of its input's last two axes: read that input through
            // strides instead (the backward then needs no transpose back).
            let fused = self.record_binary(source, "matmul", |a, b| {
                Ok((
                    Op::MatMulT,
                    a.matmul_t(Transpose::No, b, Transpose::Yes)?,
                    None,
                ))
            });
            if fused.is_ok() {
                return fused;
            }
        }
        self.record_binary(other, "matmul", |a, b| Ok((Op::MatMul, a.matmul(b)?, None)))
    }

    /// When `other` was recorded by `t()` or `transpose` of the last two axes, and both
    /// operands are matrices or batches of them: the transposed node's input.
    fn transposed_source(self, other: Var<'t, E>) -> Option<Var<'t, E>> {
        if !std::ptr::eq(self.tape(), other.tape()) {
            return None;
        }
        let store = self.tape().store();
        let node = &store.nodes[other.index()];
        let rank = store.shape(other.index()).len();
        let last_two = match node.op {
            Op::Transpose => rank >= 2,
            Op::TransposeAxes { a, b } => {
                let (lo, hi) = (a.min(b) as usize, a.max(b) as usize);
                rank >= 2 && lo + 2 == rank && hi + 1 == rank
            }
            _ => false,
        };
        if !last_two || store.shape(self.index()).len() < 2 {
            return None;
        }
        let source = store.inputs(other.index())[0];
        Some(Var::new(
            self.tape(),
            source,
            store.nodes[source as usize].x,
        ))
    }
}

/// Accumulates `op(x) op(y)` into input `k`'s gradient, summing over the batch axes input `k`
/// was broadcast along (a shared weight's gradient in one product over all batch rows).
pub(super) fn accumulate_product<E: Float>(
    ctx: &mut BackwardCtx<'_, E>,
    k: usize,
    x: &Tensor<E>,
    tx: Transpose,
    y: &Tensor<E>,
    ty: Transpose,
) -> Result<()> {
    if !ctx.wants(k) {
        return Ok(());
    }
    if x.rank() == 2 && y.rank() == 2 {
        match ctx.slot(k) {
            Some(acc) => gemm_into(x, tx, y, ty, E::ONE, E::ONE, acc)?,
            slot @ None => *slot = Some(x.matmul_t(tx, y, ty)?),
        }
        return Ok(());
    }
    let target = ctx.input(k).shape();
    let (rx, ry) = (x.rank(), y.rank());
    let shared = tx == Transpose::Yes
        && ty == Transpose::No
        && target.len() == 2
        && rx == ry
        && x.shape()[..rx - 1] == y.shape()[..ry - 1];
    if shared {
        // A weight shared by the batch: x^T y summed over the batch is one product over all
        // batch rows.
        match ctx.slot(k) {
            Some(acc) => gemm_tn_batch_sum_into(x, y, E::ONE, E::ONE, acc)?,
            slot @ None => {
                let mut t = Tensor::zeros(target);
                gemm_tn_batch_sum_into(x, y, E::ONE, E::ZERO, &mut t)?;
                *slot = Some(t);
            }
        }
        return Ok(());
    }
    let full = x.matmul_t(tx, y, ty)?;
    let reduced = if full.shape() == target {
        full
    } else {
        // Broadcast batch axes: sum the per-batch products back to the operand's shape.
        full.sum_to(target)?
    };
    ctx.accumulate(k, reduced)
}

/// The backward of `A op(B)^T` recorded on B itself (see [`Var::matmul`]): dA = G B, and
/// dB = (A^T G)^T = G^T A.
pub(super) fn backward_transposed<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let (g, a, b) = (ctx.grad(), ctx.input(0), ctx.input(1));
    accumulate_product(ctx, 0, g, Transpose::No, b, Transpose::No)?;
    accumulate_product(ctx, 1, g, Transpose::Yes, a, Transpose::No)
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let (g, a, b) = (ctx.grad(), ctx.input(0), ctx.input(1));
    if a.rank() >= 2 && b.rank() >= 2 {
        accumulate_product(ctx, 0, g, Transpose::No, b, Transpose::Yes)?;
        return accumulate_product(ctx, 1, a, Transpose::Yes, g, Transpose::No);
    }
    // A vector operand was a row [1, k] (left) or a column [k, 1] (right): redo the product's
    // gradients on those matrices, with the dropped axes of the gradient put back.
    let a2 = if a.rank() == 1 {
        a.reshape(&[1, a.len()])?
    } else {
        a.clone()
    };
    let b2 = if b.rank() == 1 {
        b.reshape(&[b.len(), 1])?
    } else {
        b.clone()
    };
    let mut shape = g.shape().to_vec();
    if a.rank() == 1 {
        let at = if b.rank() == 1 {
            shape.len()
        } else {
            shape.len() - 1
        };
        shape.insert(at, 1);
    }
    if b.rank() == 1 {
        shape.push(1);
    }
    let g2 = g.reshape(&shape)?;
    if ctx.wants(0) {
        let da = g2.matmul_t(Transpose::No, &b2, Transpose::Yes)?;
        ctx.accumulate(0, da.sum_to(a2.shape())?.reshape(a.shape())?)?;
    }
    if ctx.wants(1) {
        let db = a2.matmul_t(Transpose::Yes, &g2, Transpose::No)?;
        ctx.accumulate(1, db.sum_to(b2.shape())?.reshape(b.shape())?)?;
    }
    Ok(())
}
