//! Autodiff overhead against the hand-written floor.
//!
//! - `scalar_chain`: leaves x0 = 0.5, a = 1.0001, b = 0.0001; 10,000 times
//!   `x = sigmoid(x * a + b)` (30,000 nodes), then backward, on one reused tape. The floor is
//!   the same forward and reverse sweep as plain Rust loops. Throughput is in nodes, so
//!   criterion's time per element is the time per node.
//! - `matmul_grad_512`: C = A B with 512 x 512 operands, loss = sum(C), forward and backward,
//!   beside three raw matrixmultiply calls (C = A B, dA = G B^T, dB = A^T G) on preallocated
//!   buffers.
//! - `W6_shared_weight`: sum([256, 4, 32] x [32, 32]), forward and backward, beside the one 2-D
//!   product over all 1024 rows (and its two gradient products).
//! - `W7_attention`: single-head attention, B = 8, T = 16, D = 32, forward and backward, beside
//!   the same math by hand (projections over all rows, per-sequence products, softmax loops).
//! - `W8_conv2d`: 3x3 convolution, 32 -> 64 channels, 28 x 28, batch 64, padding 1, forward and
//!   backward, beside im2col, one product per image, col2im and an in-place weight gradient.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use tapegrad::prelude::*;

use crate::workloads::{
    Attention, CHAIN_STEPS as STEPS, Conv, MatmulGrad, SharedWeight, chain_floor, chain_tapegrad,
};

fn scalar_chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("W1_scalar_chain");
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

fn matmul_grad(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!(
        "W4_matmul_grad_512_t{}",
        tapegrad::tensor::num_threads()
    ));
    group.sample_size(20);
    let mut w = MatmulGrad::new();
    group.bench_function("tapegrad", |b| b.iter(|| black_box(w.tapegrad())));
    group.bench_function("floor_3_gemm", |b| b.iter(|| black_box(w.floor())));
    group.finish();
}

fn architectures(c: &mut Criterion) {
    let mut group = c.benchmark_group("W6_shared_weight");
    let mut w = SharedWeight::new();
    group.bench_function("tapegrad", |b| b.iter(|| black_box(w.tapegrad())));
    group.bench_function("floor", |b| b.iter(|| black_box(w.floor())));
    group.finish();
    let mut group = c.benchmark_group("W7_attention");
    let mut a = Attention::new();
    group.bench_function("tapegrad", |b| b.iter(|| black_box(a.tapegrad())));
    group.bench_function("floor", |b| b.iter(|| black_box(a.floor())));
    group.finish();
    let mut group = c.benchmark_group("W8_conv2d");
    group.sample_size(10);
    let mut k = Conv::new();
    group.bench_function("tapegrad", |b| b.iter(|| black_box(k.tapegrad())));
    group.bench_function("floor", |b| b.iter(|| black_box(k.floor())));
    group.finish();
}

/// Registers the autodiff family.
pub fn bench(c: &mut Criterion) {
    scalar_chain(c);
    matmul_grad(c);
    architectures(c);
}
