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

/// W2's forward product (64 x 784 times 784 x 256, split in two at two threads) after 100 us of
/// other work on the calling thread, as between the products of a training step: with the
/// workers' spin time at zero (they sleep at once and must be woken), at the default (a worker
/// is still awake), and on one thread.
fn split_after_pause(c: &mut Criterion) {
    let (threads, spin) = (
        tapegrad::tensor::num_threads(),
        tapegrad::tensor::spin_time(),
    );
    let mut group = c.benchmark_group("split_product_after_100us");
    let mut rng = StdRng::seed_from_u64(0);
    let x = Tensor::<f32>::rand_uniform(&[64, 784], 0.0, 1.0, &mut rng);
    let w = Tensor::<f32>::rand_uniform(&[784, 256], -0.1, 0.1, &mut rng);
    let step = || {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_micros(100) {
            std::hint::spin_loop();
        }
        black_box(x.matmul(black_box(&w)).unwrap())
    };
    for (name, n, spin) in [
        ("two_threads_spin_0", 2, std::time::Duration::ZERO),
        (
            "two_threads_spin_500us",
            2,
            std::time::Duration::from_micros(500),
        ),
        ("one_thread", 1, std::time::Duration::ZERO),
    ] {
        tapegrad::tensor::set_num_threads(n);
        tapegrad::tensor::set_spin_time(spin);
        group.bench_function(name, |bench| bench.iter(step));
    }
    group.finish();
    tapegrad::tensor::set_num_threads(threads);
    tapegrad::tensor::set_spin_time(spin);
}

/// Registers the matmul family.
pub fn bench(c: &mut Criterion) {
    family::<f32>(c);
    family::<f64>(c);
    split_after_pause(c);
}
