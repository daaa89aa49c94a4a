//! Matrix products on matrixmultiply's `sgemm`/`dgemm`, with transposes passed as strides.

use std::sync::atomic::{AtomicUsize, Ordering};

use smallvec::SmallVec;

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::tensor::{Shape, Storage, Tensor};

/// How an operand enters a product: as stored, or transposed (last two axes swapped) without
/// being copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transpose {
    /// Use the operand as stored.
    No,
    /// Use the operand with its last two axes swapped (read through strides, never copied).
    Yes,
}

/// A matrix view: batch count, rows, columns and strides of one operand as the product sees it.
struct View {
    batch: usize,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
    batch_stride: usize,
}

fn view<E: Float>(op: &'static str, t: &Tensor<E>, tr: Transpose) -> Result<View> {
    let (batch, r, c) = match t.shape() {
        [r, c] => (1, *r, *c),
        [b, r, c] => (*b, *r, *c),
        s => {
            return Err(TensorError::Rank {
                op,
                expected: "rank-2 or rank-3 operands",
                shape: s.to_vec(),
            });
        }
    };
    let batch_stride = if batch == 1 { 0 } else { r * c };
    Ok(match tr {
        Transpose::No => View {
            batch,
            rows: r,
            cols: c,
            rs: c as isize,
            cs: 1,
            batch_stride,
        },
        Transpose::Yes => View {
            batch,
            rows: c,
            cols: r,
            rs: 1,
            cs: c as isize,
            batch_stride,
        },
    })
}

/// Writes `out = alpha * op(a) op(b) + beta * out` where `out` already has the product's shape.
///
/// This is the in-place kernel entry that autodiff uses to accumulate matmul gradients straight
/// into gradient buffers (`beta = 1`) without temporaries.
///
/// # Errors
///
/// [`TensorError::Rank`] for operands that are not rank 2 or 3, and
/// [`TensorError::ShapeMismatch`] when inner sizes, batch sizes or `out`'s shape do not fit.
pub fn gemm_into<E: Float>(
    a: &Tensor<E>,
    ta: Transpose,
    b: &Tensor<E>,
    tb: Transpose,
    alpha: E,
    beta: E,
    out: &mut Tensor<E>,
) -> Result<()> {
    let (va, vb) = (view("matmul", a, ta)?, view("matmul", b, tb)?);
    let shape = product_shape(a, &va, b, &vb)?;
    if out.shape() != shape.as_slice() {
        return Err(TensorError::ShapeMismatch {
            op: "matmul (output)",
            lhs: shape.to_vec(),
            rhs: out.shape().to_vec(),
        });
    }
    let c = out.as_mut_slice();
    // SAFETY: `out` is an initialized tensor of the product's shape (checked above), a separate
    // tensor from `a` and `b` (the borrows guarantee it).
    unsafe {
        run_gemm(
            &va,
            a.as_slice(),
            &vb,
            b.as_slice(),
            alpha,
            beta,
            (c.as_mut_ptr(), c.len()),
        )
    };
    Ok(())
}

/// The batch count of a product: a batch of 1 (or a rank-2 operand) broadcasts to the other's,
/// including to 0 (an empty batch stays empty).
fn broadcast_batch(va: &View, vb: &View) -> usize {
    if va.batch == 1 { vb.batch } else { va.batch }
}

fn product_shape<E: Float>(a: &Tensor<E>, va: &View, b: &Tensor<E>, vb: &View) -> Result<Shape> {
    let batch_ok = va.batch == vb.batch || va.batch == 1 || vb.batch == 1;
    if va.cols != vb.rows || !batch_ok {
        return Err(TensorError::ShapeMismatch {
            op: "matmul",
            lhs: a.shape().to_vec(),
            rhs: b.shape().to_vec(),
        });
    }
    let batch = broadcast_batch(va, vb);
    let shape: Shape = if a.rank() == 3 || b.rank() == 3 {
        SmallVec::from_slice(&[batch, va.rows, vb.cols])
    } else {
        SmallVec::from_slice(&[va.rows, vb.cols])
    };
    // Zero-size operands can name sizes whose product (the result) cannot exist; checked as
    // `checked_numel` does (the product of the nonzero sizes), written out for this hot path.
    let fits = batch
        .max(1)
        .checked_mul(va.rows.max(1))
        .and_then(|p| p.checked_mul(vb.cols.max(1)))
        .is_some_and(|p| p <= isize::MAX as usize);
    if !fits {
        return Err(TensorError::TooLarge {
            op: "matmul",
            shape: shape.to_vec(),
        });
    }
    Ok(shape)
}

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Products with fewer multiply-adds than this run on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 24;

/// Sets how many threads a large matrix product, or an expensive elementwise map over a large
/// tensor, may use (at least 1). Without the `threads` feature everything runs on one thread.
pub fn set_num_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// How many threads large products and maps use: [`set_num_threads`] if called, else
/// `TAPEGRAD_NUM_THREADS`, else the number of cores available to the process.
pub fn num_threads() -> usize {
    if !cfg!(feature = "threads") {
        return 1;
    }
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = std::env::var("TAPEGRAD_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1);
            THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// Raw pointers to hand a block of one product to another thread.
#[derive(Clone, Copy)]
struct Block<E> {
    a: *const E,
    b: *const E,
    c: *mut E,
}

// SAFETY: each thread receives pointers to a disjoint block of C and reads A and B only;
// `workers::run_parallel` returns only after every block is done, before the borrows the pointers came
// from end.
unsafe impl<E: Send> Send for Block<E> {}
// SAFETY: as above; a block is only read (its pointers copied) from several threads.
unsafe impl<E: Sync> Sync for Block<E> {}

/// Products of at most this many multiply-adds skip matrixmultiply: packing the operands and
/// allocating its buffer costs more than the arithmetic.
const TINY_MACS: usize = 512;

/// For tiny products where C is `lines` contiguous lines of `len` elements (rows or columns,
/// line l at `c + l * stride`): line l = beta line l + sum over p < k of `weight(l, p)` times
/// the contiguous `len` elements at `source(p)`. A loop over contiguous lines that vectorizes.
///
/// # Safety
///
/// Every line of C must be valid for `len` writes, every `source(p)` for `len` reads, and
/// `weight` must read inside its matrix. With beta = 0, C is not read (it may be
/// uninitialized): each line is zeroed through the pointer before a slice is made of it
/// (all-zero bits are 0.0).
unsafe fn accumulate_lines<E: Float>(
    (c, stride, lines, len, k): (*mut E, isize, usize, usize, usize),
    beta: E,
    weight: impl Fn(isize, isize) -> E,
    source: impl Fn(isize) -> *const E,
) {
    for l in 0..lines as isize {
        // SAFETY: the caller vouches for the line's `len` elements.
        let line = unsafe {
            let start = c.offset(l * stride);
            if beta == E::ZERO {
                std::ptr::write_bytes(start, 0, len);
            }
            std::slice::from_raw_parts_mut(start, len)
        };
        if beta != E::ZERO {
            line.iter_mut().for_each(|v| *v *= beta);
        }
        for p in 0..k as isize {
            // SAFETY: as above, for the source line and the weight.
            let (w, src) = unsafe { (weight(l, p), std::slice::from_raw_parts(source(p), len)) };
            line.iter_mut().zip(src).for_each(|(c, &s)| *c += w * s);
        }
    }
}

/// C = alpha op(A) op(B) + beta C by plain loops, for tiny products (a 2-8-1 network's layers).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_tiny<E: Float>(
    (m, k, n): (usize, usize, usize),
    alpha: E,
    block: Block<E>,
    (rsa, csa): (isize, isize),
    (rsb, csb): (isize, isize),
    beta: E,
    (rsc, csc): (isize, isize),
) {
    if csb == 1 && csc == 1 && n > 1 {
        // Rows of B and C are contiguous: C's row i is a sum of B's rows weighted by A's row i.
        // SAFETY: row i of C (n elements from c + i rsc) and row p of B (from b + p rsb) are
        // contiguous (csc == csb == 1); A's element (i, p) lies inside A.
        unsafe {
            accumulate_lines(
                (block.c, rsc, m, n, k),
                beta,
                |i, p| alpha * *block.a.offset(i * rsa + p * csa),
                |p| block.b.offset(p * rsb),
            )
        };
        return;
    }
    if rsa == 1 && rsc == 1 && m > 1 {
        // Columns of op(A) and of C are contiguous (A read transposed, C one column wide): C's
        // column j is a sum of A's columns weighted by B's column j.
        // SAFETY: column j of C (m elements from c + j csc) and column p of op(A) (from
        // a + p csa) are contiguous (rsc == rsa == 1); B's element (p, j) lies inside B.
        unsafe {
            accumulate_lines(
                (block.c, csc, n, m, k),
                beta,
                |j, p| alpha * *block.b.offset(p * rsb + j * csb),
                |p| block.a.offset(p * csa),
            )
        };
        return;
    }
    for i in 0..m as isize {
        for j in 0..n as isize {
            let mut acc = E::ZERO;
            if csa == 1 && rsb == 1 {
                // A row of op(A) against a column of op(B), both contiguous: a dot product.
                // SAFETY: row i of op(A) and column j of op(B) hold k contiguous elements.
                let (a, b) = unsafe {
                    (
                        std::slice::from_raw_parts(block.a.offset(i * rsa), k),
                        std::slice::from_raw_parts(block.b.offset(j * csb), k),
                    )
                };
                acc = a.iter().zip(b).fold(acc, |acc, (&a, &b)| acc + a * b);
            } else {
                for p in 0..k as isize {
                    // SAFETY: i < m, j < n, p < k index inside the matrices the strides describe.
                    unsafe {
                        acc +=
                            *block.a.offset(i * rsa + p * csa) * *block.b.offset(p * rsb + j * csb)
                    };
                }
            }
            // SAFETY: as above, for C. As BLAS: with beta = 0, C is not read (it may be
            // uninitialized), only written through the pointer.
            unsafe {
                let c = block.c.offset(i * rsc + j * csc);
                if beta == E::ZERO {
                    c.write(alpha * acc);
                } else {
                    c.write(alpha * acc + beta * c.read());
                }
            }
        }
    }
}

/// One product C = alpha op(A) op(B) + beta C, split into blocks of rows (or of columns, when
/// there are more columns) across threads when it is large enough to gain from it.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_blocks<E: Float>(
    (m, k, n): (usize, usize, usize),
    alpha: E,
    block: Block<E>,
    (rsa, csa): (isize, isize),
    (rsb, csb): (isize, isize),
    beta: E,
    (rsc, csc): (isize, isize),
) {
    if m.saturating_mul(n).saturating_mul(k) <= TINY_MACS {
        // SAFETY: as for the kernel: the pointers and strides describe valid matrices.
        unsafe {
            gemm_tiny(
                (m, k, n),
                alpha,
                block,
                (rsa, csa),
                (rsb, csb),
                beta,
                (rsc, csc),
            )
        };
        return;
    }
    let threads = num_threads();
    let run = |blk: Block<E>, m: usize, n: usize| {
        // SAFETY: the caller's pointers and strides describe valid matrices; a block is a
        // sub-matrix of them.
        unsafe {
            E::gemm(
                m, k, n, alpha, blk.a, rsa, csa, blk.b, rsb, csb, beta, blk.c, rsc, csc,
            )
        }
    };
    if threads <= 1 || m.saturating_mul(n).saturating_mul(k) < PARALLEL_MIN_MACS {
        run(block, m, n);
        return;
    }
    let split_rows = m >= n;
    let total = if split_rows { m } else { n };
    let parts = threads.min(total);
    let chunk = total.div_ceil(parts);
    let blocks: Vec<(Block<E>, usize, usize)> = (0..parts)
        .map(|p| p * chunk)
        .take_while(|&start| start < total)
        .map(|start| {
            let len = chunk.min(total - start);
            // SAFETY: offsets stay inside the matrices: start < total rows (or columns).
            let blk = unsafe {
                if split_rows {
                    Block {
                        a: block.a.offset(start as isize * rsa),
                        b: block.b,
                        c: block.c.offset(start as isize * rsc),
                    }
                } else {
                    Block {
                        a: block.a,
                        b: block.b.offset(start as isize * csb),
                        c: block.c.offset(start as isize * csc),
                    }
                }
            };
            if split_rows {
                (blk, len, n)
            } else {
                (blk, m, len)
            }
        })
        .collect();
    let jobs: Vec<Box<dyn Fn() + Sync + '_>> = blocks
        .iter()
        .map(|&(blk, bm, bn)| Box::new(move || run(blk, bm, bn)) as Box<dyn Fn() + Sync + '_>)
        .collect();
    let refs: Vec<&(dyn Fn() + Sync)> = jobs.iter().map(|j| j.as_ref()).collect();
    crate::workers::run_parallel(&refs);
}

/// C = alpha op(A) op(B) + beta C for every batch, into the `len` elements at `c`.
///
/// # Safety
///
/// `c` must be valid for writes of `len` elements, where `len` is the product's size (batch x
/// m x n), and not alias `a` or `b`. With beta = 0 and k > 0 the elements may be uninitialized:
/// every one is written without being read (no reference to them is made before). Otherwise
/// they must be initialized.
unsafe fn run_gemm<E: Float>(
    va: &View,
    a: &[E],
    vb: &View,
    b: &[E],
    alpha: E,
    beta: E,
    (c, len): (*mut E, usize),
) {
    let (m, k, n) = (va.rows, va.cols, vb.cols);
    let batch = broadcast_batch(va, vb);
    assert!(
        len >= batch * m * n,
        "internal invariant: the output holds the product"
    );
    if m == 0 || n == 0 {
        return;
    }
    for i in 0..batch {
        // SAFETY: batch i's m * n elements lie inside the `len` the caller vouched for.
        let cs = unsafe { c.add(i * m * n) };
        if k == 0 {
            // SAFETY: the caller initialized C unless beta = 0 and k > 0.
            let cs = unsafe { std::slice::from_raw_parts_mut(cs, m * n) };
            cs.iter_mut().for_each(|v| *v = beta * *v);
            continue;
        }
        let ap = a[i * va.batch_stride..].as_ptr();
        let bp = b[i * vb.batch_stride..].as_ptr();
        // SAFETY: the views were built from these tensors' shapes, so every index the kernel
        // reads lies inside `a` and `b`, and `cs` points at m * n elements it owns.
        unsafe {
            gemm_blocks(
                (m, k, n),
                alpha,
                Block {
                    a: ap,
                    b: bp,
                    c: cs,
                },
                (va.rs, va.cs),
                (vb.rs, vb.cs),
                beta,
                (n as isize, 1),
            );
        }
    }
}

impl<E: Float> Tensor<E> {
    /// The affine map `self W + b` of a batch `self: [n, k]` with `w: [k, m]` and `b: [m]`, as
    /// one kernel call that accumulates the product into the bias rows (PyTorch's `addmm`).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[1, 2])?;
    /// let w = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[2, 2])?;
    /// let b = Tensor::from_vec(vec![10.0, 20.0], &[2])?;
    /// assert_eq!(x.linear(&w, &b)?.to_vec(), vec![11.0, 22.0]);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] naming the three shapes unless they are `[n, k]`, `[k, m]` and
    /// `[m]`.
    pub fn linear(&self, w: &Tensor<E>, b: &Tensor<E>) -> Result<Tensor<E>> {
        let (xs, ws, bs) = (self.shape(), w.shape(), b.shape());
        if xs.len() != 2 || ws.len() != 2 || xs[1] != ws[0] || bs != [ws[1]] {
            return Err(TensorError::Invalid {
                op: "linear",
                reason: format!(
                    "expected x [n, k], w [k, m] and b [m], got x {xs:?}, w {ws:?} and b {bs:?}"
                ),
            });
        }
        // The bias rows, one per sample: the product accumulates into them.
        let (n, m) = (xs[0], ws[1]);
        let shape = [n, m];
        let len = crate::tensor::checked_numel("linear", &shape)?;
        let data = if len == 0 {
            Storage::new()
        } else if len <= 4 {
            // m >= 1 here, so n <= 4 rows.
            (0..n).flat_map(|_| b.as_slice().iter().copied()).collect()
        } else {
            let mut v = crate::pool::try_take(len, "linear", &shape)?;
            if let [bias] = b.as_slice() {
                // One output (a neuron): a fill, not a copy per row.
                v.resize(len, *bias);
            } else {
                for _ in 0..n {
                    v.extend_from_slice(b.as_slice());
                }
            }
            SmallVec::from_vec(v)
        };
        let mut y = Tensor::from_parts(data, SmallVec::from_slice(&shape));
        gemm_into(
            self,
            Transpose::No,
            w,
            Transpose::No,
            E::ONE,
            E::ONE,
            &mut y,
        )?;
        Ok(y)
    }
}

impl<E: Float> Tensor<E> {
    /// The matrix product: `[m, k] x [k, n] -> [m, n]`, or batched `[b, m, k] x [b, k, n] ->
    /// [b, m, n]` where either operand may have batch 1 (or be rank 2) and is broadcast.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let b = Tensor::<f64>::eye(2);
    /// assert_eq!(a.matmul(&b)?, a);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Rank`] unless both operands have rank 2 or 3;
    /// [`TensorError::ShapeMismatch`] when inner sizes or batch sizes disagree.
    pub fn matmul(&self, other: &Tensor<E>) -> Result<Tensor<E>> {
        self.matmul_t(Transpose::No, other, Transpose::No)
    }

    /// The product of optionally transposed operands, `op(self) op(other)`, reading transposes
    /// through strides (no copy): `a.matmul_t(Transpose::Yes, &g, Transpose::No)` is `A^T G`.
    ///
    /// # Errors
    ///
    /// As [`Tensor::matmul`], for the transposed shapes.
    pub fn matmul_t(&self, ta: Transpose, other: &Tensor<E>, tb: Transpose) -> Result<Tensor<E>> {
        let (va, vb) = (view("matmul", self, ta)?, view("matmul", other, tb)?);
        let shape = product_shape(self, &va, other, &vb)?;
        let n = crate::tensor::len_of(&shape);
        let data: Storage<E> = if va.cols == 0 || n <= 4 {
            let mut small: Storage<E> =
                crate::tensor::try_storage_filled(E::ZERO, n, "matmul", &shape)?;
            // SAFETY: `small` holds n initialized elements of its own.
            unsafe {
                run_gemm(
                    &va,
                    self.as_slice(),
                    &vb,
                    other.as_slice(),
                    E::ONE,
                    E::ZERO,
                    (small.as_mut_ptr(), n),
                )
            };
            small
        } else {
            // With beta = 0 the kernel writes every element of C without reading it, so the
            // output is not zero-filled first.
            // The result can be far larger than either operand ([n, 1] x [1, n]): a fallible
            // allocation.
            let mut buf: Vec<E> = crate::pool::try_take(n, "matmul", &shape)?;
            let spare = buf.spare_capacity_mut();
            // SAFETY: `spare` has room for n elements, none of which is read: with beta = 0 and
            // k > 0, run_gemm writes all of them through the pointer.
            unsafe {
                run_gemm(
                    &va,
                    self.as_slice(),
                    &vb,
                    other.as_slice(),
                    E::ONE,
                    E::ZERO,
                    (spare.as_mut_ptr().cast::<E>(), n),
                )
            };
            // SAFETY: all n elements were initialized by the kernel just above.
            unsafe { buf.set_len(n) };
            SmallVec::from_vec(buf)
        };
        Ok(Tensor::from_parts(data, shape))
    }
}
