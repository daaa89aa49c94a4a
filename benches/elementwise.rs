//! Elementwise ops and reductions on 1M f32 elements, beside a plain loop over preallocated
//! buffers (the floor).

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad::tensor::Tensor;

const N: usize = 1 << 20;

/// Registers the elementwise and reduction family.
pub fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let x = Tensor::<f32>::randn(&[1024, 1024], 0.0, 1.0, &mut rng);
    let y = Tensor::<f32>::randn(&[1024, 1024], 0.0, 1.0, &mut rng);
    let bias = Tensor::<f32>::randn(&[1024], 0.0, 1.0, &mut rng);
    let mut out = vec![0.0f32; N];
    let mut group = c.benchmark_group("elementwise_1M_f32");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("add/tapegrad", |b| {
        b.iter(|| black_box(x.add(black_box(&y)).unwrap()))
    });
    group.bench_function("add/floor", |b| {
        b.iter(|| {
            for ((o, a), c) in out.iter_mut().zip(x.as_slice()).zip(y.as_slice()) {
                *o = a + c;
            }
            black_box(&out);
        })
    });
    group.bench_function("add_broadcast_row/tapegrad", |b| {
        b.iter(|| black_box(x.add(black_box(&bias)).unwrap()))
    });
    group.bench_function("add_broadcast_row/floor", |b| {
        b.iter(|| {
            for (orow, xrow) in out
                .chunks_exact_mut(1024)
                .zip(x.as_slice().chunks_exact(1024))
            {
                for ((o, a), c) in orow.iter_mut().zip(xrow).zip(bias.as_slice()) {
                    *o = a + c;
                }
            }
            black_box(&out);
        })
    });
    group.bench_function("sigmoid/tapegrad", |b| b.iter(|| black_box(x.sigmoid())));
    group.bench_function("sigmoid/floor", |b| {
        b.iter(|| {
            for (o, a) in out.iter_mut().zip(x.as_slice()) {
                *o = 1.0 / (1.0 + (-a).exp());
            }
            black_box(&out);
        })
    });
    group.bench_function("exp/tapegrad", |b| b.iter(|| black_box(x.exp())));
    group.bench_function("sum/tapegrad", |b| b.iter(|| black_box(x.sum())));
    group.bench_function("sum/floor", |b| {
        b.iter(|| black_box(x.as_slice().iter().sum::<f32>()))
    });
    group.bench_function("sum_axis0/tapegrad", |b| {
        b.iter(|| black_box(x.sum_axis(0, false).unwrap()))
    });
    group.bench_function("softmax_axis1/tapegrad", |b| {
        b.iter(|| black_box(x.softmax(1).unwrap()))
    });
    group.finish();
}
