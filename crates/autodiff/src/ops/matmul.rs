//! `matmul`: C = A B, 2-D (`[m, k] x [k, n]`) or batched (`[b, m, k] x [b, k, n]`, either side
//! may have batch 1 or rank 2 and is broadcast). dC/dA = G B^T and dC/dB = A^T G, computed on
//! the same kernels with the transposes read through strides (never copied), and accumulated
//! straight into the gradient buffers when they exist.

use tapegrad_tensor::{Float, Tensor, Transpose, gemm_into};

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
    /// When the operands are not rank 2 or 3, inner or batch sizes disagree, or `other` belongs
    /// to another tape.
    pub fn matmul(self, other: Var<'t, E>) -> Result<Self> {
        self.record_binary(other, "matmul", |a, b| Ok((Op::MatMul, a.matmul(b)?, None)))
    }
}

/// Accumulates `op(x) op(y)` into input `k`'s gradient, summing over a broadcast batch.
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
    let target = ctx.input(k).shape();
    let direct = x.rank() == 2 && y.rank() == 2;
    if direct {
        if let Some(acc) = ctx.slot(k) {
            gemm_into(x, tx, y, ty, E::ONE, E::ONE, acc)?;
            return Ok(());
        }
        *ctx.slot(k) = Some(x.matmul_t(tx, y, ty)?);
        return Ok(());
    }
    let full = x.matmul_t(tx, y, ty)?;
    let reduced = if full.shape() == target {
        full
    } else {
        // A broadcast batch: sum the per-batch products, then restore the operand's shape.
        full.sum_axis(0, false)?.reshape(target)?
    };
    ctx.accumulate(k, reduced)
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    let (g, a, b) = (ctx.grad(), ctx.input(0), ctx.input(1));
    accumulate_product(ctx, 0, g, Transpose::No, b, Transpose::Yes)?;
    accumulate_product(ctx, 1, a, Transpose::Yes, g, Transpose::No)
}
