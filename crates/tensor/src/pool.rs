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

/// Buffers of fewer elements than this are kept in a list per capacity, found by indexing.
const SMALL: usize = 64;

/// Free buffers by capacity: small ones (below [`SMALL`] elements, the tensors of a tiny
/// network) in a table indexed by capacity, the rest in a list sorted by capacity and searched
/// by bisection. A training loop uses a few dozen sizes, where bisection beats hashing the size
/// (a `HashMap` with SipHash cost about a tenth of a tiny network's step); indexing the small
/// ones spares a tiny network's step the search for each of its dozen buffers.
pub struct Pool<E> {
    /// `small[n]` holds free buffers of capacity `n`; empty until a small buffer comes back.
    small: Vec<Vec<Vec<E>>>,
    free: Vec<(usize, Vec<Vec<E>>)>,
    bytes: usize,
}

impl<E> Pool<E> {
    /// An empty pool (const: a thread's pool needs no lazy set-up).
    const fn new() -> Self {
        Pool {
            small: Vec::new(),
            free: Vec::new(),
            bytes: 0,
        }
    }

    /// A free buffer with capacity for exactly `n` elements, if the pool holds one.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Option<Vec<E>> {
        let list = if n < SMALL {
            self.small.get_mut(n)?
        } else {
            let i = self.free.binary_search_by_key(&n, |(size, _)| *size).ok()?;
            &mut self.free[i].1
        };
        let v = list.pop()?;
        self.bytes -= n * size_of::<E>();
        Some(v)
    }

    /// Keeps `v` for reuse unless it is empty, too large, or the pool is full.
    pub(crate) fn give(&mut self, mut v: Vec<E>) {
        let n = v.capacity();
        let bytes = n * size_of::<E>();
        if bytes == 0 || bytes > MAX_BUFFER_BYTES || self.bytes + bytes > MAX_POOL_BYTES {
            return;
        }
        let list = if n < SMALL {
            if self.small.is_empty() {
                self.small.resize_with(SMALL, Vec::new);
            }
            &mut self.small[n]
        } else {
            let i = match self.free.binary_search_by_key(&n, |(size, _)| *size) {
                Ok(i) => i,
                Err(_) if self.free.len() >= MAX_SIZES => return,
                Err(i) => {
                    self.free.insert(i, (n, Vec::new()));
                    i
                }
            };
            &mut self.free[i].1
        };
        if list.len() < MAX_PER_SIZE {
            v.clear();
            list.push(v);
            self.bytes += bytes;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.small.clear();
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

    /// A free buffer of capacity `n` from this thread's pool ([`Pool::take`]), without the
    /// nested options of [`Pooled::with_pool`] (the hot path of every tensor's allocation).
    fn take_free(n: usize) -> Option<Vec<Self>>;
}

macro_rules! pooled {
    ($t:ty, $pool:ident) => {
        thread_local! {
            static $pool: RefCell<Pool<$t>> = const { RefCell::new(Pool::new()) };
        }

        impl Pooled for $t {
            #[inline]
            fn with_pool<R>(f: impl FnOnce(&mut Pool<Self>) -> R) -> Option<R> {
                $pool
                    .try_with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p)))
                    .ok()
                    .flatten()
            }

            #[inline]
            fn take_free(n: usize) -> Option<Vec<Self>> {
                $pool
                    .try_with(|p| match p.try_borrow_mut() {
                        Ok(mut p) => p.take(n),
                        Err(_) => None,
                    })
                    .unwrap_or(None)
            }
        }
    };
}

pooled!(f32, POOL_F32);
pooled!(f64, POOL_F64);

/// An empty buffer with capacity for `n` elements, from this thread's pool when one is free.
/// For sizes that existing tensors vouch for (a result no larger than an operand); sizes that
/// come from user input go through [`try_take`].
#[inline]
pub(crate) fn take<E: Pooled>(n: usize) -> Vec<E> {
    E::take_free(n).unwrap_or_else(|| Vec::with_capacity(n))
}

/// [`take`] for a size that comes from user input: the allocation is fallible, and a refusal
/// is [`TensorError::Alloc`] naming `op`, the result's `shape` and the bytes.
#[inline]
pub(crate) fn try_take<E: Pooled>(n: usize, op: &'static str, shape: &[usize]) -> Result<Vec<E>> {
    if let Some(v) = E::take_free(n) {
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

#[cfg(test)]
mod tests {
    use super::{MAX_BUFFER_BYTES, MAX_PER_SIZE, Pool, SMALL};

    fn buffer(n: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(n);
        v.extend((0..n).map(|i| i as f32));
        v
    }

    #[test]
    fn buffers_small_and_large_come_back_by_exact_capacity() {
        let mut pool = Pool::<f32>::new();
        for n in [1, 8, SMALL - 1, SMALL, 1000] {
            assert!(pool.take(n).is_none(), "nothing of {n} yet");
            pool.give(buffer(n));
            assert_eq!(pool.bytes(), n * 4);
            assert!(
                pool.take(n + 1).is_none(),
                "no other capacity answers for {n}"
            );
            let v = pool.take(n).expect("the buffer given back");
            assert_eq!((v.capacity(), v.len()), (n, 0), "emptied, capacity kept");
            assert_eq!(pool.bytes(), 0);
            assert!(pool.take(n).is_none(), "taken once");
        }
    }

    #[test]
    fn the_pool_keeps_at_most_its_limits_and_clear_empties_it() {
        let mut pool = Pool::<f32>::new();
        for n in [8, 500] {
            for _ in 0..MAX_PER_SIZE + 3 {
                pool.give(buffer(n));
            }
        }
        assert_eq!(pool.bytes(), MAX_PER_SIZE * (8 + 500) * 4);
        pool.give(Vec::with_capacity(MAX_BUFFER_BYTES / 4 + 1));
        pool.give(Vec::new());
        assert_eq!(
            pool.bytes(),
            MAX_PER_SIZE * (8 + 500) * 4,
            "too large or empty: not kept"
        );
        pool.clear();
        assert_eq!(pool.bytes(), 0);
        assert!(pool.take(8).is_none() && pool.take(500).is_none());
    }
}
