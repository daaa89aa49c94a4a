//! Runs the performance workloads W1-W8 for a few seconds each at one and at two threads and
//! prints a Markdown table: tapegrad, the hand-written floor (same math, same kernels, no
//! graph), their ratio, and what the second thread gains. The criterion benches
//! (`cargo bench --bench bench_main`) measure the same code more carefully.
//!
//! The machine this runs on may be noisy (a shared VM): every repetition times tapegrad and the
//! floor back to back, at one thread and then at two, so a slow spell hits all four; ratios are
//! medians of the per-repetition ratios.
//!
//! Built on `tapegrad::harness`, which a benchmark of your own workloads uses the same way.
//!
//! Run: `cargo run --release --example bench_report` (`--quick` for 3 repetitions, `--only
//! W2,N1` for some rows).

#[path = "../benches/workloads.rs"]
mod workloads;

use std::hint::black_box;

use tapegrad::harness;

use tapegrad::prelude::*;
use workloads::*;

/// One workload as written below, handed to [`harness::Workload`].
struct Workload {
    id: &'static str,
    what: &'static str,
    unit: &'static str,
    scale: f64,
    inner: usize,
    ours: Box<dyn FnMut()>,
    floor: Box<dyn FnMut()>,
}

#[global_allocator]
static ALLOC: harness::CountingAlloc = harness::CountingAlloc;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 15 };
    // `--only W2,N1`: just those rows.
    let only: Option<Vec<String>> = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .map(|v| v.split(',').map(str::to_string).collect());
    let mut workloads = Vec::new();

    let (mut tape, mut xs) = (
        Tape::<f32>::with_capacity(3 * CHAIN_STEPS + 8),
        Vec::with_capacity(CHAIN_STEPS + 1),
    );
    workloads.push(Workload {
        id: "W1",
        what: "scalar chain, 30k nodes, record + backward",
        unit: "ns/node",
        scale: 1e9 / (3.0 * CHAIN_STEPS as f64),
        inner: 10,
        ours: Box::new(move || {
            black_box(chain_tapegrad(&mut tape, false));
        }),
        floor: Box::new(move || {
            black_box(chain_floor(&mut xs));
        }),
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
        workloads.push(Workload {
            id,
            what,
            unit: "us/step",
            scale: 1e6,
            inner,
            ours: Box::new(move || {
                black_box(t.step());
            }),
            floor: Box::new(move || {
                black_box(f.step());
            }),
        });
    }
    let (mut t, mut f) = (LogregTapegrad::new(), LogregFloor::new());
    workloads.push(Workload {
        id: "W3",
        what: "logistic regression, 569 x 30 full batch, step",
        unit: "us/step",
        scale: 1e6,
        inner: 500,
        ours: Box::new(move || {
            black_box(t.step());
        }),
        floor: Box::new(move || {
            black_box(f.step());
        }),
    });
    let (mut w, mut wf) = (MatmulGrad::new(), MatmulGrad::new());
    workloads.push(Workload {
        id: "W4",
        what: "C = A B, 512 x 512, sum(C), forward + backward",
        unit: "ms/iter",
        scale: 1e3,
        inner: 3,
        ours: Box::new(move || {
            black_box(w.tapegrad());
        }),
        floor: Box::new(move || {
            black_box(wf.floor());
        }),
    });
    let (mut nt, mut rt) = (
        NnTrain::new(&[784, 256, 10], 64, 16),
        RawTrain::new(&[784, 256, 10], 64, 16),
    );
    workloads.push(Workload {
        id: "N1",
        what: "nn::train, MLP 784-256-10, batch 64; the floor column is the raw-tape step",
        unit: "us/step",
        scale: 1e6 / 16.0,
        inner: 2,
        ours: Box::new(move || {
            black_box(nt.epoch());
        }),
        floor: Box::new(move || {
            black_box(rt.epoch());
        }),
    });
    let (mut nn5, mut raw5) = (MlpTapegrad::new(&[2, 8, 1], 4, 0.1), MlpRawTape::new(0.1));
    workloads.push(Workload {
        id: "N5",
        what: "XOR 2-8-1 step (W5) through nn; the floor column is the raw-tape step",
        unit: "us/step",
        scale: 1e6,
        inner: 20_000,
        ours: Box::new(move || {
            black_box(nn5.step());
        }),
        floor: Box::new(move || {
            black_box(raw5.step());
        }),
    });
    let (mut r, mut rf) = (
        MlpReplay::new(&[2, 8, 1], 4, 0.1),
        MlpFloor::new(&[2, 8, 1], 4, 0.1),
    );
    workloads.push(Workload {
        id: "W5r",
        what: "XOR 2-8-1, 4 samples, SGD step, graph replayed (Tape::replay)",
        unit: "us/step",
        scale: 1e6,
        inner: 20_000,
        ours: Box::new(move || {
            black_box(r.step());
        }),
        floor: Box::new(move || {
            black_box(rf.step());
        }),
    });
    let (mut hv, mut hg) = (MlpHvp::new(), MlpHvp::new());
    workloads.push(Workload {
        id: "H1",
        what: "Hessian-vector product, MLP 784-256-10, batch 64; the floor column is a gradient",
        unit: "us/iter",
        scale: 1e6,
        inner: 10,
        ours: Box::new(move || {
            black_box(hv.hvp());
        }),
        floor: Box::new(move || {
            black_box(hg.gradient());
        }),
    });
    let (mut s, mut sf) = (SharedWeight::new(), SharedWeight::new());
    workloads.push(Workload {
        id: "W6",
        what: "shared weight, [256, 4, 32] x [32, 32], forward + backward",
        unit: "us/iter",
        scale: 1e6,
        inner: 200,
        ours: Box::new(move || {
            black_box(s.tapegrad());
        }),
        floor: Box::new(move || {
            black_box(sf.floor());
        }),
    });
    let (mut a, mut af) = (Attention::new(), Attention::new());
    workloads.push(Workload {
        id: "W7",
        what: "attention, B 8, T 16, D 32, forward + backward",
        unit: "us/iter",
        scale: 1e6,
        inner: 200,
        ours: Box::new(move || {
            black_box(a.tapegrad());
        }),
        floor: Box::new(move || {
            black_box(af.floor());
        }),
    });
    // Built on first use: its buffers (about 100 MB) are not held while the other workloads run.
    let (mut k, mut kf): (Option<Conv>, Option<Conv>) = (None, None);
    workloads.push(Workload {
        id: "W8",
        what: "conv2d 3x3, 32 -> 64, 28 x 28, batch 64, forward + backward",
        unit: "ms/iter",
        scale: 1e3,
        inner: 2,
        ours: Box::new(move || {
            black_box(k.get_or_insert_with(Conv::new).tapegrad());
        }),
        floor: Box::new(move || {
            black_box(kf.get_or_insert_with(Conv::new).floor());
        }),
    });
    workloads.sort_by_key(|w| {
        [
            "W1", "W2", "W2b", "W3", "W4", "W5", "W5r", "W6", "W7", "W8", "N1", "N5", "H1",
        ]
        .iter()
        .position(|&i| i == w.id)
    });

    let mut chosen: Vec<harness::Workload<'_>> = workloads
        .into_iter()
        .filter(|w| only.as_ref().is_none_or(|o| o.iter().any(|i| i == w.id)))
        .map(|w| {
            harness::Workload::new(w.id, w.unit, w.scale, w.ours, w.floor)
                .what(w.what)
                .inner(w.inner)
        })
        .collect();
    let report = harness::Harness::new().reps(reps).run(&mut chosen);
    print!("{}", report.markdown());
    println!(
        "\n(f32; {reps} repetitions, each timing tapegrad and the floor back to back at 1 and then \
         2 threads; medians, and ratios as medians of the per-repetition ratios. Thread count set \
         with set_num_threads; the floor splits products of at least 2^24 multiply-adds over the \
         same worker threads, through tapegrad::tensor::run_parallel. Allocations per call are \
         the calling thread's.)\n"
    );
    print!("{}", report.json_lines());
}
