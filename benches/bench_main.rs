//! tapegrad's criterion benchmarks: one module per family, each timing tapegrad beside the
//! hand-written floor (the same math on the same matrixmultiply kernels, no framework).
//!
//! Run all: `cargo bench --bench bench_main`; one family: `cargo bench --bench bench_main -- matmul`.

use criterion::{criterion_group, criterion_main};

mod autodiff;
mod elementwise;
mod matmul;
mod training;
mod workloads;

criterion_group!(
    name = benches;
    config = criterion::Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = matmul::bench, elementwise::bench, autodiff::bench, training::bench
);
criterion_main!(benches);
