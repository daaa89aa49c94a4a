//! A small pool of persistent worker threads for splitting large matrix products. Starting a
//! thread per product costs more than a mid-sized product takes; workers started once and woken
//! per product cost a few microseconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// A job handed to a worker: a type-erased `&(dyn Fn() + Sync)` and the counter to decrement
/// when it is done.
struct Task {
    job: *const (dyn Fn() + Sync),
    pending: Arc<Pending>,
}

// SAFETY: the job is `Sync`, and `run` does not return before every task it handed out has
// finished, so the borrowed closure outlives its use on the worker.
unsafe impl Send for Task {}

struct Pending {
    left: AtomicUsize,
    lock: Mutex<()>,
    done: Condvar,
}

struct Worker {
    slot: Mutex<Option<Task>>,
    ready: Condvar,
}

fn pool(n: usize) -> &'static [Arc<Worker>] {
    static STARTED: OnceLock<Vec<Arc<Worker>>> = OnceLock::new();
    // Workers are started once, as many as the first parallel product asks for (at most 15);
    // later calls use as many of them as they need.
    STARTED.get_or_init(|| {
        (0..n.min(15))
            .map(|i| {
                let w = Arc::new(Worker {
                    slot: Mutex::new(None),
                    ready: Condvar::new(),
                });
                let me = Arc::clone(&w);
                std::thread::Builder::new()
                    .name(format!("tapegrad-matmul-{i}"))
                    .spawn(move || worker_loop(&me))
                    .expect("starting a matmul worker thread");
                w
            })
            .collect()
    })
}

fn worker_loop(w: &Worker) {
    loop {
        let task = {
            let mut slot = w.slot.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(t) = slot.take() {
                    break t;
                }
                slot = w.ready.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
        };
        // SAFETY: see `Task`: the closure is alive until `pending` reaches zero.
        let job = unsafe { &*task.job };
        job();
        if task.pending.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _guard = task.pending.lock.lock().unwrap_or_else(|e| e.into_inner());
            task.pending.done.notify_all();
        }
    }
}

/// Runs every job, the first on the calling thread and the others on tapegrad's persistent
/// worker threads (the ones large matrix products are split over), and returns when all are
/// done. Jobs beyond the workers available run on the calling thread.
///
/// This is the pool tapegrad uses itself, public so that hand-written code beside it (the
/// benchmark floors, a custom kernel) can use the second core the same way.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let hits = AtomicUsize::new(0);
/// let job = || {
///     hits.fetch_add(1, Ordering::Relaxed);
/// };
/// tapegrad_tensor::run_parallel(&[&job, &job, &job]);
/// assert_eq!(hits.load(Ordering::Relaxed), 3);
/// ```
pub fn run_parallel(jobs: &[&(dyn Fn() + Sync)]) {
    let Some((first, rest)) = jobs.split_first() else {
        return;
    };
    let workers = pool(rest.len());
    let handed = rest.len().min(workers.len());
    let pending = Arc::new(Pending {
        left: AtomicUsize::new(handed),
        lock: Mutex::new(()),
        done: Condvar::new(),
    });
    for (job, w) in rest.iter().zip(workers) {
        // SAFETY (lifetime erasure): we wait below until the worker has run the job.
        let job: *const (dyn Fn() + Sync + '_) = *job;
        let job: *const (dyn Fn() + Sync) = unsafe { std::mem::transmute(job) };
        let mut slot = w.slot.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(Task {
            job,
            pending: Arc::clone(&pending),
        });
        w.ready.notify_one();
    }
    first();
    // Jobs beyond the started workers run here too.
    for job in &rest[handed..] {
        job();
    }
    if pending.left.load(Ordering::Acquire) != 0 {
        let mut guard = pending.lock.lock().unwrap_or_else(|e| e.into_inner());
        while pending.left.load(Ordering::Acquire) != 0 {
            guard = pending.done.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }
}
