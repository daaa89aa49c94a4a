//! Splitting work over threads: a rayon work-stealing pool of tapegrad's own.
//!
//! rayon's pool is built for what a library that splits its own work meets: many threads
//! calling at once (each call's jobs are queued, none is lost or overwritten), and parallel work
//! started from inside parallel work (a job that waits for its own jobs steals others meanwhile
//! instead of blocking a worker). A pool written here by hand had neither and hung the process
//! when two threads multiplied large matrices at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
#[cfg(feature = "threads")]
use std::time::Instant;

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
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        // Each job runs once, on whichever thread claims it first: a worker that picks it up,
        // or the caller, which after its own job takes every job no worker has started. So a
        // late worker (asleep, or its core busy) costs the caller nothing but the work itself.
        let claimed: smallvec::SmallVec<[AtomicBool; 8]> =
            rest.iter().map(|_| AtomicBool::new(false)).collect();
        // Jobs of `rest` finished, by whoever ran them (counted even when one panics).
        let finished = AtomicUsize::new(0);
        let run = |k: usize| {
            if !claimed[k].swap(true, Ordering::AcqRel) {
                let _count = Finished(&finished);
                rest[k]();
            }
        };
        let run = &run;
        let spin = spin_time();
        // `in_place_scope` runs the closure here and the spawned jobs on the pool, and returns
        // only when every spawned job has finished, so the jobs' borrows outlive their use.
        pool().in_place_scope(|s| {
            for k in 0..rest.len() {
                s.spawn(move |_| run(k));
            }
            first();
            (0..rest.len()).for_each(run);
            // A job a worker is still running: wait for it awake for up to the spin time, as
            // the workers do for new work, rather than fall asleep in the scope's end and pay
            // a wake-up (tens of microseconds on a VM) after it is done.
            wait_awake(spin, || finished.load(Ordering::Acquire) == rest.len());
        });
        linger(spin);
        return;
    }
    first();
    for job in rest {
        job();
    }
}

/// Elements per thread from which cheap elementwise work (a few arithmetic operations per
/// element, as a gradient's product with a derivative, or an optimizer's update) is split over
/// threads with [`par_chunks_mut`]: 64 KiB of f32 per thread, about 10 us of such work.
pub const PAR_MIN_CHEAP: usize = 1 << 14;

/// Runs `f(start, chunk)` over `data` cut into consecutive chunks (`start` is the index in
/// `data` of the chunk's first element), split over tapegrad's worker threads
/// ([`run_parallel`]) when `data` holds at least `min_per_thread` elements per thread, else as
/// one call on the calling thread. At most eight chunks, and as many as the threads
/// ([`crate::num_threads`]) that `min_per_thread` allows.
///
/// ```
/// let mut v = vec![1.0f32; 100_000];
/// tapegrad_tensor::par_chunks_mut(&mut v, 1 << 14, |start, chunk| {
///     for (i, x) in chunk.iter_mut().enumerate() {
///         *x += (start + i) as f32;
///     }
/// });
/// assert_eq!(v[99_999], 100_000.0);
/// ```
#[inline]
pub fn par_chunks_mut<T: Send>(
    data: &mut [T],
    min_per_thread: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let per = par_chunk_len(data.len(), min_per_thread);
    par_chunks_mut_by(data, per, f);
}

/// The chunk length [`par_chunks_mut`] cuts `len` elements into: `len` itself (one chunk, on
/// the calling thread) below `min_per_thread` elements for each of two threads or at one
/// thread. For work over several slices cut alike ([`par_chunks_mut_by`]).
///
/// ```
/// use tapegrad_tensor::par_chunk_len;
/// assert_eq!(par_chunk_len(1000, 1 << 14), 1000);
/// let per = par_chunk_len(100_000, 1 << 14);
/// assert!(per >= 100_000 / 8 && per <= 100_000);
/// ```
#[inline]
pub fn par_chunk_len(len: usize, min_per_thread: usize) -> usize {
    // Small data (most calls) is one chunk, before the thread count is even read.
    let min = min_per_thread.max(1);
    if len < min.saturating_mul(2) {
        return len;
    }
    let threads = crate::matmul::num_threads().min(len / min).min(8);
    if threads < 2 {
        len
    } else {
        len.div_ceil(threads)
    }
}

/// Runs `f(start, chunk)` over `data.chunks_mut(per)`, one job per chunk on tapegrad's worker
/// threads ([`run_parallel`]); one chunk (`per >= data.len()`) runs on the calling thread.
/// With `per` from [`par_chunk_len`], several slices of one length can be cut alike: the job
/// for `data`'s chunk at `start` takes the other slices' chunk `start / per`.
///
/// ```
/// use std::sync::Mutex;
/// let (mut a, mut b) = (vec![1.0f32; 50_000], vec![2.0f32; 50_000]);
/// let per = tapegrad_tensor::par_chunk_len(a.len(), 1 << 14);
/// let b_parts: Vec<Mutex<&mut [f32]>> = b.chunks_mut(per).map(Mutex::new).collect();
/// tapegrad_tensor::par_chunks_mut_by(&mut a, per, |start, part| {
///     let mut other = b_parts[start / per].lock().unwrap();
///     for (x, y) in part.iter_mut().zip(other.iter_mut()) {
///         (*x, *y) = (*x + *y, *y * 2.0);
///     }
/// });
/// assert_eq!((a[49_999], b[49_999]), (3.0, 4.0));
/// ```
// Inlined: one chunk (most calls) then runs `f` in the caller, and only a split calls out.
#[inline]
pub fn par_chunks_mut_by<T: Send>(data: &mut [T], per: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if per == 0 || per >= data.len() {
        f(0, data);
        return;
    }
    split_chunks(data, per, &f);
}

/// [`par_chunks_mut_by`]'s split into chunks of `per` elements, one job each.
fn split_chunks<T: Send>(data: &mut [T], per: usize, f: &(impl Fn(usize, &mut [T]) + Sync)) {
    // Each job owns one chunk (its start and its elements), handed over through a mutex taken
    // once.
    type Chunk<'a, T> = std::sync::Mutex<(usize, &'a mut [T])>;
    let chunks: smallvec::SmallVec<[Chunk<'_, T>; 8]> = data
        .chunks_mut(per)
        .enumerate()
        .map(|(t, c)| std::sync::Mutex::new((t * per, c)))
        .collect();
    let jobs: smallvec::SmallVec<[_; 8]> = chunks
        .iter()
        .map(|chunk| {
            move || {
                let mut chunk = chunk.lock().unwrap_or_else(|e| e.into_inner());
                let (start, part) = &mut *chunk;
                f(*start, part);
            }
        })
        .collect();
    let refs: smallvec::SmallVec<[&(dyn Fn() + Sync); 8]> =
        jobs.iter().map(|j| j as &(dyn Fn() + Sync)).collect();
    run_parallel(&refs);
}

/// Counts one finished job when dropped, so a job that panics is counted too.
#[cfg(feature = "threads")]
struct Finished<'a>(&'a std::sync::atomic::AtomicUsize);

#[cfg(feature = "threads")]
impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// Spins (yielding the core to any other runnable thread) until `done` or `spin` has passed.
#[cfg(feature = "threads")]
fn wait_awake(spin: Duration, done: impl Fn() -> bool) {
    if done() || spin.is_zero() {
        return;
    }
    let start = Instant::now();
    while !done() && start.elapsed() < spin {
        pause();
    }
}

/// One wait between checks of an awake thread: a burst of spin-loop hints (about a microsecond),
/// then the core is offered to any other runnable thread. The burst keeps the system calls
/// (`sched_yield`) to a few per 10 us, rather than one per check.
#[cfg(feature = "threads")]
fn pause() {
    for _ in 0..64 {
        std::hint::spin_loop();
    }
    std::thread::yield_now();
}

/// Spin time set by [`set_spin_time`] in nanoseconds; `u64::MAX` until read or set.
static SPIN_NS: AtomicU64 = AtomicU64::new(u64::MAX);

/// The spin time when neither [`set_spin_time`] nor `TAPEGRAD_SPIN_US` sets one.
const DEFAULT_SPIN: Duration = Duration::from_micros(500);

/// Sets how long tapegrad's worker threads stay awake after split work, waiting for more,
/// before they sleep; and how long the caller of [`run_parallel`] waits awake for a job a
/// worker is still running. Zero: workers sleep as soon as they find no work (rayon's own
/// behaviour), and the caller sleeps until the job is done.
///
/// A sleeping thread takes tens of microseconds to wake on a virtual machine, paid twice per
/// split product (the worker's wake-up and then the caller's); a training step splits several.
/// Staying awake costs a core's time while nothing runs: the same trade as OpenMP runtimes'
/// spin-then-sleep wait (`OMP_WAIT_POLICY`, `KMP_BLOCKTIME`). A waiting thread offers its core
/// to any other runnable thread after every microsecond or so of spinning. The default is
/// 500 us, or `TAPEGRAD_SPIN_US` (in microseconds) when set.
///
/// ```
/// use std::time::Duration;
/// tapegrad_tensor::set_spin_time(Duration::from_micros(200));
/// assert_eq!(tapegrad_tensor::spin_time(), Duration::from_micros(200));
/// tapegrad_tensor::set_spin_time(Duration::ZERO); // sleep at once
/// assert_eq!(tapegrad_tensor::spin_time(), Duration::ZERO);
/// ```
pub fn set_spin_time(spin: Duration) {
    let ns = u64::try_from(spin.as_nanos()).unwrap_or(u64::MAX - 1);
    SPIN_NS.store(ns.min(u64::MAX - 1), Ordering::Relaxed);
}

/// How long worker threads stay awake after split work ([`set_spin_time`]).
pub fn spin_time() -> Duration {
    match SPIN_NS.load(Ordering::Relaxed) {
        u64::MAX => {
            let spin = std::env::var("TAPEGRAD_SPIN_US")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(DEFAULT_SPIN, Duration::from_micros);
            set_spin_time(spin);
            spin
        }
        ns => Duration::from_nanos(ns),
    }
}

/// Worker threads now staying awake for more work ([`linger`]).
#[cfg(feature = "threads")]
static LINGERING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Keeps one more worker awake after split work (up to one per worker), so the next split work
/// starts on it at once instead of after a wake-up: a job on the pool that runs any work queued
/// there and returns once the spin time (read at every check) has passed since it last found
/// some.
///
/// On a machine of one core there is no other core to keep a worker on; nothing is kept awake.
#[cfg(feature = "threads")]
fn linger(spin: Duration) {
    if spin.is_zero() || cores() < 2 {
        return;
    }
    let pool = pool();
    if LINGERING.fetch_add(1, Ordering::AcqRel) >= pool.current_num_threads() {
        LINGERING.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    pool.spawn(move || {
        let mut last = Instant::now();
        // The spin time is read again at every check: setting it to zero ends the wait.
        while last.elapsed() < spin_time() {
            match pool.yield_now() {
                Some(rayon::Yield::Executed) => last = Instant::now(),
                _ => pause(),
            }
        }
        LINGERING.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Worker threads now kept awake waiting for more split work ([`set_spin_time`]): at most one
/// per worker, and none once the spin time has passed without any (or on one core).
///
/// ```
/// use std::time::Duration;
/// tapegrad_tensor::set_spin_time(Duration::ZERO);
/// let job = || {};
/// tapegrad_tensor::run_parallel(&[&job, &job]);
/// assert_eq!(tapegrad_tensor::awake_workers(), 0);
/// ```
pub fn awake_workers() -> usize {
    #[cfg(feature = "threads")]
    return LINGERING.load(Ordering::Acquire);
    #[cfg(not(feature = "threads"))]
    0
}

/// The cores available to the process, read once: `available_parallelism` reads the cgroup's
/// quota files on Linux, tens of microseconds per call.
#[cfg(feature = "threads")]
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// tapegrad's own rayon pool: one thread fewer than the cores the process may use (at least
/// one), because the caller of [`run_parallel`] runs the first job itself. With as many workers
/// as cores, the caller and the workers would be one thread more than the cores, and on a
/// small machine the extra runnable thread preempts the ones doing the work.
#[cfg(feature = "threads")]
fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let cores = cores();
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
