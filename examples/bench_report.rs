//! Runs the performance workloads W1-W5 for a few seconds each at one and at two threads and
//! prints a Markdown table: tapegrad, the hand-written floor (same math, same kernels, no
//! graph), and their ratio. The criterion benches (`cargo bench --bench bench_main`) measure
//! the same code more carefully.
//!
//! Run: `cargo run --release --example bench_report`

#[path = "../benches/workloads.rs"]
mod workloads;

use std::hint::black_box;
use std::time::Instant;

use tapegrad::prelude::*;
use workloads::*;

/// Times `ours` and `floor` in alternating repetitions of `inner` calls each (so a slow spell
/// of a noisy machine hits both), after a warm-up. Returns the median time per call of each, in
/// seconds, and the median of the per-repetition ratios.
fn time_pair(
    mut ours: impl FnMut(),
    mut floor: impl FnMut(),
    inner: usize,
    reps: usize,
) -> (f64, f64, f64) {
    for _ in 0..inner.div_ceil(4).max(1) {
        ours();
        floor();
    }
    let once = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..inner {
            f();
        }
        t.elapsed().as_secs_f64() / inner as f64
    };
    let mut samples: Vec<(f64, f64)> = (0..reps)
        .map(|_| (once(&mut ours), once(&mut floor)))
        .collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratio = median(samples.iter().map(|(a, b)| a / b).collect());
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let o = samples[reps / 2].0;
    (o, median(samples.iter().map(|s| s.1).collect()), ratio)
}

struct Row {
    id: &'static str,
    what: &'static str,
    unit: &'static str,
    scale: f64,
    threads: usize,
    /// tapegrad's and the floor's median seconds per call, and the median ratio.
    t: (f64, f64, f64),
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 15 };
    let mut rows = Vec::new();
    for threads in [1, 2] {
        tapegrad::tensor::set_num_threads(threads);
        let mut tape = Tape::<f32>::with_capacity(3 * CHAIN_STEPS + 8);
        let mut xs = Vec::with_capacity(CHAIN_STEPS + 1);
        let nodes = 3.0 * CHAIN_STEPS as f64;
        rows.push(Row {
            id: "W1",
            what: "scalar chain, 30k nodes, record + backward",
            unit: "ns/node",
            scale: 1e9 / nodes,
            threads,
            t: time_pair(
                || {
                    black_box(chain_tapegrad(&mut tape, false));
                },
                || {
                    black_box(chain_floor(&mut xs));
                },
                10,
                reps,
            ),
        });
        for (id, what, sizes, batch, inner) in [
            (
                "W2",
                "MLP 784-256-10, batch 64, SGD step",
                [784usize, 256, 10],
                64usize,
                30,
            ),
            (
                "W2b",
                "MLP 784-256-10, batch 512, SGD step",
                [784, 256, 10],
                512,
                5,
            ),
            ("W5", "XOR 2-8-1, 4 samples, SGD step", [2, 8, 1], 4, 20_000),
        ] {
            let mut t = MlpTapegrad::new(&sizes, batch, 0.1);
            let mut f = MlpFloor::new(&sizes, batch, 0.1);
            rows.push(Row {
                id,
                what,
                unit: "us/step",
                scale: 1e6,
                threads,
                t: time_pair(
                    || {
                        black_box(t.step());
                    },
                    || {
                        black_box(f.step());
                    },
                    inner,
                    reps,
                ),
            });
        }
        let mut t = LogregTapegrad::new();
        let mut f = LogregFloor::new();
        rows.push(Row {
            id: "W3",
            what: "logistic regression, 569 x 30 full batch, step",
            unit: "us/step",
            scale: 1e6,
            threads,
            t: time_pair(
                || {
                    black_box(t.step());
                },
                || {
                    black_box(f.step());
                },
                500,
                reps,
            ),
        });
        let (mut w, mut wf) = (MatmulGrad::new(), MatmulGrad::new());
        rows.push(Row {
            id: "W4",
            what: "C = A B, 512 x 512, sum(C), forward + backward",
            unit: "ms/iter",
            scale: 1e3,
            threads,
            t: time_pair(
                || {
                    black_box(w.tapegrad());
                },
                || {
                    black_box(wf.floor());
                },
                3,
                reps,
            ),
        });
    }
    rows.sort_by_key(|r| {
        (
            ["W1", "W2", "W2b", "W3", "W4", "W5"]
                .iter()
                .position(|&i| i == r.id),
            r.threads,
        )
    });
    println!("| id | workload | threads | tapegrad | floor | ratio |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.1} {} | {:.1} {} | {:.2}x |",
            r.id,
            r.what,
            r.threads,
            r.t.0 * r.scale,
            r.unit,
            r.t.1 * r.scale,
            r.unit,
            r.t.2
        );
    }
    println!(
        "\n(median of {reps} alternating repetitions of tapegrad and the floor; ratio = median of the per-repetition ratios; f32; thread count set with set_num_threads, and the floor splits products of at least 2^24 multiply-adds over the same number of scoped threads)"
    );
}
