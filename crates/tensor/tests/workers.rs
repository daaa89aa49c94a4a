//! The worker threads' spin time (`set_spin_time`): workers stay awake for it after split work
//! and then sleep; the caller of `run_parallel` waits awake for a worker's job for at most that
//! long, and never returns before every job is done.
//!
//! Also the helpers that split elementwise work over the workers (`par_chunks_mut`,
//! `Tensor::par_fill`).
//!
//! The spin time and the thread count are settings for the process, so the tests here take
//! turns (`TURN`).
//! Without the `threads` feature there are no workers: nothing here applies.
#![cfg(feature = "threads")]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tapegrad_tensor::{awake_workers, run_parallel, set_spin_time, spin_time};

static TURN: Mutex<()> = Mutex::new(());

/// Runs `f` on its own thread and fails the test, instead of hanging it, when `f` has not
/// finished within `secs` seconds.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within {secs} s"),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Polls until no worker is awake, for up to `secs` seconds; gives the last count.
fn awake_after_waiting(secs: u64) -> usize {
    let start = Instant::now();
    while awake_workers() > 0 && start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(5));
    }
    awake_workers()
}

#[test]
fn workers_stay_awake_for_the_spin_time_then_sleep() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let job = || {};
    let workers = cores().saturating_sub(1).max(1);

    set_spin_time(Duration::from_secs(30));
    assert_eq!(spin_time(), Duration::from_secs(30));
    run_parallel(&[&job, &job]);
    if cores() >= 2 {
        // One worker kept awake; more split work never keeps more than there are workers.
        assert!(awake_workers() >= 1);
        for _ in 0..8 {
            run_parallel(&[&job, &job, &job]);
        }
        assert!((1..=workers).contains(&awake_workers()));
    } else {
        assert_eq!(awake_workers(), 0, "one core: nothing to keep awake");
    }

    // Zero sends the waiting workers to sleep, and no split work keeps one awake after it.
    set_spin_time(Duration::ZERO);
    assert_eq!(awake_after_waiting(10), 0);
    run_parallel(&[&job, &job]);
    assert_eq!(awake_workers(), 0);

    // A short spin time passes by itself: the worker sleeps without being told.
    set_spin_time(Duration::from_millis(20));
    run_parallel(&[&job, &job]);
    assert_eq!(awake_after_waiting(10), 0);
}

#[test]
fn the_caller_returns_only_after_a_job_longer_than_the_spin_time() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    set_spin_time(Duration::from_millis(1));
    for _ in 0..5 {
        let done = AtomicBool::new(false);
        // The caller's own job is slow to start, so a worker usually takes the second, which
        // then outlasts the caller's spin time by far.
        let first = || std::thread::sleep(Duration::from_millis(5));
        let slow = || {
            std::thread::sleep(Duration::from_millis(60));
            done.store(true, Ordering::Release);
        };
        run_parallel(&[&first, &slow]);
        assert!(
            done.load(Ordering::Acquire),
            "returned before a job was done"
        );
    }
    set_spin_time(Duration::from_micros(500));
}

#[test]
fn a_worker_job_that_panics_does_not_keep_the_caller_spinning() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // A spin time far longer than the test's limit: the caller's wait ends only because the
    // panicking job counts as finished.
    set_spin_time(Duration::from_secs(600));
    let caught = within(30, "a panicking job with a long spin time", || {
        let first = || std::thread::sleep(Duration::from_millis(20));
        let bad = || panic!("job failed");
        std::panic::catch_unwind(|| run_parallel(&[&first, &bad])).is_err()
    });
    assert!(caught, "the job's panic reaches the caller");
    set_spin_time(Duration::ZERO);
    assert_eq!(awake_after_waiting(10), 0);
    set_spin_time(Duration::from_micros(500));
}

#[test]
fn par_chunks_mut_visits_every_element_once_at_its_index() {
    use tapegrad_tensor::{par_chunks_mut, set_num_threads};
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // Lengths below, at and above the split, none a multiple of the thread count.
    for threads in [1, 2, 3] {
        set_num_threads(threads);
        for len in [0, 1, 1000, 1 << 15, (1 << 16) + 7, 300_001] {
            let mut v = vec![0u32; len];
            par_chunks_mut(&mut v, 1 << 14, |start, chunk| {
                for (i, x) in chunk.iter_mut().enumerate() {
                    *x += (start + i) as u32 + 1;
                }
            });
            let expected: Vec<u32> = (1..=len as u32).collect();
            assert_eq!(v, expected, "{len} elements, {threads} threads");
        }
    }
    set_num_threads(2);
}

#[test]
fn par_fill_equals_a_serial_fill_and_carries_a_panic_to_the_caller() {
    use tapegrad_tensor::{Tensor, set_num_threads};
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let x: Vec<f32> = (0..200_003).map(|i| (i as f32).sin()).collect();
    let fill = |start: usize, out: &mut [f32]| {
        for (o, v) in out.iter_mut().zip(&x[start..]) {
            *o = v.mul_add(3.0, 0.5);
        }
    };
    set_num_threads(1);
    let one = Tensor::par_fill(&[200_003], "test", 1 << 14, fill).unwrap();
    set_num_threads(2);
    let two = Tensor::par_fill(&[200_003], "test", 1 << 14, fill).unwrap();
    assert_eq!(one, two);
    assert_eq!(one.as_slice()[200_002], x[200_002].mul_add(3.0, 0.5));
    // A fill that panics in one chunk: the panic reaches the caller, no tensor is made.
    let caught = std::panic::catch_unwind(|| {
        Tensor::<f32>::par_fill(&[100_000], "test", 1 << 14, |start, _| {
            assert!(start == 0, "a chunk fails");
        })
    });
    assert!(caught.is_err());
    // A size past memory is an error naming the op, not an abort.
    let err = Tensor::<f32>::par_fill(&[1 << 40, 1 << 20], "test", 1 << 14, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("test"), "{err}");
}

#[test]
fn im2col_and_col2im_split_over_threads_give_the_bits_of_one() {
    use rand::SeedableRng;
    use tapegrad_tensor::{Tensor, set_num_threads};
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    // Large enough to split (each image's col2im sums 58k elements over 8 channels; im2col
    // writes 216 lines of 812), with padding, and a stride of 2 for the strided copy.
    let x = Tensor::<f32>::randn(&[3, 8, 30, 29], 0.0, 1.0, &mut rng);
    let w = Tensor::<f32>::randn(&[5, 8, 3, 3], 0.0, 1.0, &mut rng);
    for (stride, pad) in [((1, 1), (1, 1)), ((2, 2), (2, 0))] {
        let run = |threads| {
            set_num_threads(threads);
            let (y, cols) = x.conv2d_with_columns(&w, None, stride, pad).unwrap();
            let g = Tensor::<f32>::from_fn(y.shape(), |i| ((i % 13) as f32 - 6.0) * 0.25);
            let dx = g
                .conv2d_backward(x.shape(), &cols, &w, (stride, pad), (true, false, false))
                .unwrap()
                .0
                .unwrap();
            let summed = cols.col2im(x.shape(), (3, 3), stride, pad).unwrap();
            (cols, dx, summed)
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(run(threads) == one, "{threads} threads, stride {stride:?}");
        }
    }
    set_num_threads(2);
}
