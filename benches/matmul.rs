//! matmul at 64, 256, 512 and 1024 in f32 and f64: `Tensor::matmul` beside a raw
//! matrixmultiply call on the same buffers. Throughput is in FLOP (2 n^3 per product), so
//! criterion's "elem/s" column reads as FLOP/s.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad::tensor::{Float, Tensor};

fn raw_gemm<E: Float>(n: usize, a: &[E], b: &[E], c: &mut [E]) {
    let s = n as isize;
    // SAFETY: a, b and c each hold n * n elements, row-major, and c aliases neither input.
    unsafe {
        E::gemm(
            n,
            n,
            n,
            E::ONE,
            a.as_ptr(),
            s,
            1,
            b.as_ptr(),
            s,
            1,
            E::ZERO,
            c.as_mut_ptr(),
            s,
            1,
        );
    }
}

fn family<E: Float>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("matmul_{}", E::DTYPE));
    let mut rng = StdRng::seed_from_u64(0);
    for &n in &[64usize, 256, 512, 1024] {
        let a = Tensor::<E>::randn(&[n, n], E::ZERO, E::ONE, &mut rng);
        let b = Tensor::<E>::randn(&[n, n], E::ZERO, E::ONE, &mut rng);
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        if n >= 1024 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::new("tapegrad", n), &n, |bench, _| {
            bench.iter(|| black_box(a.matmul(black_box(&b)).unwrap()))
        });
        let mut out = vec![E::ZERO; n * n];
        group.bench_with_input(BenchmarkId::new("raw_matrixmultiply", n), &n, |bench, _| {
            bench.iter(|| {
                raw_gemm(
                    n,
                    black_box(a.as_slice()),
                    black_box(b.as_slice()),
                    &mut out,
                )
            })
        });
    }
    group.finish();
}

/// Registers the matmul family.
pub fn bench(c: &mut Criterion) {
    family::<f32>(c);
    family::<f64>(c);
}
