//! A steady-state training step allocates nothing on the heap once the tape and buffers are
//! warm: counted through a counting global allocator over W2 and W5 steps (one thread).
//!
//! The one allocation left per large matrix product is inside matrixmultiply itself, which
//! allocates its packing buffer on every call; the hand-written floor makes the same five kernel
//! calls per step and pays the same. So for W2 the test asserts that a tapegrad step allocates
//! exactly what the floor's five kernel calls do, and nothing more; W5's products are small
//! enough that tapegrad computes them without matrixmultiply, and its steps allocate nothing.

#[path = "../benches/workloads.rs"]
mod workloads;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts (per thread, so the test harness's own
// threads do not disturb the count).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = COUNT.with(Cell::get);
    f();
    COUNT.with(Cell::get) - before
}

#[test]
fn steady_state_training_steps_allocate_nothing() {
    tapegrad::tensor::set_num_threads(1);
    for (name, sizes, batch) in [("W5", [2usize, 8, 1], 4usize), ("W2", [784, 256, 10], 64)] {
        let mut w = workloads::MlpTapegrad::new(&sizes, batch, 0.1);
        let first = allocations_in(|| {
            w.step();
        });
        assert!(first > 0, "{name}: the first step allocates its buffers");
        for _ in 0..3 {
            w.step();
        }
        let steady = allocations_in(|| {
            for _ in 0..5 {
                w.step();
            }
        });
        let mut floor = workloads::MlpFloor::new(&sizes, batch, 0.1);
        floor.step();
        let kernel = allocations_in(|| {
            for _ in 0..5 {
                floor.step();
            }
        });
        // Five gemm calls per step (two forward, three backward), one packing buffer each.
        assert_eq!(kernel, 5 * 5, "{name}: the floor's kernel calls");
        let expected = if name == "W5" { 0 } else { kernel };
        assert_eq!(
            steady, expected,
            "{name}: {steady} heap allocations in 5 warm steps, the kernel alone makes {kernel}"
        );
    }
}

#[test]
fn a_replayed_step_allocates_nothing() {
    tapegrad::tensor::set_num_threads(1);
    let mut w = workloads::MlpReplay::new(&[2, 8, 1], 4, 0.1);
    for _ in 0..3 {
        w.step();
    }
    let steady = allocations_in(|| {
        for _ in 0..5 {
            w.step();
        }
    });
    assert_eq!(
        steady, 0,
        "W5 replayed: {steady} heap allocations in 5 warm steps"
    );
}
