//! The overhead harness: what a computation graph costs over the same math written by hand.
//!
//! A [`Workload`] is a name, a unit, a closure running one tapegrad step and one running the
//! hand-written floor (the same math on the same kernels, [`crate::tensor::kernels`], no graph).
//! [`Harness::run`] times them interleaved: every repetition runs tapegrad and then the floor,
//! at each thread count in turn, so a slow spell of a shared machine hits all of them alike;
//! figures are medians, ratios are medians of the per-repetition ratios, and the gain of the
//! second thread is the median of per-repetition ratios too. [`Report`] prints a Markdown table
//! and one JSON line per row. With [`CountingAlloc`] installed as the global allocator, each
//! row also reports heap allocations per call.
//!
//! ```
//! use std::hint::black_box;
//! use tapegrad::harness::{Harness, Workload};
//! use tapegrad::prelude::*;
//!
//! // Measure tanh(x W) and its gradient against the same product and map by hand.
//! let x = Tensor::<f32>::ones(&[64, 32]);
//! let w = Tensor::<f32>::ones(&[32, 16]).mul_scalar(0.01);
//! let mut tape = Tape::new();
//! let mut out = vec![0.0f32; 64 * 16];
//! let report = Harness::new().reps(3).threads(&[1]).run(&mut [Workload::new(
//!     "tanh(xW)",
//!     "us/step",
//!     1e6,
//!     || {
//!         tape.clear();
//!         let (xv, wv) = (tape.constant(x.clone()), tape.var(w.clone()));
//!         let y = xv.matmul(wv).unwrap().tanh().sum();
//!         black_box(tape.backward(y).unwrap()[wv].as_slice()[0]);
//!     },
//!     || {
//!         use tapegrad::tensor::kernels::{gemm, map_in_place};
//!         gemm(64, 32, 16, 1.0, x.as_slice(), false, w.as_slice(), false, 0.0, &mut out).unwrap();
//!         map_in_place(&mut out, |v| v.tanh());
//!         black_box(out[0]);
//!     },
//! )]);
//! assert_eq!(report.rows.len(), 1);
//! assert!(report.rows[0].at[0].ratio > 0.0);
//! println!("{}", report.markdown());
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

/// A workload: tapegrad's step and the hand-written floor, with a name and a unit.
pub struct Workload<'a> {
    /// A short id for the table (`W2`, `attention`).
    pub id: String,
    /// What is measured (`MLP 784-256-10, batch 64, SGD step`).
    pub what: String,
    /// The unit of the figures (`us/step`).
    pub unit: String,
    /// Seconds per call are multiplied by this to give the unit (1e6 for microseconds; divide
    /// by the work per call for a rate such as ns/node).
    pub scale: f64,
    /// Calls per timed sample (more for fast steps, so a sample lasts long enough to time).
    pub inner: usize,
    ours: Box<dyn FnMut() + 'a>,
    floor: Box<dyn FnMut() + 'a>,
}

impl<'a> Workload<'a> {
    /// A workload from its id, unit, scale and the two closures (tapegrad's step, the floor).
    /// `what` starts as the id and `inner` as 1; set them with [`Workload::what`] and
    /// [`Workload::inner`].
    pub fn new(
        id: &str,
        unit: &str,
        scale: f64,
        ours: impl FnMut() + 'a,
        floor: impl FnMut() + 'a,
    ) -> Self {
        Workload {
            id: id.into(),
            what: id.into(),
            unit: unit.into(),
            scale,
            inner: 1,
            ours: Box::new(ours),
            floor: Box::new(floor),
        }
    }

    /// Describes the workload.
    pub fn what(mut self, what: &str) -> Self {
        self.what = what.into();
        self
    }

    /// Calls per timed sample (at least 1).
    pub fn inner(mut self, inner: usize) -> Self {
        self.inner = inner.max(1);
        self
    }
}

/// One thread count's figures for one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct AtThreads {
    /// The thread count ([`crate::tensor::set_num_threads`]).
    pub threads: usize,
    /// tapegrad's median, in the workload's unit.
    pub ours: f64,
    /// The floor's median, in the workload's unit.
    pub floor: f64,
    /// The median of the per-repetition ratios tapegrad / floor.
    pub ratio: f64,
    /// Heap allocations per call of tapegrad's step on the calling thread, when
    /// [`CountingAlloc`] is the global allocator.
    pub ours_allocs: Option<f64>,
    /// Heap allocations per call of the floor, likewise.
    pub floor_allocs: Option<f64>,
}

/// One workload's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The workload's id.
    pub id: String,
    /// What it measures.
    pub what: String,
    /// The unit.
    pub unit: String,
    /// One entry per thread count, in the order run.
    pub at: Vec<AtThreads>,
    /// For two thread counts or more: the median per-repetition speedup of the last thread
    /// count over the first, for tapegrad and for the floor.
    pub gain: Option<(f64, f64)>,
}

/// The results of [`Harness::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One row per workload, in the order given.
    pub rows: Vec<Row>,
    /// Repetitions per figure.
    pub reps: usize,
}

impl Report {
    /// A Markdown table: id, what, threads, tapegrad, floor, ratio, the gain of the last thread
    /// count, and allocations per call when counted.
    pub fn markdown(&self) -> String {
        let counted = self
            .rows
            .iter()
            .any(|r| r.at.iter().any(|a| a.ours_allocs.is_some()));
        let mut out = String::from(
            "| id | workload | threads | tapegrad | floor | ratio | gain (tapegrad / floor) |",
        );
        out.push_str(if counted {
            " allocs/call (tapegrad / floor) |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
        } else {
            "\n|---|---|---:|---:|---:|---:|---:|\n"
        });
        for r in &self.rows {
            for (i, a) in r.at.iter().enumerate() {
                let gain = match r.gain {
                    Some((o, f)) if i + 1 == r.at.len() && i > 0 => format!("{o:.2}x / {f:.2}x"),
                    _ => String::new(),
                };
                out.push_str(&format!(
                    "| {} | {} | {} | {:.1} {} | {:.1} {} | {:.2}x | {gain} |",
                    r.id, r.what, a.threads, a.ours, r.unit, a.floor, r.unit, a.ratio
                ));
                if counted {
                    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
                    out.push_str(&format!(" {} / {} |", f(a.ours_allocs), f(a.floor_allocs)));
                }
                out.push('\n');
            }
        }
        out
    }

    /// One JSON object per row and thread count, one per line (for scripts).
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            for a in &r.at {
                let v = serde_json::json!({
                    "id": r.id,
                    "what": r.what,
                    "unit": r.unit,
                    "threads": a.threads,
                    "tapegrad": a.ours,
                    "floor": a.floor,
                    "ratio": a.ratio,
                    "gain": r.gain.map(|g| [g.0, g.1]),
                    "tapegrad_allocs": a.ours_allocs,
                    "floor_allocs": a.floor_allocs,
                    "reps": self.reps,
                });
                out.push_str(&v.to_string());
                out.push('\n');
            }
        }
        out
    }
}

/// Times workloads against their floors.
#[derive(Debug, Clone)]
pub struct Harness {
    reps: usize,
    threads: Vec<usize>,
}

impl Default for Harness {
    fn default() -> Self {
        Harness {
            reps: 15,
            threads: vec![1, 2],
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds per call of `f` over `inner` calls, and allocations per call when counting.
fn sample(f: &mut dyn FnMut(), inner: usize) -> (f64, Option<f64>) {
    let before = CountingAlloc::allocations();
    let t = Instant::now();
    for _ in 0..inner {
        f();
    }
    let secs = t.elapsed().as_secs_f64() / inner as f64;
    let allocs = CountingAlloc::allocations()
        .zip(before)
        // Less the probe allocation of the second reading.
        .map(|(a, b)| a.saturating_sub(b + 1) as f64 / inner as f64);
    (secs, allocs)
}

impl Harness {
    /// 15 repetitions at 1 and 2 threads.
    pub fn new() -> Self {
        Self::default()
    }

    /// Repetitions per figure (at least 1).
    pub fn reps(mut self, reps: usize) -> Self {
        self.reps = reps.max(1);
        self
    }

    /// The thread counts to run at, in order (`&[1]` for one thread only).
    pub fn threads(mut self, threads: &[usize]) -> Self {
        if !threads.is_empty() {
            self.threads = threads.to_vec();
        }
        self
    }

    /// Runs every workload: a warm-up at each thread count, then the interleaved repetitions.
    /// Leaves the thread count at its value before the call.
    pub fn run(&self, workloads: &mut [Workload<'_>]) -> Report {
        let before = crate::tensor::num_threads();
        let rows = workloads.iter_mut().map(|w| self.measure(w)).collect();
        crate::tensor::set_num_threads(before);
        Report {
            rows,
            reps: self.reps,
        }
    }

    fn measure(&self, w: &mut Workload<'_>) -> Row {
        let t = self.threads.len();
        for &threads in &self.threads {
            crate::tensor::set_num_threads(threads);
            for _ in 0..w.inner.div_ceil(4).max(1) {
                (w.ours)();
                (w.floor)();
            }
        }
        // samples[rep][2 t + 0 / 1] = (seconds, allocations) for ours / floor.
        let samples: Vec<Vec<(f64, Option<f64>)>> = (0..self.reps)
            .map(|_| {
                let mut s = Vec::with_capacity(2 * t);
                for &threads in &self.threads {
                    crate::tensor::set_num_threads(threads);
                    s.push(sample(&mut w.ours, w.inner));
                    s.push(sample(&mut w.floor, w.inner));
                }
                s
            })
            .collect();
        let col = |i: usize| median(samples.iter().map(|s| s[i].0).collect()) * w.scale;
        let ratio = |a: usize, b: usize| median(samples.iter().map(|s| s[a].0 / s[b].0).collect());
        let allocs = |i: usize| {
            let v: Option<Vec<f64>> = samples.iter().map(|s| s[i].1).collect();
            v.map(median)
        };
        let at = self
            .threads
            .iter()
            .enumerate()
            .map(|(k, &threads)| AtThreads {
                threads,
                ours: col(2 * k),
                floor: col(2 * k + 1),
                ratio: ratio(2 * k, 2 * k + 1),
                ours_allocs: allocs(2 * k),
                floor_allocs: allocs(2 * k + 1),
            })
            .collect();
        let gain = (t >= 2).then(|| (ratio(0, 2 * (t - 1)), ratio(1, 2 * (t - 1) + 1)));
        Row {
            id: w.id.clone(),
            what: w.what.clone(),
            unit: w.unit.clone(),
            at,
            gain,
        }
    }
}

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
}

/// A global allocator that counts heap allocations per thread (and otherwise is the system
/// allocator). Install it in your benchmark binary, and [`Harness::run`] reports allocations
/// per call beside the times; only the calling thread's allocations are counted (a product
/// split over worker threads allocates its packing buffers there).
///
/// ```standalone_crate
/// use tapegrad::harness::CountingAlloc;
///
/// #[global_allocator]
/// static ALLOC: CountingAlloc = CountingAlloc;
///
/// fn main() {
///     let before = CountingAlloc::allocations().expect("installed");
///     let v = std::hint::black_box(vec![1u8; 100]);
///     // One for the vector, one for the probe of the second reading.
///     assert_eq!(CountingAlloc::allocations().unwrap() - before, 2);
///     drop(v);
/// }
/// ```
pub struct CountingAlloc;

impl CountingAlloc {
    /// This thread's allocation count so far, or `None` when `CountingAlloc` is not the
    /// global allocator.
    pub fn allocations() -> Option<u64> {
        // Probe: an allocation through the global allocator marks the thread as counted.
        drop(std::hint::black_box(Box::new(0u64)));
        if INSTALLED.with(Cell::get) {
            Some(COUNT.with(Cell::get))
        } else {
            None
        }
    }
}

fn count() {
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    let _ = INSTALLED.try_with(|c| c.set(true));
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
