//! A per-thread pool of element buffers. A dropped tensor's heap buffer goes back to the pool
//! and the next tensor of the same size takes it, so a training loop that repeats the same shapes
//! step after step stops calling the allocator once it is warm (and stops paying for fresh pages).

use std::cell::RefCell;

use crate::error::{Result, TensorError};

/// Buffers larger than this (in bytes) go straight back to the allocator.
const MAX_BUFFER_BYTES: usize = 64 << 20;
/// The most bytes one thread's pool holds.
const MAX_POOL_BYTES: usize = 512 << 20;
/// The most buffers of one size one thread's pool holds.
const MAX_PER_SIZE: usize = 32;
/// The most distinct sizes one thread's pool holds buffers of.
const MAX_SIZES: usize = 512;

/// Free buffers by capacity: a list sorted by capacity, searched by bisection. A training loop
/// uses a few dozen sizes, where this beats hashing the size (a `HashMap` with SipHash cost
/// about a tenth of a tiny network's step).
pub struct Pool<E> {
    free: Vec<(usize, Vec<Vec<E>>)>,
    bytes: usize,
}

impl<E> Default for Pool<E> {
    fn default() -> Self {
        Pool {
            free: Vec::new(),
            bytes: 0,
        }
    }
}

impl<E> Pool<E> {
    /// A free buffer with capacity for exactly `n` elements, if the pool holds one.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Option<Vec<E>> {
        if let Ok(i) = self.free.binary_search_by_key(&n, |(size, _)| *size)
            && let Some(v) = self.free[i].1.pop()
        {
            self.bytes -= n * size_of::<E>();
            return Some(v);
        }
        None
    }

    /// Keeps `v`'s allocation for reuse (or frees it when the pool is full).
    pub(crate) fn give(&mut self, mut v: Vec<E>) {
        let n = v.capacity();
        let bytes = n * size_of::<E>();
        if bytes == 0 || bytes > MAX_BUFFER_BYTES || self.bytes + bytes > MAX_POOL_BYTES {
            return;
        }
        let i = match self.free.binary_search_by_key(&n, |(size, _)| *size) {
            Ok(i) => i,
            Err(_) if self.free.len() >= MAX_SIZES => return,
            Err(i) => {
                self.free.insert(i, (n, Vec::new()));
                i
            }
        };
        let list = &mut self.free[i].1;
        if list.len() < MAX_PER_SIZE {
            v.clear();
            list.push(v);
            self.bytes += bytes;
        }
    }

    /// Frees every pooled buffer.
    pub(crate) fn clear(&mut self) {
        self.free.clear();
        self.bytes = 0;
    }

    /// The bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Access to the calling thread's pool for one element type.
pub trait Pooled: Sized + 'static {
    /// Runs `f` on this thread's pool; `None` while the thread is shutting down.
    fn with_pool<R>(f: impl FnOnce(&mut Pool<Self>) -> R) -> Option<R>;
}

macro_rules! pooled {
    ($t:ty) => {
        impl Pooled for $t {
            #[inline]
            fn with_pool<R>(f: impl FnOnce(&mut Pool<Self>) -> R) -> Option<R> {
                thread_local! {
                    static POOL: RefCell<Pool<$t>> = RefCell::new(Pool::default());
                }
                POOL.try_with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p)))
                    .ok()
                    .flatten()
            }
        }
    };
}

pooled!(f32);
pooled!(f64);

/// An empty buffer with capacity for `n` elements, from this thread's pool when one is free.
/// For sizes that existing tensors vouch for (a result no larger than an operand); sizes that
/// come from user input go through [`try_take`].
#[inline]
pub(crate) fn take<E: Pooled>(n: usize) -> Vec<E> {
    E::with_pool(|p| p.take(n))
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(n))
}

/// [`take`] for a size that comes from user input: the allocation is fallible, and a refusal
/// is [`TensorError::Alloc`] naming `op`, the result's `shape` and the bytes.
#[inline]
pub(crate) fn try_take<E: Pooled>(n: usize, op: &'static str, shape: &[usize]) -> Result<Vec<E>> {
    if let Some(v) = E::with_pool(|p| p.take(n)).flatten() {
        return Ok(v);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| TensorError::Alloc {
        op,
        shape: shape.to_vec(),
        bytes: n as u128 * size_of::<E>() as u128,
    })?;
    Ok(v)
}

/// Returns a buffer to this thread's pool.
pub(crate) fn give<E: Pooled>(v: Vec<E>) {
    if v.capacity() > 0 {
        let _ = E::with_pool(|p| p.give(v));
    }
}

/// Frees every buffer this thread's pools hold (f32 and f64), returning the bytes released.
pub fn release_buffers() -> usize {
    let a = f32::with_pool(|p| {
        let b = p.bytes();
        p.clear();
        b
    });
    let b = f64::with_pool(|p| {
        let b = p.bytes();
        p.clear();
        b
    });
    a.unwrap_or(0) + b.unwrap_or(0)
}

/// The bytes this thread's buffer pools hold for reuse.
pub fn pooled_bytes() -> usize {
    f32::with_pool(|p| p.bytes()).unwrap_or(0) + f64::with_pool(|p| p.bytes()).unwrap_or(0)
}
