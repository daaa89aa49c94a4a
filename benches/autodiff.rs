//! Autodiff overhead against the hand-written floor.
//!
//! - `scalar_chain`: leaves x0 = 0.5, a = 1.0001, b = 0.0001; 10,000 times
//!   `x = sigmoid(x * a + b)` (30,000 nodes), then backward, on one reused tape. The floor is
//!   the same forward and reverse sweep as plain Rust loops. Throughput is in nodes, so
//!   criterion's time per element is the time per node.
//! - `matmul_grad_512`: C = A B with 512 x 512 operands, loss = sum(C), forward and backward,
//!   beside three raw matrixmultiply calls (C = A B, dA = G B^T, dB = A^T G) on preallocated
//!   buffers.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad::prelude::*;

const STEPS: usize = 10_000;

/// The scalar chain on the tape; returns (x_final, da, db).
pub fn chain_tapegrad(tape: &mut Tape<f32>, check_finite: bool) -> (f32, f32, f32) {
    tape.clear();
    tape.set_check_finite(check_finite);
    let mut x = tape.var(Tensor::scalar(0.5));
    let a = tape.var(Tensor::scalar(1.0001));
    let b = tape.var(Tensor::scalar(0.0001));
    for _ in 0..STEPS {
        x = (x * a + b).sigmoid();
    }
    let grads = tape.backward(x).expect("scalar loss");
    let out = x.item().expect("scalar");
    (out, grads[a].as_slice()[0], grads[b].as_slice()[0])
}

/// The same math by hand: a forward loop that keeps each output, and the reverse sweep.
pub fn chain_floor(xs: &mut Vec<f32>) -> (f32, f32, f32) {
    let (a, b) = (1.0001f32, 0.0001f32);
    xs.clear();
    let mut x = 0.5f32;
    xs.push(x);
    for _ in 0..STEPS {
        let z = x * a + b;
        x = 1.0 / (1.0 + (-z).exp());
        xs.push(x);
    }
    let (mut gx, mut ga, mut gb) = (1.0f32, 0.0f32, 0.0f32);
    for i in (0..STEPS).rev() {
        let y = xs[i + 1];
        let gz = gx * y * (1.0 - y);
        ga += gz * xs[i];
        gb += gz;
        gx = gz * a;
    }
    (x, ga, gb)
}

fn scalar_chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("scalar_chain");
    group.throughput(Throughput::Elements(3 * STEPS as u64));
    let mut tape = Tape::<f32>::with_capacity(3 * STEPS + 8);
    group.bench_function("tapegrad", |bench| {
        bench.iter(|| black_box(chain_tapegrad(&mut tape, false)))
    });
    group.bench_function("tapegrad_check_finite", |bench| {
        bench.iter(|| black_box(chain_tapegrad(&mut tape, true)))
    });
    let mut xs = Vec::with_capacity(STEPS + 1);
    group.bench_function("floor", |bench| {
        bench.iter(|| black_box(chain_floor(&mut xs)))
    });
    group.finish();
}

fn raw(
    a: &[f32],
    (rsa, csa): (isize, isize),
    b: &[f32],
    (rsb, csb): (isize, isize),
    c: &mut [f32],
    n: usize,
) {
    // SAFETY: every buffer holds n * n elements and the strides describe n x n views of them.
    unsafe {
        f32::gemm(
            n,
            n,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn matmul_grad(c: &mut Criterion) {
    const N: usize = 512;
    let mut rng = StdRng::seed_from_u64(0);
    let a = Tensor::<f32>::randn(&[N, N], 0.0, 1.0, &mut rng);
    let b = Tensor::<f32>::randn(&[N, N], 0.0, 1.0, &mut rng);
    let mut group = c.benchmark_group("matmul_grad_512");
    group.sample_size(20);
    let mut tape = Tape::<f32>::new();
    group.bench_function("tapegrad", |bench| {
        bench.iter(|| {
            tape.clear();
            let (va, vb) = (tape.var(a.clone()), tape.var(b.clone()));
            let loss = va.matmul(vb).expect("shapes fit").sum();
            let grads = tape.backward(loss).expect("scalar loss");
            black_box((grads[va].as_slice()[0], grads[vb].as_slice()[0]));
        })
    });
    let (mut out, mut da, mut db) = (vec![0.0; N * N], vec![0.0; N * N], vec![0.0; N * N]);
    let g = vec![1.0f32; N * N];
    let n = N as isize;
    group.bench_function("floor_3_gemm", |bench| {
        bench.iter(|| {
            raw(a.as_slice(), (n, 1), b.as_slice(), (n, 1), &mut out, N);
            raw(&g, (n, 1), b.as_slice(), (1, n), &mut da, N);
            raw(a.as_slice(), (1, n), &g, (n, 1), &mut db, N);
            black_box((out[0], da[0], db[0]));
        })
    });
    group.finish();
}

/// Registers the autodiff family.
pub fn bench(c: &mut Criterion) {
    scalar_chain(c);
    matmul_grad(c);
}
