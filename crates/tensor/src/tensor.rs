//! The `Tensor` type: storage, constructors and element access.

use rand::{Rng, RngExt};
use smallvec::SmallVec;

use crate::error::{Result, TensorError};
use crate::float::Float;

/// A shape: the size of each axis, stored inline (no heap allocation) up to rank 4.
pub type Shape = SmallVec<[usize; 4]>;

/// Element storage: up to four elements live inline, so scalars and tiny tensors never touch the
/// heap (a scalar graph node must cost tens of nanoseconds, not an allocation).
pub(crate) type Storage<E> = SmallVec<[E; 4]>;

/// A shape from a slice, copying inline shapes as one small array (cheaper than SmallVec's
/// generic extend, which the scalar graph nodes would pay on every op).
#[inline]
pub(crate) fn shape_of(dims: &[usize]) -> Shape {
    // One arm per rank: a copy of a variable length would call `memcpy` (and zeroing the
    // array `memset`) for at most 32 bytes.
    let (buf, len) = match *dims {
        [] => ([0; 4], 0),
        [a] => ([a, 0, 0, 0], 1),
        [a, b] => ([a, b, 0, 0], 2),
        [a, b, c] => ([a, b, c, 0], 3),
        [a, b, c, d] => ([a, b, c, d], 4),
        _ => return Shape::from_slice(dims),
    };
    SmallVec::from_buf_and_len(buf, len)
}

/// Collects an exact-size iterator into storage: inline for up to four elements, otherwise
/// through `Vec` (whose collection of a trusted-length iterator vectorizes) without a copy.
#[inline]
pub(crate) fn collect_storage<E: Float>(it: impl ExactSizeIterator<Item = E>) -> Storage<E> {
    if it.len() <= 4 {
        fill_inline(it)
    } else {
        let mut v = crate::pool::take(it.len());
        v.extend(it);
        SmallVec::from_vec(v)
    }
}

/// The element count of `shape`, which `len` elements given for it must match: the error
/// names `op`, the shape and both counts.
fn expect_len(op: &'static str, len: usize, shape: &[usize]) -> Result<usize> {
    let expected = checked_numel(op, shape)?;
    if len != expected {
        return Err(TensorError::DataLength {
            op,
            len,
            shape: shape.to_vec(),
            expected,
        });
    }
    Ok(expected)
}

/// Inline storage from at most four elements, filled in place: `collect` into a SmallVec goes
/// through its generic `extend`, which checks its room for every element (about a hundred
/// instructions for four).
#[inline]
fn fill_inline<E: Float>(it: impl Iterator<Item = E>) -> Storage<E> {
    let mut buf = [E::ZERO; 4];
    let mut len = 0;
    for (slot, v) in buf.iter_mut().zip(it) {
        *slot = v;
        len += 1;
    }
    SmallVec::from_buf_and_len(buf, len)
}

/// [`collect_storage`] for `n` elements whose count comes from user input: the buffer is
/// reserved fallibly, then filled through `Vec`'s trusted-length extend (which vectorizes).
#[inline]
pub(crate) fn try_collect_storage<E: Float>(
    n: usize,
    it: impl ExactSizeIterator<Item = E>,
    op: &'static str,
    shape: &[usize],
) -> Result<Storage<E>> {
    debug_assert_eq!(it.len(), n);
    if n <= 4 {
        Ok(fill_inline(it))
    } else {
        let mut v = crate::pool::try_take(n, op, shape)?;
        v.extend(it);
        Ok(SmallVec::from_vec(v))
    }
}

/// Empty storage with room for `n` elements: inline up to four, else a pooled buffer. For sizes
/// existing tensors vouch for; see [`try_storage_with_capacity`] for sizes from user input.
#[inline]
pub(crate) fn storage_with_capacity<E: Float>(n: usize) -> Storage<E> {
    if n <= 4 {
        Storage::new()
    } else {
        SmallVec::from_vec(crate::pool::take(n))
    }
}

/// [`storage_with_capacity`] with a fallible allocation: an error names `op`, `shape` and the
/// bytes.
#[inline]
pub(crate) fn try_storage_with_capacity<E: Float>(
    n: usize,
    op: &'static str,
    shape: &[usize],
) -> Result<Storage<E>> {
    if n <= 4 {
        Ok(Storage::new())
    } else {
        Ok(SmallVec::from_vec(crate::pool::try_take(n, op, shape)?))
    }
}

/// Storage of `n` copies of `value`, for sizes existing tensors vouch for.
#[inline]
pub(crate) fn storage_filled<E: Float>(value: E, n: usize) -> Storage<E> {
    if n <= 4 {
        SmallVec::from_elem(value, n)
    } else {
        let mut v = crate::pool::take(n);
        v.resize(n, value);
        SmallVec::from_vec(v)
    }
}

/// [`storage_filled`] with a fallible allocation.
#[inline]
pub(crate) fn try_storage_filled<E: Float>(
    value: E,
    n: usize,
    op: &'static str,
    shape: &[usize],
) -> Result<Storage<E>> {
    if n <= 4 {
        return Ok(SmallVec::from_elem(value, n));
    }
    // `Vec::resize` fills in bulk (SmallVec's resize pushes element by element).
    let mut v = crate::pool::try_take(n, op, shape)?;
    v.resize(n, value);
    Ok(SmallVec::from_vec(v))
}

/// Unwraps the result of a constructor that has no `Result` to return its error in: the
/// documented panic of [`Tensor::zeros`] and the like (never an abort).
#[track_caller]
fn or_panic<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A dense, row-major tensor of `f32` (the default) or `f64` of any rank, including 0 (scalars).
///
/// ```
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// assert_eq!(x.shape(), &[2, 3]);
/// assert_eq!(x.get(&[1, 2])?, 6.0);
/// assert_eq!(x.sum().item()?, 21.0);
/// # Ok::<(), tapegrad_tensor::TensorError>(())
/// ```
#[derive(PartialEq)]
pub struct Tensor<E: Float = f32> {
    pub(crate) shape: Shape,
    pub(crate) data: Storage<E>,
}

impl<E: Float> Clone for Tensor<E> {
    fn clone(&self) -> Self {
        let data = if self.data.len() <= 4 {
            self.data.clone()
        } else {
            let mut v = crate::pool::take(self.data.len());
            v.extend_from_slice(&self.data);
            SmallVec::from_vec(v)
        };
        Tensor {
            shape: shape_of(&self.shape),
            data,
        }
    }
}

impl<E: Float> Drop for Tensor<E> {
    /// Gives a heap buffer back to this thread's pool for the next tensor of its size.
    fn drop(&mut self) {
        if self.data.spilled() {
            crate::pool::give(std::mem::take(&mut self.data).into_vec());
        }
    }
}

/// The number of elements of a shape (1 for rank 0).
///
/// # Panics
///
/// When the shape is too large to exist (see [`checked_numel`]); every shape of an existing
/// tensor is fine.
pub fn numel(shape: &[usize]) -> usize {
    or_panic(checked_numel("numel", shape))
}

/// The product of the sizes of a shape known to be valid (an existing tensor's, or one that
/// [`checked_numel`] accepted): the plain product, for hot paths.
#[inline]
pub(crate) fn len_of(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The number of elements of a shape, checked: [`TensorError::TooLarge`] naming `op` and the
/// shape when the product of its nonzero sizes overflows or exceeds `isize::MAX` (no buffer
/// that large can exist, and the row-major strides of such a shape would overflow too, even
/// when another size is zero).
///
/// ```
/// use tapegrad_tensor::checked_numel;
/// assert_eq!(checked_numel("zeros", &[2, 3])?, 6);
/// assert_eq!(checked_numel("zeros", &[0, 1 << 40])?, 0);
/// let err = checked_numel("zeros", &[1 << 32, 1 << 32]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "shape [4294967296, 4294967296] in zeros is too large: the product of its sizes overflows"
/// );
/// # Ok::<(), tapegrad_tensor::TensorError>(())
/// ```
///
/// # Errors
///
/// [`TensorError::TooLarge`] as above.
#[inline]
pub fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    let mut product = 1usize;
    let mut empty = false;
    for &d in shape {
        empty |= d == 0;
        product = match product.checked_mul(d.max(1)) {
            Some(p) if p <= isize::MAX as usize => p,
            _ => {
                return Err(TensorError::TooLarge {
                    op,
                    shape: shape.to_vec(),
                });
            }
        };
    }
    Ok(if empty { 0 } else { product })
}

impl<E: Float> Tensor<E> {
    pub(crate) fn from_parts(data: Storage<E>, shape: Shape) -> Self {
        debug_assert_eq!(Some(data.len()), checked_numel("from_parts", &shape).ok());
        Tensor { shape, data }
    }

    pub(crate) fn from_vec_unchecked(data: Vec<E>, shape: &[usize]) -> Self {
        Self::from_parts(Storage::from_vec(data), shape_of(shape))
    }

    /// A tensor from a row-major buffer and a shape.
    ///
    /// # Errors
    ///
    /// [`TensorError::TooLarge`] for a shape whose element count overflows, and
    /// [`TensorError::DataLength`] when `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<E>, shape: &[usize]) -> Result<Self> {
        expect_len("from_vec", data.len(), shape)?;
        Ok(Self::from_vec_unchecked(data, shape))
    }

    /// A tensor from a slice and a shape (copies the slice).
    ///
    /// # Errors
    ///
    /// As [`Tensor::from_vec`].
    pub fn from_slice(data: &[E], shape: &[usize]) -> Result<Self> {
        expect_len("from_slice", data.len(), shape)?;
        Ok(Self::from_parts(Storage::from_slice(data), shape_of(shape)))
    }

    /// A tensor of `shape` holding the iterator's elements in row-major order (as
    /// `Tensor::from_vec(iter.collect(), shape)`, without the intermediate `Vec`); its buffer
    /// comes from the thread's pool when one of that size is free. An iterator over slices
    /// (`a.iter().zip(b).map(..)`) fills it without a bounds check per element, which a
    /// [`Tensor::from_fn`] closure indexing those slices pays.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let (a, b) = ([1.0f32, 2.0, 3.0, 4.0], [10.0f32, 20.0, 30.0, 40.0]);
    /// let t = Tensor::from_iter_exact(&[2, 2], a.iter().zip(&b).map(|(x, y)| x * y))?;
    /// assert_eq!(t.to_vec(), vec![10.0, 40.0, 90.0, 160.0]);
    /// assert!(Tensor::<f32>::from_iter_exact(&[3], a.iter().copied()).is_err());
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::DataLength`] when the iterator's length is not the shape's element count,
    /// and as [`Tensor::try_from_fn`].
    pub fn from_iter_exact(
        shape: &[usize],
        iter: impl ExactSizeIterator<Item = E>,
    ) -> Result<Self> {
        let n = expect_len("from_iter_exact", iter.len(), shape)?;
        let data = try_collect_storage(n, iter, "from_iter_exact", shape)?;
        Ok(Self::from_parts(data, shape_of(shape)))
    }

    /// A tensor of `shape` whose elements `fill(start, chunk)` writes: `chunk` is the part of the
    /// elements (row-major) from flat index `start`, zeroed. Split over the worker threads as
    /// [`crate::par_chunks_mut`] splits (from `min_per_thread` elements per thread), so `fill`
    /// must write a chunk from its inputs alone; the buffer comes from the thread's pool.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
    /// let t = Tensor::par_fill(&[100, 1000], "double", 1 << 14, |start, out| {
    ///     for (o, v) in out.iter_mut().zip(&x[start..]) {
    ///         *o = 2.0 * v;
    ///     }
    /// })?;
    /// assert_eq!(t.as_slice()[99_999], 199_998.0);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::TooLarge`] when the shape's element count overflows and
    /// [`TensorError::Alloc`] naming `op`, the shape and the bytes when the memory cannot be had.
    pub fn par_fill(
        shape: &[usize],
        op: &'static str,
        min_per_thread: usize,
        fill: impl Fn(usize, &mut [E]) + Sync,
    ) -> Result<Self> {
        let n = checked_numel(op, shape)?;
        let mut buf: Vec<E> = crate::pool::try_take(n, op, shape)?;
        let spare = &mut buf.spare_capacity_mut()[..n];
        crate::workers::par_chunks_mut(spare, min_per_thread, |start, chunk| {
            // Zeroed here, on the thread that fills it, while it is in that core's cache.
            for v in chunk.iter_mut() {
                v.write(E::ZERO);
            }
            // SAFETY: every element of `chunk` was just written, and `MaybeUninit<E>` has
            // `E`'s layout.
            let chunk = unsafe { &mut *(std::ptr::from_mut(chunk) as *mut [E]) };
            fill(start, chunk);
        });
        // SAFETY: the chunks cover the first n elements and every one was written before
        // `par_chunks_mut` returned (a job that panics makes it panic before this line).
        unsafe { buf.set_len(n) };
        Ok(Self::from_parts(Storage::from_vec(buf), shape_of(shape)))
    }

    /// A tensor of `shape` whose element at flat (row-major) index `i` is `f(i)`; its buffer
    /// comes from the thread's pool when one of that size is free.
    ///
    /// # Panics
    ///
    /// Where [`Tensor::try_from_fn`] returns an error.
    #[track_caller]
    pub fn from_fn(shape: &[usize], f: impl FnMut(usize) -> E) -> Self {
        or_panic(Self::try_from_fn(shape, f))
    }

    /// [`Tensor::from_fn`], with an error instead of a panic.
    ///
    /// # Errors
    ///
    /// [`TensorError::TooLarge`] when the shape's element count overflows and
    /// [`TensorError::Alloc`] naming the shape and bytes when the memory cannot be had.
    pub fn try_from_fn(shape: &[usize], f: impl FnMut(usize) -> E) -> Result<Self> {
        let n = checked_numel("from_fn", shape)?;
        let data = try_collect_storage(n, (0..n).map(f), "from_fn", shape)?;
        Ok(Self::from_parts(data, shape_of(shape)))
    }

    /// A rank-0 tensor holding one value (no heap allocation).
    pub fn scalar(value: E) -> Self {
        let mut data = Storage::new();
        data.push(value);
        Tensor {
            shape: Shape::new(),
            data,
        }
    }

    /// A tensor of the given shape with every element `value`.
    ///
    /// # Panics
    ///
    /// Where [`Tensor::try_full`] returns an error: a shape whose element count overflows, or
    /// memory the allocator refuses (a panic naming the shape and bytes, never an abort).
    #[inline]
    #[track_caller]
    pub fn full(shape: &[usize], value: E) -> Self {
        if shape.len() <= 4 && shape.iter().all(|&d| d == 1) {
            let mut data = Storage::new();
            data.push(value);
            return Tensor {
                shape: shape_of(shape),
                data,
            };
        }
        or_panic(Self::try_full_op("full", shape, value))
    }

    /// [`Tensor::full`], with an error instead of a panic.
    ///
    /// ```
    /// use tapegrad_tensor::{Tensor, TensorError};
    /// assert_eq!(Tensor::<f32>::try_full(&[2], 1.5)?.to_vec(), vec![1.5, 1.5]);
    /// // 2^20 x 2^20 f32 elements are 4 TiB: refused, not an abort.
    /// let err = Tensor::<f32>::try_full(&[1 << 20, 1 << 20], 0.0).unwrap_err();
    /// assert!(matches!(err, TensorError::Alloc { bytes: 4398046511104, .. }), "{err}");
    /// # Ok::<(), TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::TooLarge`] when the shape's element count overflows and
    /// [`TensorError::Alloc`] naming the shape and bytes when the memory cannot be had.
    pub fn try_full(shape: &[usize], value: E) -> Result<Self> {
        Self::try_full_op("full", shape, value)
    }

    fn try_full_op(op: &'static str, shape: &[usize], value: E) -> Result<Self> {
        let n = checked_numel(op, shape)?;
        Ok(Self::from_parts(
            try_storage_filled(value, n, op, shape)?,
            shape_of(shape),
        ))
    }

    /// A tensor of zeros.
    ///
    /// # Panics
    ///
    /// As [`Tensor::full`]; [`Tensor::try_zeros`] returns an error instead.
    #[track_caller]
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, E::ZERO)
    }

    /// [`Tensor::zeros`], with an error instead of a panic.
    ///
    /// # Errors
    ///
    /// As [`Tensor::try_full`].
    pub fn try_zeros(shape: &[usize]) -> Result<Self> {
        Self::try_full_op("zeros", shape, E::ZERO)
    }

    /// A tensor of ones.
    ///
    /// # Panics
    ///
    /// As [`Tensor::full`]; [`Tensor::try_ones`] returns an error instead.
    #[track_caller]
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, E::ONE)
    }

    /// [`Tensor::ones`], with an error instead of a panic.
    ///
    /// # Errors
    ///
    /// As [`Tensor::try_full`].
    pub fn try_ones(shape: &[usize]) -> Result<Self> {
        Self::try_full_op("ones", shape, E::ONE)
    }

    /// The `n x n` identity matrix.
    ///
    /// # Panics
    ///
    /// As [`Tensor::full`]; [`Tensor::try_eye`] returns an error instead.
    #[track_caller]
    pub fn eye(n: usize) -> Self {
        or_panic(Self::try_eye(n))
    }

    /// [`Tensor::eye`], with an error instead of a panic.
    ///
    /// # Errors
    ///
    /// As [`Tensor::try_full`].
    pub fn try_eye(n: usize) -> Result<Self> {
        let mut t = Self::try_full_op("eye", &[n, n], E::ZERO)?;
        for i in 0..n {
            t.data[i * n + i] = E::ONE;
        }
        Ok(t)
    }

    /// A tensor of values drawn uniformly from `[low, high)`.
    ///
    /// The same seed gives the same tensor on every run and machine: values are drawn in f64 from
    /// the generator's 53-bit uniform stream, then converted.
    ///
    /// # Panics
    ///
    /// As [`Tensor::full`]; [`Tensor::try_rand_uniform`] returns an error instead.
    #[track_caller]
    pub fn rand_uniform<R: Rng + ?Sized>(shape: &[usize], low: E, high: E, rng: &mut R) -> Self {
        or_panic(Self::try_rand_uniform(shape, low, high, rng))
    }

    /// [`Tensor::rand_uniform`], with an error instead of a panic.
    ///
    /// # Errors
    ///
    /// As [`Tensor::try_full`].
    pub fn try_rand_uniform<R: Rng + ?Sized>(
        shape: &[usize],
        low: E,
        high: E,
        rng: &mut R,
    ) -> Result<Self> {
        let (lo, hi) = (low.to_f64(), high.to_f64());
        let n = checked_numel("rand_uniform", shape)?;
        let draws = (0..n).map(|_| E::from_f64(lo + (hi - lo) * rng.random::<f64>()));
        let data = try_collect_storage(n, draws, "rand_uniform", shape)?;
        Ok(Self::from_parts(data, shape_of(shape)))
    }

    /// A tensor of values drawn from a normal distribution with the given mean and standard
    /// deviation (Box-Muller on the generator's f64 stream, so it is reproducible for a seed).
    ///
    /// # Panics
    ///
    /// As [`Tensor::full`]; [`Tensor::try_randn`] returns an error instead.
    #[track_caller]
    pub fn randn<R: Rng + ?Sized>(shape: &[usize], mean: E, std: E, rng: &mut R) -> Self {
        or_panic(Self::try_randn(shape, mean, std, rng))
    }

    /// [`Tensor::randn`], with an error instead of a panic.
    ///
    /// # Errors
    ///
    /// As [`Tensor::try_full`].
    pub fn try_randn<R: Rng + ?Sized>(
        shape: &[usize],
        mean: E,
        std: E,
        rng: &mut R,
    ) -> Result<Self> {
        let (mu, sigma) = (mean.to_f64(), std.to_f64());
        let n = checked_numel("randn", shape)?;
        let mut data = try_storage_with_capacity(n, "randn", shape)?;
        while data.len() < n {
            let (z0, z1) = standard_normal_pair(rng);
            data.push(E::from_f64(mu + sigma * z0));
            if data.len() < n {
                data.push(E::from_f64(mu + sigma * z1));
            }
        }
        Ok(Self::from_parts(data, shape_of(shape)))
    }

    /// The size of each axis.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of axes (0 for a scalar).
    #[inline]
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no element (some axis has size 0).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in row-major order.
    #[inline]
    pub fn as_slice(&self) -> &[E] {
        &self.data
    }

    /// The elements in row-major order, mutable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [E] {
        &mut self.data
    }

    /// The elements as a new `Vec`.
    pub fn to_vec(&self) -> Vec<E> {
        self.data.to_vec()
    }

    /// The element type's name, `"f32"` or `"f64"`.
    pub fn dtype(&self) -> &'static str {
        E::DTYPE
    }

    /// The element of a one-element tensor, or `None`: one length check, for hot scalar paths
    /// (see [`Tensor::item`] for an error that names the shape).
    #[inline]
    pub fn single(&self) -> Option<E> {
        match self.data.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }

    /// The single element of a one-element tensor (of any rank).
    ///
    /// # Errors
    ///
    /// [`TensorError::NotScalar`] when the tensor does not hold exactly one element.
    pub fn item(&self) -> Result<E> {
        if self.data.len() != 1 {
            return Err(TensorError::NotScalar {
                op: "item",
                shape: self.shape.to_vec(),
            });
        }
        Ok(self.data[0])
    }

    /// The element at a multi-index.
    ///
    /// # Errors
    ///
    /// [`TensorError::Index`] when the index has the wrong length or lies outside the shape.
    pub fn get(&self, index: &[usize]) -> Result<E> {
        if index.len() != self.rank() || index.iter().zip(&self.shape).any(|(i, d)| i >= d) {
            return Err(TensorError::Index {
                op: "get",
                index: index.to_vec(),
                shape: self.shape.to_vec(),
            });
        }
        let offset = index
            .iter()
            .zip(self.strides())
            .map(|(i, s)| i * s)
            .sum::<usize>();
        Ok(self.data[offset])
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> Shape {
        contiguous_strides(&self.shape)
    }

    /// Converts every element to another float type.
    pub fn cast<F: Float>(&self) -> Tensor<F> {
        Tensor::from_parts(
            collect_storage(self.data.iter().map(|v| F::from_f64(v.to_f64()))),
            shape_of(&self.shape),
        )
    }

    /// Whether every element is finite (no NaN, no infinity).
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// Overwrites this tensor with `other`'s shape and values, reusing the allocation.
    pub fn assign(&mut self, other: &Tensor<E>) {
        self.shape.clone_from(&other.shape);
        self.data.clear();
        self.data.extend_from_slice(&other.data);
    }

    /// Fills every element with `value`.
    pub fn fill(&mut self, value: E) {
        self.data.iter_mut().for_each(|v| *v = value);
    }
}

/// Row-major strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Shape {
    let mut strides: Shape = SmallVec::from_elem(1, shape.len());
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

fn standard_normal_pair<R: Rng + ?Sized>(rng: &mut R) -> (f64, f64) {
    // Box-Muller: u1 in (0, 1] keeps ln finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    let r = (-2.0 * u1.ln()).sqrt();
    let theta = 2.0 * std::f64::consts::PI * u2;
    (r * theta.cos(), r * theta.sin())
}
