//! Splitting work over threads: a rayon work-stealing pool of tapegrad's own.
//!
//! rayon's pool is built for what a library that splits its own work meets: many threads
//! calling at once (each call's jobs are queued, none is lost or overwritten), and parallel work
//! started from inside parallel work (a job that waits for its own jobs steals others meanwhile
//! instead of blocking a worker). A pool written here by hand had neither and hung the process
//! when two threads multiplied large matrices at once.

/// Runs every job, the first on the calling thread and the others on tapegrad's rayon workers
/// (the ones large matrix products and expensive maps are split over), and returns when all are
/// done. Without the `threads` feature every job runs on the calling thread, one after another.
///
/// Any number of threads may call this at once, and a job may itself call it (or run a large
/// product): rayon queues every job and a waiting worker steals queued work rather than
/// blocking. If a job panics, the panic is carried to the caller once the other jobs are done.
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
    #[cfg(feature = "threads")]
    if !rest.is_empty() {
        // Each job runs once, on whichever thread claims it first: a worker that picks it up,
        // or the caller, which after its own job takes every job no worker has started. So a
        // late worker (asleep, or its core busy) costs the caller nothing but the work itself.
        let claimed: smallvec::SmallVec<[std::sync::atomic::AtomicBool; 8]> = rest
            .iter()
            .map(|_| std::sync::atomic::AtomicBool::new(false))
            .collect();
        let claim = |k: usize| !claimed[k].swap(true, std::sync::atomic::Ordering::AcqRel);
        let claim = &claim;
        // `in_place_scope` runs the closure here and the spawned jobs on the pool, and returns
        // only when every spawned job has finished, so the jobs' borrows outlive their use.
        pool().in_place_scope(|s| {
            for (k, &job) in rest.iter().enumerate() {
                s.spawn(move |_| {
                    if claim(k) {
                        job();
                    }
                });
            }
            first();
            for (k, &job) in rest.iter().enumerate() {
                if claim(k) {
                    job();
                }
            }
        });
        return;
    }
    first();
    for job in rest {
        job();
    }
}

/// tapegrad's own rayon pool: one thread fewer than the cores the process may use (at least
/// one), because the caller of [`run_parallel`] runs the first job itself. With as many workers
/// as cores, the caller and the workers would be one thread more than the cores, and on a
/// small machine the extra runnable thread preempts the ones doing the work.
#[cfg(feature = "threads")]
fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(
                cores
                    .max(crate::matmul::num_threads())
                    .saturating_sub(1)
                    .max(1),
            )
            .thread_name(|i| format!("tapegrad-worker-{i}"))
            .build()
            .expect("starting tapegrad's worker threads")
    })
}
