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

/// A matrix view: the batch axes, rows, columns and strides of one operand as the product
/// sees it (`mat` elements per matrix).
struct View<'s> {
    batch: &'s [usize],
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
    mat: usize,
}

fn view<'s, E: Float>(op: &'static str, t: &'s Tensor<E>, tr: Transpose) -> Result<View<'s>> {
    let s = t.shape();
    if s.len() < 2 {
        return Err(TensorError::Rank {
            op,
            expected: "operands of rank 2 or more here (vectors go through `matmul`)",
            shape: s.to_vec(),
        });
    }
    let (batch, r, c) = (&s[..s.len() - 2], s[s.len() - 2], s[s.len() - 1]);
    let mat = r * c;
    Ok(match tr {
        Transpose::No => View {
            batch,
            rows: r,
            cols: c,
            rs: c as isize,
            cs: 1,
            mat,
        },
        Transpose::Yes => View {
            batch,
            rows: c,
            cols: r,
            rs: 1,
            cs: c as isize,
            mat,
        },
    })
}

/// How a product runs: the broadcast batch axes, each operand's batch strides along them (0
/// where it is broadcast), and the matrix sizes.
struct Plan {
    shape: Shape,
    batch: Shape,
    sa: Shape,
    sb: Shape,
    count: usize,
    m: usize,
    k: usize,
    n: usize,
}

/// Each batch axis's stride of an operand with batch axes `own` (matrices of `mat` elements),
/// aligned from the right to the broadcast batch `out`: 0 where the operand has no such axis or
/// size 1.
fn batch_strides(own: &[usize], out: &[usize], mat: usize) -> Shape {
    let pad = out.len() - own.len();
    let mut strides: Shape = SmallVec::from_elem(0, out.len());
    let mut step = mat;
    for d in (0..own.len()).rev() {
        if own[d] != 1 {
            strides[pad + d] = step;
        }
        step *= own[d];
    }
    strides
}

fn plan<E: Float>(a: &Tensor<E>, va: &View, b: &Tensor<E>, vb: &View) -> Result<Plan> {
    let mismatch = || TensorError::ShapeMismatch {
        op: "matmul",
        lhs: a.shape().to_vec(),
        rhs: b.shape().to_vec(),
    };
    if va.cols != vb.rows {
        return Err(mismatch());
    }
    if va.batch.is_empty() && vb.batch.is_empty() {
        // Two matrices: the common case, without batch bookkeeping.
        let fits = va
            .rows
            .max(1)
            .checked_mul(vb.cols.max(1))
            .is_some_and(|p| p <= isize::MAX as usize);
        if !fits {
            return Err(TensorError::TooLarge {
                op: "matmul",
                shape: vec![va.rows, vb.cols],
            });
        }
        return Ok(Plan {
            shape: SmallVec::from_buf_and_len([va.rows, vb.cols, 0, 0], 2),
            batch: Shape::new(),
            sa: Shape::new(),
            sb: Shape::new(),
            count: 1,
            m: va.rows,
            k: va.cols,
            n: vb.cols,
        });
    }
    let batch = if va.batch == vb.batch {
        crate::tensor::shape_of(va.batch)
    } else {
        crate::elementwise::broadcast_shape("matmul", va.batch, vb.batch).map_err(|e| match e {
            TensorError::Broadcast { .. } => mismatch(),
            e => e,
        })?
    };
    let mut shape = batch.clone();
    shape.push(va.rows);
    shape.push(vb.cols);
    // Zero-size operands can name sizes whose product (the result) cannot exist.
    crate::tensor::checked_numel("matmul", &shape)?;
    Ok(Plan {
        sa: batch_strides(va.batch, &batch, va.mat),
        sb: batch_strides(vb.batch, &batch, vb.mat),
        count: crate::tensor::len_of(&batch),
        batch,
        shape,
        m: va.rows,
        k: va.cols,
        n: vb.cols,
    })
}

/// Writes `out = alpha * op(a) op(b) + beta * out` where `out` already has the product's shape.
/// As BLAS, `beta = 0` overwrites `out` without reading it: a NaN or infinity it held does not
/// carry into the result, even when the inner size is 0.
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
    if let Some(t) = Tiny::of(&va, a.as_slice(), &vb, b.as_slice())
        && out.shape() == [t.m, t.n]
    {
        // SAFETY: `out` is an initialized tensor of the product's shape, apart from `a` and
        // `b` (the borrows guarantee it).
        unsafe { t.run(alpha, beta, out.as_mut_slice().as_mut_ptr()) };
        return Ok(());
    }
    let plan = plan(a, &va, b, &vb)?;
    if out.shape() != plan.shape.as_slice() {
        return Err(TensorError::ShapeMismatch {
            op: "matmul (output)",
            lhs: plan.shape.to_vec(),
            rhs: out.shape().to_vec(),
        });
    }
    let c = out.as_mut_slice();
    // SAFETY: `out` is an initialized tensor of the product's shape (checked above), a separate
    // tensor from `a` and `b` (the borrows guarantee it).
    unsafe {
        run_gemm(
            &plan,
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

/// C = beta C for a product with no terms (k = 0). As BLAS (and matrixmultiply), beta = 0
/// writes zeros without reading C: `0 * C` would keep a NaN or infinity that C held, and turn a
/// negative number into -0.
fn scale_by_beta<E: Float>(c: &mut [E], beta: E) {
    if beta == E::ZERO {
        c.fill(E::ZERO);
    } else {
        c.iter_mut().for_each(|v| *v = beta * *v);
    }
}

/// C (`m x n`, row-major in `c`) = alpha op(A) op(B) + beta C for matrices held in slices and
/// read through strides: the kernel entry for code that walks its own batches (convolution
/// over images). Splits over threads as every product does.
///
/// # Panics
///
/// When a slice is too short for the matrix its strides describe (checked before any read).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_slices<E: Float>(
    (m, k, n): (usize, usize, usize),
    alpha: E,
    a: &[E],
    (rsa, csa): (usize, usize),
    b: &[E],
    (rsb, csb): (usize, usize),
    beta: E,
    c: &mut [E],
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= m * n, "internal invariant: C holds m x n");
    if k == 0 {
        scale_by_beta(&mut c[..m * n], beta);
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        last(m, k, rsa, csa) < a.len() && last(k, n, rsb, csb) < b.len(),
        "internal invariant: the operands hold their matrices"
    );
    // SAFETY: the asserts above keep every index the kernel reads inside `a` and `b`, and C's
    // m x n elements inside `c`, which the borrow keeps apart from `a` and `b`.
    unsafe {
        gemm_blocks(
            (m, k, n),
            alpha,
            Block {
                a: a.as_ptr(),
                b: b.as_ptr(),
                c: c.as_mut_ptr(),
            },
            (rsa as isize, csa as isize),
            (rsb as isize, csb as isize),
            beta,
            (n as isize, 1),
        )
    };
}

/// `out = alpha * sum over the batch of a_i^T b_i + beta * out` for `a: [..., m, k]` and
/// `b: [..., m, n]` with the same leading axes, and `out: [k, n]`: the weight gradient of a
/// product whose weight is shared by a batch (`[b, t, k] x [k, n]`), as one product over all
/// `b t` rows instead of one per batch and a sum.
///
/// ```
/// use tapegrad_tensor::{Tensor, Transpose, gemm_tn_batch_sum_into};
/// let a = Tensor::<f64>::from_fn(&[3, 2, 4], |i| i as f64);
/// let b = Tensor::<f64>::from_fn(&[3, 2, 5], |i| (i % 7) as f64);
/// let mut out = Tensor::zeros(&[4, 5]);
/// gemm_tn_batch_sum_into(&a, &b, 1.0, 0.0, &mut out)?;
/// let by_batch = a.matmul_t(Transpose::Yes, &b, Transpose::No)?.sum_axis(0, false)?;
/// assert_eq!(out, by_batch);
/// # Ok::<(), tapegrad_tensor::TensorError>(())
/// ```
///
/// # Errors
///
/// [`TensorError::ShapeMismatch`] unless the shapes are as above.
pub fn gemm_tn_batch_sum_into<E: Float>(
    a: &Tensor<E>,
    b: &Tensor<E>,
    alpha: E,
    beta: E,
    out: &mut Tensor<E>,
) -> Result<()> {
    let (ra, rb) = (a.rank(), b.rank());
    let fits = ra >= 2
        && rb == ra
        && a.shape()[..ra - 1] == b.shape()[..rb - 1]
        && out.shape() == [a.shape()[ra - 1], b.shape()[rb - 1]];
    if !fits {
        return Err(TensorError::ShapeMismatch {
            op: "gemm_tn_batch_sum_into",
            lhs: a.shape().to_vec(),
            rhs: b.shape().to_vec(),
        });
    }
    let (k, n) = (a.shape()[ra - 1], b.shape()[rb - 1]);
    let rows = crate::tensor::len_of(&a.shape()[..ra - 1]);
    // A read as [rows, k] transposed (k x rows, strides 1 and k), B as [rows, n].
    gemm_slices(
        (k, rows, n),
        alpha,
        a.as_slice(),
        (1, k),
        b.as_slice(),
        (n, 1),
        beta,
        out.as_mut_slice(),
    );
    Ok(())
}

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Products with less work than this ([`split_work`], in multiply-adds) run on the calling
/// thread.
const PARALLEL_MIN_MACS: usize = 1 << 22;

/// What packing one element of an operand costs in multiply-adds of matrixmultiply's kernel:
/// the kernel does 16 to 32 per cycle (FMA, eight lanes, two or four at a time), packing copies
/// about one element per cycle.
const PACK_MACS: usize = 32;

/// A product's work in multiply-adds, packing and writing the output included. A thin product
/// (few columns, as a 10-class output layer's `[512, 256] x [256, 10]`, or few rows) spends
/// most of its time packing its large operand, in kernels whose lanes are mostly padding: 1.3M
/// multiply-adds take as long as 5M of a square product. Its large operand is cut in two when
/// it splits, so the split pays for it as for a square product of that work.
fn split_work(m: usize, k: usize, n: usize) -> usize {
    // The output is written as the operands are packed, an element at a time: a product with a
    // short inner size (an output layer's input gradient, `[512, 10] x [10, 256]`) is mostly
    // that writing.
    let packed = m
        .saturating_mul(k)
        .saturating_add(k.saturating_mul(n))
        .saturating_add(m.saturating_mul(n));
    m.saturating_mul(n)
        .saturating_mul(k)
        .saturating_add(packed.saturating_mul(PACK_MACS))
}

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
/// the contiguous `len` elements at `source(p)`, added in order of p.
///
/// # Safety
///
/// Every line of C must be valid for `len` writes, every `source(p)` for `len` reads, and
/// `weight` must read inside its matrix. With beta = 0, C is not read (it may be
/// uninitialized): the first term is written through the pointer (or, when k = 0, the line is
/// zeroed) before a slice is made of it.
unsafe fn accumulate_lines<E: Float>(
    (c, stride, lines, len, k): (*mut E, isize, usize, usize, usize),
    beta: E,
    weight: impl Fn(isize, isize) -> E,
    source: impl Fn(isize) -> *const E,
) {
    if len < SHORT_LINE && k.saturating_mul(len) <= SHORT_SOURCES {
        // Each block of eight elements of a line (then the elements left over, together) is
        // summed over the k terms in registers and written once ([`short_block`]).
        for l in 0..lines as isize {
            // SAFETY: the caller vouches for the line's `len` elements (j < len below).
            let start = unsafe { c.offset(l * stride) };
            let mut j = 0;
            while j < len {
                let width = (len - j).min(8);
                // SAFETY: elements j..j + width of the line and of every source line lie
                // inside them.
                unsafe {
                    if width == 8 {
                        // A constant width: the loops become a few vector operations.
                        short_block((start.add(j), j, 8), l, k, beta, &weight, &source);
                    } else {
                        short_block((start.add(j), j, width), l, k, beta, &weight, &source);
                    }
                }
                j += width;
            }
        }
        return;
    }
    for l in 0..lines as isize {
        // SAFETY: the caller vouches for the line's `len` elements, for the source lines and
        // for the weights.
        let (line, first) = unsafe {
            let start = c.offset(l * stride);
            let first = if beta != E::ZERO {
                // Times one is the value itself, bit for bit: skip the pass (a layer's bias rows).
                if beta != E::ONE {
                    std::slice::from_raw_parts_mut(start, len)
                        .iter_mut()
                        .for_each(|v| *v *= beta);
                }
                0
            } else if k == 0 {
                std::ptr::write_bytes(start, 0, len);
                0
            } else {
                // The first term written, not added to zeros: no pass over the line to clear
                // it (a product of 0 and a negative number keeps its sign, -0, here).
                let (w, src) = (weight(l, 0), std::slice::from_raw_parts(source(0), len));
                for (j, &s) in src.iter().enumerate() {
                    start.add(j).write(w * s);
                }
                1
            };
            (std::slice::from_raw_parts_mut(start, len), first)
        };
        for p in first..k as isize {
            // SAFETY: as above, for the source line and the weight.
            let (w, src) = unsafe { (weight(l, p), std::slice::from_raw_parts(source(p), len)) };
            axpy(line, w, src);
        }
    }
}

/// Lines shorter than this are summed eight elements at a time in registers, over all k
/// terms, and written once ([`short_block`]); longer ones a term at a time through
/// memory ([`axpy`]), which reads each source line straight through.
const SHORT_LINE: usize = 64;

/// Short lines are summed in blocks only when their k source lines hold at most this many
/// elements in all (16 KB of f32), so that they stay in the L1 cache while each block of eight
/// goes through them again. A matrix-vector product over many rows (logistic regression's
/// `X^T g`, 569 rows of 30) reads them once, a term at a time, instead: W3 runs at 0.45x its
/// floor that way, 0.47x in blocks.
const SHORT_SOURCES: usize = 4096;

/// Elements `j..j + width` (`width` <= 8) of line `l` at `out`, summed in a local array over
/// the k terms, which the compiler keeps in vector registers, and written once, rather than
/// read and written back once per term. Every element gets the same operations in the same
/// order as [`accumulate_lines`]' long-line path (beta times C, or the first term, then each
/// term added in order of p), so the same bits.
///
/// # Safety
///
/// The `width` elements at `out` must be valid for writes (and reads unless beta = 0), and
/// elements `j..j + width` of every source line valid for reads.
#[inline(always)]
unsafe fn short_block<E: Float>(
    (out, j, width): (*mut E, usize, usize),
    l: isize,
    k: usize,
    beta: E,
    weight: &impl Fn(isize, isize) -> E,
    source: &impl Fn(isize) -> *const E,
) {
    let mut acc = [E::ZERO; 8];
    let acc = &mut acc[..width.min(8)];
    // SAFETY: as the caller vouches; with beta = 0, `out` is only written.
    unsafe {
        let first = if beta != E::ZERO {
            for (t, a) in acc.iter_mut().enumerate() {
                let v = out.add(t).read();
                // Times one is the value itself, bit for bit (a layer's bias rows).
                *a = if beta != E::ONE { v * beta } else { v };
            }
            0
        } else if k == 0 {
            0
        } else {
            let (w, src) = (weight(l, 0), source(0).add(j));
            for (t, a) in acc.iter_mut().enumerate() {
                *a = w * src.add(t).read();
            }
            1
        };
        for p in first..k as isize {
            let (w, src) = (weight(l, p), source(p).add(j));
            for (t, a) in acc.iter_mut().enumerate() {
                *a += w * src.add(t).read();
            }
        }
        for (t, &a) in acc.iter().enumerate() {
            out.add(t).write(a);
        }
    }
}

/// `line += w * src`, eight elements to a step through fixed-size arrays, which the compiler
/// turns into a few vector operations even for a line of eight (each element gets one
/// multiply-add, in the same order as a plain loop).
#[inline]
fn axpy<E: Float>(line: &mut [E], w: E, src: &[E]) {
    let mut lines = line.chunks_exact_mut(8);
    let mut srcs = src.chunks_exact(8);
    for (c, s) in (&mut lines).zip(&mut srcs) {
        let (Ok(c), Ok(s)) = (<&mut [E; 8]>::try_from(c), <&[E; 8]>::try_from(s)) else {
            unreachable!("chunks of eight");
        };
        for t in 0..8 {
            c[t] += w * s[t];
        }
    }
    for (c, &s) in lines.into_remainder().iter_mut().zip(srcs.remainder()) {
        *c += w * s;
    }
}

/// The dot product of two equally long slices, in eight independent partial sums so that the
/// loop vectorizes (one running sum is a chain of dependent additions the compiler may not
/// reorder).
#[inline]
fn dot<E: Float>(a: &[E], b: &[E]) -> E {
    let mut acc = [E::ZERO; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = E::ZERO;
    for (&x, &y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// A product of two matrices (no batch axes) of at most [`TINY_MACS`] multiply-adds, run by
/// the plain loops directly: the very call [`gemm_blocks`] makes for such a product (so the
/// same numbers), without the plan, the batch bookkeeping and the dispatch, which cost more
/// than a tiny network's product itself.
struct Tiny<'s, E> {
    m: usize,
    k: usize,
    n: usize,
    a: &'s [E],
    b: &'s [E],
    sa: (isize, isize),
    sb: (isize, isize),
}

impl<'s, E: Float> Tiny<'s, E> {
    /// The product of the views, if it is tiny; `None` for anything else.
    fn of(va: &View, a: &'s [E], vb: &View, b: &'s [E]) -> Option<Self> {
        let (m, k, n) = (va.rows, va.cols, vb.cols);
        let macs = m.checked_mul(k)?.checked_mul(n)?;
        let plain = va.batch.is_empty() && vb.batch.is_empty() && vb.rows == k;
        (plain && k > 0 && macs > 0 && macs <= TINY_MACS).then_some(Tiny {
            m,
            k,
            n,
            a,
            b,
            sa: (va.rs, va.cs),
            sb: (vb.rs, vb.cs),
        })
    }

    /// C (`m x n`, row-major) = alpha A B + beta C.
    ///
    /// # Safety
    ///
    /// `c` must be valid for `m * n` writes, initialized unless beta = 0, and apart from the
    /// operands.
    unsafe fn run(&self, alpha: E, beta: E, c: *mut E) {
        let block = Block {
            a: self.a.as_ptr(),
            b: self.b.as_ptr(),
            c,
        };
        // SAFETY: the views come from the operands' shapes, so every index the loops read lies
        // inside `a` and `b`; the caller vouches for `c`.
        unsafe {
            gemm_tiny(
                (self.m, self.k, self.n),
                alpha,
                block,
                self.sa,
                self.sb,
                beta,
                (self.n as isize, 1),
            )
        }
    }
}

/// C = alpha op(A) op(B) + beta C by plain loops, for tiny products (a 2-8-1 network's layers)
/// and for matrix-vector products (one row or one column of output), where matrixmultiply
/// would pack both operands to compute one line.
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
                acc = dot(a, b);
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
    let macs = m.saturating_mul(n).saturating_mul(k);
    let vector = (m == 1 || n == 1) && (macs < PARALLEL_MIN_MACS || num_threads() <= 1);
    if macs <= TINY_MACS || vector {
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
    if threads <= 1 || split_work(m, k, n) < PARALLEL_MIN_MACS {
        run(block, m, n);
        return;
    }
    let split_rows = m >= n;
    let total = if split_rows { m } else { n };
    let parts = threads.min(total);
    let chunk = total.div_ceil(parts);
    let blocks: SmallVec<[(Block<E>, usize, usize); 8]> = (0..parts)
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
    let run = &run;
    let jobs: SmallVec<[_; 8]> = blocks
        .iter()
        .map(|&(blk, bm, bn)| move || run(blk, bm, bn))
        .collect();
    let refs: SmallVec<[&(dyn Fn() + Sync); 8]> =
        jobs.iter().map(|j| j as &(dyn Fn() + Sync)).collect();
    crate::workers::run_parallel(&refs);
}

/// C = alpha op(A) op(B) + beta C for every batch of `plan`, into the `len` elements at `c`.
///
/// # Safety
///
/// `c` must be valid for writes of `len` elements, where `len` is the product's size (batches x
/// m x n), and not alias `a` or `b`. With beta = 0 and k > 0 the elements may be uninitialized:
/// every one is written without being read (no reference to them is made before). Otherwise
/// they must be initialized.
#[allow(clippy::too_many_arguments)]
unsafe fn run_gemm<E: Float>(
    plan: &Plan,
    va: &View,
    a: &[E],
    vb: &View,
    b: &[E],
    alpha: E,
    beta: E,
    (c, len): (*mut E, usize),
) {
    let (m, k, n, count) = (plan.m, plan.k, plan.n, plan.count);
    assert!(
        len >= count * m * n,
        "internal invariant: the output holds the product"
    );
    if m == 0 || n == 0 || count == 0 {
        return;
    }
    if k == 0 {
        // SAFETY: the caller initialized C unless beta = 0 and k > 0.
        let cs = unsafe { std::slice::from_raw_parts_mut(c, count * m * n) };
        scale_by_beta(cs, beta);
        return;
    }
    // One weight matrix for a whole batch of A read as stored ([.., m, k] x [k, n]): the batch
    // folds into the rows of one product, with no loop and no per-batch call.
    if plan.batch.is_empty() {
        // SAFETY: as below, for the one product.
        unsafe {
            gemm_blocks(
                (m, k, n),
                alpha,
                Block {
                    a: a.as_ptr(),
                    b: b.as_ptr(),
                    c,
                },
                (va.rs, va.cs),
                (vb.rs, vb.cs),
                beta,
                (n as isize, 1),
            )
        };
        return;
    }
    let fold = count > 1
        && plan.sb.iter().all(|&s| s == 0)
        && va.batch == plan.batch.as_slice()
        && va.cs == 1
        && va.rs == k as isize;
    let (rows, batches) = if fold { (count * m, 1) } else { (m, count) };
    let mut idx: Shape = SmallVec::from_elem(0, plan.batch.len());
    let (mut oa, mut ob) = (0usize, 0usize);
    for i in 0..batches {
        // SAFETY: batch i's rows * n elements lie inside the `len` the caller vouched for.
        let cs = unsafe { c.add(i * m * n) };
        // SAFETY: the plan's strides come from these tensors' shapes, so every index the
        // kernel reads lies inside `a` and `b`, and `cs` points at rows * n elements it owns.
        unsafe {
            gemm_blocks(
                (rows, k, n),
                alpha,
                Block {
                    a: a.as_ptr().add(oa),
                    b: b.as_ptr().add(ob),
                    c: cs,
                },
                (va.rs, va.cs),
                (vb.rs, vb.cs),
                beta,
                (n as isize, 1),
            );
        }
        // The odometer over the batch axes, moving both operands' offsets along.
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            oa += plan.sa[d];
            ob += plan.sb[d];
            if idx[d] < plan.batch[d] {
                break;
            }
            oa -= plan.sa[d] * plan.batch[d];
            ob -= plan.sb[d] * plan.batch[d];
            idx[d] = 0;
        }
    }
}

impl<E: Float> Tensor<E> {
    /// The affine map `self W + b` of `self: [..., k]` with `w: [k, m]` and `b: [m]`, giving
    /// `[..., m]`, as one kernel call over all rows that accumulates the product into the bias
    /// rows (PyTorch's `addmm`, and `F.linear` with a transposed weight).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[1, 2])?;
    /// let w = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[2, 2])?;
    /// let b = Tensor::from_vec(vec![10.0, 20.0], &[2])?;
    /// assert_eq!(x.linear(&w, &b)?.to_vec(), vec![11.0, 22.0]);
    /// let seq = Tensor::<f64>::ones(&[4, 3, 2]);
    /// assert_eq!(seq.linear(&w, &b)?.shape(), &[4, 3, 2]);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] naming the three shapes unless they are `[..., k]` (rank 2 or
    /// more), `[k, m]` and `[m]`.
    pub fn linear(&self, w: &Tensor<E>, b: &Tensor<E>) -> Result<Tensor<E>> {
        let shape = self.linear_shape(w, b)?;
        let xs = self.shape();
        let r = xs.len();
        // The bias rows, one per sample: the product accumulates into them.
        let n = crate::tensor::len_of(&xs[..r - 1]);
        let len = crate::tensor::checked_numel("linear", &shape)?;
        let data = if len == 0 {
            Storage::new()
        } else if len <= 4 {
            // m >= 1 here, so n <= 4 rows.
            crate::tensor::collect_storage((0..len).map(|i| b.as_slice()[i % b.len()]))
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
        let mut y = Tensor::from_parts(data, shape);
        let (k, m) = (w.shape()[0], w.shape()[1]);
        let macs = n.saturating_mul(k).saturating_mul(m);
        if r == 2 && k > 0 && macs > 0 && macs <= TINY_MACS {
            // A tiny layer (a 2-8-1 network's): the very loops `gemm_into` reaches for it,
            // without its views and checks, which the shapes checked above make moot.
            let t = Tiny {
                m: n,
                k,
                n: m,
                a: self.as_slice(),
                b: w.as_slice(),
                sa: (k as isize, 1),
                sb: (m as isize, 1),
            };
            // SAFETY: `y` holds the n x m bias rows, initialized, apart from `self` and `w`;
            // `a` is n x k and `b` is k x m, row-major, as the shapes checked above say.
            unsafe { t.run(E::ONE, E::ONE, y.as_mut_slice().as_mut_ptr()) };
            return Ok(y);
        }
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

    /// [`Tensor::linear`] into `out`, a tensor of the result's shape whose buffer is reused:
    /// the same bias rows and the same product added into them, so the same numbers.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[1, 2])?;
    /// let w = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[2, 2])?;
    /// let b = Tensor::from_vec(vec![10.0, 20.0], &[2])?;
    /// let mut out = Tensor::zeros(&[1, 2]);
    /// x.linear_into(&w, &b, &mut out)?;
    /// assert_eq!(out, x.linear(&w, &b)?);
    /// assert!(x.linear_into(&w, &b, &mut Tensor::zeros(&[2, 2])).is_err());
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Tensor::linear`], and [`TensorError::ShapeMismatch`] when `out` does not have the
    /// result's shape.
    pub fn linear_into(&self, w: &Tensor<E>, b: &Tensor<E>, out: &mut Tensor<E>) -> Result<()> {
        let shape = self.linear_shape(w, b)?;
        if out.shape() != shape.as_slice() {
            return Err(TensorError::ShapeMismatch {
                op: "linear (output)",
                lhs: shape.to_vec(),
                rhs: out.shape().to_vec(),
            });
        }
        for row in out.as_mut_slice().chunks_exact_mut(b.len().max(1)) {
            row.copy_from_slice(b.as_slice());
        }
        gemm_into(self, Transpose::No, w, Transpose::No, E::ONE, E::ONE, out)
    }

    /// The shape of `self W + b`, or the error naming the three shapes.
    ///
    /// Inlined into every layer's step (a call cost as much as the check): the error is built
    /// out of line, and `b`'s shape is compared by its length and element (`!=` on slices
    /// calls `memcmp`).
    #[inline(always)]
    fn linear_shape(&self, w: &Tensor<E>, b: &Tensor<E>) -> Result<Shape> {
        let (xs, ws, bs) = (self.shape(), w.shape(), b.shape());
        let r = xs.len();
        let fits = r >= 2 && ws.len() == 2 && xs[r - 1] == ws[0] && bs.len() == 1 && bs[0] == ws[1];
        if !fits {
            return Err(linear_shapes_error(xs, ws, bs));
        }
        // Built whole from x's leading axes and w's columns, rather than copied from x's shape
        // and then changed: a copy of the result reads the changed element back at once, and a
        // load that spans an earlier store stalls.
        let m = ws[1];
        Ok(match *xs {
            [a, _] => SmallVec::from_buf_and_len([a, m, 0, 0], 2),
            [a, b, _] => SmallVec::from_buf_and_len([a, b, m, 0], 3),
            [a, b, c, _] => SmallVec::from_buf_and_len([a, b, c, m], 4),
            _ => {
                let mut shape = Shape::from_slice(xs);
                shape[r - 1] = m;
                shape
            }
        })
    }
}

/// [`Tensor::linear`]'s error for shapes that do not fit, naming all three.
#[cold]
fn linear_shapes_error(xs: &[usize], ws: &[usize], bs: &[usize]) -> TensorError {
    TensorError::Invalid {
        op: "linear",
        reason: format!(
            "expected x [..., k], w [k, m] and b [m], got x {xs:?}, w {ws:?} and b {bs:?}"
        ),
    }
}

impl<E: Float> Tensor<E> {
    /// The matrix product with `torch.matmul`'s rules: `[m, k] x [k, n] -> [m, n]`; leading
    /// (batch) axes broadcast, so `[b, h, m, k] x [b, h, k, n] -> [b, h, m, n]` and
    /// `[b, t, k] x [k, n] -> [b, t, n]` (computed as one product over all `b t` rows); a rank-1
    /// operand is a row (on the left) or a column (on the right) whose axis is then dropped, so
    /// two vectors give their dot product.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let a = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let b = Tensor::<f64>::eye(2);
    /// assert_eq!(a.matmul(&b)?, a);
    /// let heads = Tensor::<f64>::ones(&[2, 3, 4, 5]);
    /// assert_eq!(heads.matmul(&Tensor::ones(&[3, 5, 6]))?.shape(), &[2, 3, 4, 6]);
    /// let v = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2])?;
    /// assert_eq!(v.matmul(&v)?.item()?, 5.0);
    /// assert_eq!(a.matmul(&v)?.to_vec(), vec![5.0, 11.0]);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Rank`] for a rank-0 operand; [`TensorError::ShapeMismatch`] when the
    /// inner sizes disagree or the batch axes do not broadcast.
    pub fn matmul(&self, other: &Tensor<E>) -> Result<Tensor<E>> {
        let (ra, rb) = (self.rank(), other.rank());
        if ra >= 2 && rb >= 2 {
            return self.matmul_t(Transpose::No, other, Transpose::No);
        }
        if ra == 0 || rb == 0 {
            return Err(TensorError::Rank {
                op: "matmul",
                expected: "operands of rank 1 or more",
                shape: if ra == 0 { self.shape() } else { other.shape() }.to_vec(),
            });
        }
        // A vector on the left is a row [1, k], on the right a column [k, 1]; the added axis
        // is dropped from the result.
        let a = if ra == 1 {
            std::borrow::Cow::Owned(self.reshape(&[1, self.len()])?)
        } else {
            std::borrow::Cow::Borrowed(self)
        };
        let b = if rb == 1 {
            std::borrow::Cow::Owned(other.reshape(&[other.len(), 1])?)
        } else {
            std::borrow::Cow::Borrowed(other)
        };
        let y = a
            .matmul_t(Transpose::No, &b, Transpose::No)
            .map_err(|e| match e {
                TensorError::ShapeMismatch { .. } => TensorError::ShapeMismatch {
                    op: "matmul",
                    lhs: self.shape().to_vec(),
                    rhs: other.shape().to_vec(),
                },
                e => e,
            })?;
        let mut shape = y.shape().to_vec();
        if rb == 1 {
            shape.pop();
        }
        if ra == 1 {
            shape.remove(shape.len() - 1 - usize::from(rb != 1));
        }
        y.reshape(&shape)
    }

    /// The product of optionally transposed operands, `op(self) op(other)`, reading transposes
    /// through strides (no copy): `a.matmul_t(Transpose::Yes, &g, Transpose::No)` is `A^T G`.
    ///
    /// # Errors
    ///
    /// As [`Tensor::matmul`], for the transposed shapes.
    pub fn matmul_t(&self, ta: Transpose, other: &Tensor<E>, tb: Transpose) -> Result<Tensor<E>> {
        let (va, vb) = (view("matmul", self, ta)?, view("matmul", other, tb)?);
        if let Some(t) = Tiny::of(&va, self.as_slice(), &vb, other.as_slice()) {
            // At most TINY_MACS elements (k >= 1), a size the operands vouch for.
            let n = t.m * t.n;
            let data: Storage<E> = if n <= 4 {
                let mut small: Storage<E> = crate::tensor::storage_filled(E::ZERO, n);
                // SAFETY: `small` holds n initialized elements of its own.
                unsafe { t.run(E::ONE, E::ZERO, small.as_mut_ptr()) };
                small
            } else {
                let mut buf: Vec<E> = crate::pool::take(n);
                // SAFETY: with beta = 0 and k > 0 the loops write all n elements through the
                // pointer without reading them, and `buf` has room for n.
                unsafe {
                    t.run(
                        E::ONE,
                        E::ZERO,
                        buf.spare_capacity_mut().as_mut_ptr().cast(),
                    );
                    buf.set_len(n);
                }
                SmallVec::from_vec(buf)
            };
            return Ok(Tensor::from_parts(data, SmallVec::from_slice(&[t.m, t.n])));
        }
        let plan = plan(self, &va, other, &vb)?;
        let shape = crate::tensor::shape_of(&plan.shape);
        let n = crate::tensor::len_of(&shape);
        let data: Storage<E> = if va.cols == 0 || n <= 4 {
            let mut small: Storage<E> =
                crate::tensor::try_storage_filled(E::ZERO, n, "matmul", &shape)?;
            // SAFETY: `small` holds n initialized elements of its own.
            unsafe {
                run_gemm(
                    &plan,
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
                    &plan,
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

#[cfg(test)]
mod split_tests {
    use super::{PARALLEL_MIN_MACS, split_work};

    #[test]
    fn thin_products_split_for_their_packing_and_small_square_ones_do_not() {
        let splits = |m, k, n| split_work(m, k, n) >= PARALLEL_MIN_MACS;
        // A 10-class output layer at batch 512 and its weight gradient: 1.3M multiply-adds,
        // most of their time packing the large operand.
        assert!(splits(512, 256, 10));
        assert!(splits(256, 512, 10));
        // A batch of four through a 784 x 256 layer: packing the weight is the product's cost.
        assert!(splits(4, 784, 256));
        // The output layer's input gradient at batch 512 (an inner size of 10): writing its
        // 131k outputs is the product's cost. At batch 64 it stays on one thread.
        assert!(splits(512, 10, 256));
        assert!(!splits(64, 10, 256));
        // What split before still splits.
        assert!(splits(64, 784, 256));
        // A batch of small square products' rows (a shared 32 x 32 weight): 1M multiply-adds
        // with little packing stays on one thread, as do a batch of 256 through the output
        // layer and tiny products.
        assert!(!splits(1024, 32, 32));
        assert!(!splits(256, 256, 10));
        assert!(!splits(4, 8, 1));
        // Saturating, never wrapping.
        assert_eq!(split_work(usize::MAX, 2, 2), usize::MAX);
    }
}
