//! Training steps W2 (784-256-10, batch 64), W2b (batch 512), W3 (logistic regression, 569 x 30
//! full batch) and W5 (XOR, 2-8-1, 4 samples; also replayed, `Tape::replay`): tapegrad beside
//! the hand-written floor. Run at
//! one and two threads with `TAPEGRAD_NUM_THREADS=1` / `=2`.

use std::hint::black_box;

use criterion::Criterion;

use crate::workloads::{LogregFloor, LogregTapegrad, MlpFloor, MlpReplay, MlpTapegrad};

/// Registers the training-step family.
pub fn bench(c: &mut Criterion) {
    let threads = tapegrad::tensor::num_threads();
    for (id, sizes, batch) in [
        ("W2_mlp_784_256_10_b64", [784usize, 256, 10], 64usize),
        ("W2b_mlp_784_256_10_b512", [784, 256, 10], 512),
        ("W5_xor_2_8_1_b4", [2, 8, 1], 4),
    ] {
        let mut group = c.benchmark_group(format!("{id}_t{threads}"));
        let mut t = MlpTapegrad::new(&sizes, batch, 0.1);
        group.bench_function("tapegrad", |b| b.iter(|| black_box(t.step())));
        let mut f = MlpFloor::new(&sizes, batch, 0.1);
        group.bench_function("floor", |b| b.iter(|| black_box(f.step())));
        if sizes[2] == 1 {
            // W5r: the same step with its graph recorded once and replayed.
            let mut r = MlpReplay::new(&sizes, batch, 0.1);
            group.bench_function("tapegrad_replayed", |b| b.iter(|| black_box(r.step())));
        }
        group.finish();
    }
    let mut group = c.benchmark_group(format!("W3_logreg_569x30_t{threads}"));
    let mut t = LogregTapegrad::new();
    group.bench_function("tapegrad", |b| b.iter(|| black_box(t.step())));
    let mut f = LogregFloor::new();
    group.bench_function("floor", |b| b.iter(|| black_box(f.step())));
    group.finish();
}
