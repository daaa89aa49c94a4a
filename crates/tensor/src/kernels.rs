//! The kernels tapegrad's tensors run on, for hand-written code beside them: the floors a
//! benchmark measures a graph against ("the same math on the same kernels, no graph"). A
//! product here is the product `Tensor::matmul` computes (matrixmultiply's kernels, split over
//! the same worker threads at the same size), and a map the one the expensive elementwise ops
//! run.

use std::sync::Mutex;

use crate::error::{Result, TensorError};
use crate::float::Float;

/// `C = alpha op(A) op(B) + beta C` on row-major slices: `op(A)` is `m x k` (A stored `m x k`,
/// or `k x m` when `trans_a`), `op(B)` is `k x n` (B stored `k x n`, or `n x k` when `trans_b`),
/// C is `m x n`. Split over threads exactly as tapegrad's own products are.
///
/// ```
/// use tapegrad_tensor::kernels::gemm;
/// // [1 2; 3 4] times [1 2; 3 4]^T.
/// let a = [1.0f32, 2.0, 3.0, 4.0];
/// let mut c = [0.0f32; 4];
/// gemm(2, 2, 2, 1.0, &a, false, &a, true, 0.0, &mut c)?;
/// assert_eq!(c, [5.0, 11.0, 11.0, 25.0]);
/// # Ok::<(), tapegrad_tensor::TensorError>(())
/// ```
///
/// # Errors
///
/// [`TensorError::Invalid`] naming the slice that is shorter than its matrix, or when a
/// product of the sizes overflows.
#[allow(clippy::too_many_arguments)]
pub fn gemm<E: Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: E,
    a: &[E],
    trans_a: bool,
    b: &[E],
    trans_b: bool,
    beta: E,
    c: &mut [E],
) -> Result<()> {
    let need = |what: &'static str, rows: usize, cols: usize, len: usize| -> Result<()> {
        match rows.checked_mul(cols) {
            Some(size) if size <= len => Ok(()),
            _ => Err(TensorError::Invalid {
                op: "kernels::gemm",
                reason: format!("{what} holds {len} elements, a {rows} x {cols} matrix needs more"),
            }),
        }
    };
    need("A", m, k, a.len())?;
    need("B", k, n, b.len())?;
    need("C", m, n, c.len())?;
    let sa = if trans_a { (1, m) } else { (k, 1) };
    let sb = if trans_b { (1, k) } else { (n, 1) };
    crate::matmul::gemm_slices((m, k, n), alpha, a, sa, b, sb, beta, c);
    Ok(())
}

/// Applies `f` to every element in place, split over the worker threads when there are at
/// least 2^13 elements per thread (as tapegrad's `exp`, `tanh` and `sigmoid` are).
///
/// ```
/// use tapegrad_tensor::{Float, kernels::map_in_place};
/// let mut x = vec![0.0f32, 2.0];
/// map_in_place(&mut x, |v| v.sigmoid());
/// assert_eq!(x[0], 0.5);
/// ```
pub fn map_in_place<E: Float>(x: &mut [E], f: impl Fn(E) -> E + Sync) {
    let n = x.len();
    let threads = crate::matmul::num_threads()
        .min(n / crate::elementwise::PAR_MIN_ELEMENTS)
        .min(8);
    if threads < 2 {
        x.iter_mut().for_each(|v| *v = f(*v));
        return;
    }
    // Each job owns one block, handed over through a mutex (taken once).
    let blocks: Vec<Mutex<&mut [E]>> = x.chunks_mut(n.div_ceil(threads)).map(Mutex::new).collect();
    let f = &f;
    let jobs: Vec<Box<dyn Fn() + Sync + '_>> = blocks
        .iter()
        .map(|block| {
            Box::new(move || {
                let mut block = block.lock().unwrap_or_else(|e| e.into_inner());
                block.iter_mut().for_each(|v| *v = f(*v));
            }) as Box<dyn Fn() + Sync + '_>
        })
        .collect();
    let refs: Vec<&(dyn Fn() + Sync)> = jobs.iter().map(|j| j.as_ref()).collect();
    crate::workers::run_parallel(&refs);
}
