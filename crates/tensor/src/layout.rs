//! Layout ops: permutations of axes, padding, selection along any axis, and the reshapes that
//! add, remove or merge axes. Each copies into a new row-major buffer.

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::reduce::{check_axis, split_at_axis};
use crate::tensor::{Shape, Storage, Tensor, contiguous_strides, len_of, shape_of};

/// Copies, in row-major order of `shape`, the elements of `src` at
/// `offset + sum over d of idx[d] * strides[d]`: the strided read behind `permute` and the
/// crop that undoes `pad`.
fn gather<E: Float>(
    src: &[E],
    shape: &[usize],
    strides: &[usize],
    offset: usize,
    op: &'static str,
) -> Result<Storage<E>> {
    let n = len_of(shape);
    if n <= 4 {
        // Tiny results: element by element (inline storage).
        let mut out = Storage::new();
        let strides_out = crate::tensor::contiguous_strides(shape);
        for flat in 0..n {
            let at = strides_out
                .iter()
                .zip(shape)
                .zip(strides)
                .map(|((&so, &d), &s)| (flat / so % d) * s)
                .sum::<usize>();
            out.push(src[offset + at]);
        }
        return Ok(out);
    }
    // A Vec, whose extend from a trusted-length iterator writes without per-element checks.
    let mut out: Vec<E> = crate::pool::try_take(n, op, shape)?;
    let rank = shape.len();
    let (last, step) = (shape[rank - 1], strides[rank - 1]);
    let mut idx: Shape = smallvec::SmallVec::from_elem(0, rank - 1);
    let mut base = offset;
    loop {
        if step == 1 {
            out.extend_from_slice(&src[base..base + last]);
        } else {
            out.extend((0..last).map(|j| src[base + j * step]));
        }
        if !advance(&mut idx, shape, strides, &mut base) {
            return Ok(Storage::from_vec(out));
        }
    }
}

/// One step of an odometer over the leading axes `shape[..idx.len()]` (the last varies
/// fastest), moving `base` by those axes' `strides`; false once every index has come round.
#[inline]
fn advance(idx: &mut [usize], shape: &[usize], strides: &[usize], base: &mut usize) -> bool {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        *base += strides[d];
        if idx[d] < shape[d] {
            return true;
        }
        *base -= strides[d] * shape[d];
        idx[d] = 0;
    }
    false
}

/// Writes `src` (row-major over `shape`) into `dst` at `offset + sum idx[d] * strides[d]`: the
/// strided write behind `pad`.
fn scatter<E: Float>(dst: &mut [E], shape: &[usize], strides: &[usize], offset: usize, src: &[E]) {
    let rank = shape.len();
    if src.is_empty() {
        return;
    }
    if rank == 0 {
        dst[offset] = src[0];
        return;
    }
    let last = shape[rank - 1];
    let mut idx: Shape = smallvec::SmallVec::from_elem(0, rank - 1);
    let mut base = offset;
    for row in src.chunks_exact(last.max(1)) {
        dst[base..base + last].copy_from_slice(row);
        advance(&mut idx, shape, strides, &mut base);
    }
}

impl<E: Float> Tensor<E> {
    /// The axes reordered: axis `i` of the result is axis `axes[i]` of this tensor (PyTorch's
    /// `permute`, NumPy's `transpose`).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f32>::from_fn(&[2, 3, 4], |i| i as f32);
    /// let y = x.permute(&[2, 0, 1])?;
    /// assert_eq!(y.shape(), &[4, 2, 3]);
    /// assert_eq!(y.get(&[3, 1, 2])?, x.get(&[1, 2, 3])?);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] unless `axes` is a permutation of `0..rank`.
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor<E>> {
        let rank = self.rank();
        let mut seen = [false; 64];
        let valid = axes.len() == rank
            && rank <= 64
            && axes
                .iter()
                .all(|&a| a < rank && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(TensorError::Invalid {
                op: "permute",
                reason: format!(
                    "axes {axes:?} are not a permutation of the {rank} axes of shape {:?}",
                    self.shape()
                ),
            });
        }
        let own = contiguous_strides(self.shape());
        let shape: Shape = axes.iter().map(|&a| self.shape()[a]).collect();
        let strides: Shape = axes.iter().map(|&a| own[a]).collect();
        let data = gather(self.as_slice(), &shape, &strides, 0, "permute")?;
        Ok(Tensor::from_parts(data, shape))
    }

    /// Axes `a` and `b` swapped (any two axes; [`Tensor::t`] swaps the last two).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] for an axis past the last.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor<E>> {
        check_axis("transpose", self.shape(), a)?;
        check_axis("transpose", self.shape(), b)?;
        let mut axes: Shape = (0..self.rank()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// A new axis of size 1 at position `axis` (0 to rank inclusive).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis > rank`.
    pub fn unsqueeze(&self, axis: usize) -> Result<Tensor<E>> {
        if axis > self.rank() {
            return Err(TensorError::Axis {
                op: "unsqueeze",
                axis,
                shape: self.shape().to_vec(),
            });
        }
        let mut shape = shape_of(self.shape());
        shape.insert(axis, 1);
        self.reshape(&shape)
    }

    /// Axis `axis`, of size 1, removed.
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] for an axis past the last, and [`TensorError::Invalid`] when its
    /// size is not 1 (as NumPy; PyTorch returns the input unchanged).
    pub fn squeeze(&self, axis: usize) -> Result<Tensor<E>> {
        check_axis("squeeze", self.shape(), axis)?;
        if self.shape()[axis] != 1 {
            return Err(TensorError::Invalid {
                op: "squeeze",
                reason: format!(
                    "axis {axis} of shape {:?} has size {}, not 1",
                    self.shape(),
                    self.shape()[axis]
                ),
            });
        }
        let mut shape = shape_of(self.shape());
        shape.remove(axis);
        self.reshape(&shape)
    }

    /// Axes `start` to `end` (inclusive, as `torch.flatten`) merged into one.
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] for an axis past the last, [`TensorError::Invalid`] when
    /// `start > end`.
    pub fn flatten(&self, start: usize, end: usize) -> Result<Tensor<E>> {
        if self.rank() == 0 && start == 0 && end == 0 {
            return self.reshape(&[1]);
        }
        check_axis("flatten", self.shape(), start)?;
        check_axis("flatten", self.shape(), end)?;
        if start > end {
            return Err(TensorError::Invalid {
                op: "flatten",
                reason: format!("start axis {start} is after end axis {end}"),
            });
        }
        self.reshape(&flattened_shape(self.shape(), start, end))
    }

    /// Tensors of one shape joined along a new axis `axis` (0 to rank inclusive).
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] for an empty list, [`TensorError::ShapeMismatch`] naming the
    /// first tensor of another shape, [`TensorError::Axis`] when `axis > rank`.
    pub fn stack(tensors: &[&Tensor<E>], axis: usize) -> Result<Tensor<E>> {
        let first = tensors.first().ok_or_else(|| TensorError::Invalid {
            op: "stack",
            reason: "no tensors to stack".into(),
        })?;
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            return Err(TensorError::ShapeMismatch {
                op: "stack",
                lhs: first.shape().to_vec(),
                rhs: t.shape().to_vec(),
            });
        }
        if axis > first.rank() {
            return Err(TensorError::Axis {
                op: "stack",
                axis,
                shape: first.shape().to_vec(),
            });
        }
        // One copy: for each position before `axis`, each tensor's block after it in turn.
        let (outer, inner) = (
            len_of(&first.shape()[..axis]),
            len_of(&first.shape()[axis..]),
        );
        let mut shape = shape_of(first.shape());
        shape.insert(axis, tensors.len());
        let n = crate::tensor::checked_numel("stack", &shape)?;
        let mut data = crate::tensor::try_storage_with_capacity(n, "stack", &shape)?;
        for o in 0..outer {
            for t in tensors {
                data.extend_from_slice(&t.as_slice()[o * inner..(o + 1) * inner]);
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    /// Padded with `value`: `pads[d] = (before, after)` elements added on each side of axis
    /// `d`, one pair per axis, first axis first (unlike `F.pad`, which lists the last axis
    /// first).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f32>::ones(&[1, 2]);
    /// let y = x.pad(&[(0, 1), (1, 0)], 0.0)?;
    /// assert_eq!(y.shape(), &[2, 3]);
    /// assert_eq!(y.to_vec(), vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] unless there is one pair per axis; [`TensorError::TooLarge`]
    /// or [`TensorError::Alloc`] for a result too large.
    pub fn pad(&self, pads: &[(usize, usize)], value: E) -> Result<Tensor<E>> {
        if pads.len() != self.rank() {
            return Err(TensorError::Invalid {
                op: "pad",
                reason: format!(
                    "{} (before, after) pairs for the {} axes of shape {:?}",
                    pads.len(),
                    self.rank(),
                    self.shape()
                ),
            });
        }
        let mut shape = Shape::new();
        for (&d, &(b, a)) in self.shape().iter().zip(pads) {
            let size = d
                .checked_add(b)
                .and_then(|s| s.checked_add(a))
                .ok_or_else(|| TensorError::TooLarge {
                    op: "pad",
                    shape: self.shape().to_vec(),
                })?;
            shape.push(size);
        }
        let mut out = Tensor::try_full(&shape, value).map_err(|e| match e {
            TensorError::TooLarge { shape, .. } => TensorError::TooLarge { op: "pad", shape },
            TensorError::Alloc { shape, bytes, .. } => TensorError::Alloc {
                op: "pad",
                shape,
                bytes,
            },
            e => e,
        })?;
        let strides = contiguous_strides(&shape);
        let offset = pads.iter().zip(&strides).map(|(&(b, _), s)| b * s).sum();
        scatter(
            out.as_mut_slice(),
            self.shape(),
            &strides,
            offset,
            self.as_slice(),
        );
        Ok(out)
    }

    /// The block that [`Tensor::pad`] with `pads` padded around: `pads[d].0` elements dropped
    /// at the start of axis `d` and `pads[d].1` at its end.
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] unless there is one pair per axis that fits inside it.
    pub fn crop(&self, pads: &[(usize, usize)]) -> Result<Tensor<E>> {
        let fits = pads.len() == self.rank()
            && self
                .shape()
                .iter()
                .zip(pads)
                .all(|(&d, &(b, a))| b.checked_add(a).is_some_and(|s| s <= d));
        if !fits {
            return Err(TensorError::Invalid {
                op: "crop",
                reason: format!("pairs {pads:?} do not fit inside shape {:?}", self.shape()),
            });
        }
        let shape: Shape = self
            .shape()
            .iter()
            .zip(pads)
            .map(|(&d, &(b, a))| d - b - a)
            .collect();
        let strides = contiguous_strides(self.shape());
        let offset = pads.iter().zip(&strides).map(|(&(b, _), s)| b * s).sum();
        let data = gather(self.as_slice(), &shape, &strides, offset, "crop")?;
        Ok(Tensor::from_parts(data, shape))
    }

    /// The entries `indices` (in that order, repeats allowed) along `axis` (PyTorch's
    /// `index_select`; [`Tensor::select_rows`] is axis 0).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] for a bad axis, [`TensorError::Index`] naming the first index past
    /// the axis.
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Result<Tensor<E>> {
        check_axis("index_select", self.shape(), axis)?;
        let (outer, n, inner) = split_at_axis(self.shape(), axis);
        if let Some(&i) = indices.iter().find(|&&i| i >= n) {
            return Err(TensorError::Index {
                op: "index_select",
                index: vec![i],
                shape: self.shape().to_vec(),
            });
        }
        let mut shape = shape_of(self.shape());
        shape[axis] = indices.len();
        let count = crate::tensor::checked_numel("index_select", &shape)?;
        let mut data = crate::tensor::try_storage_with_capacity(count, "index_select", &shape)?;
        let src = self.as_slice();
        for o in 0..outer {
            for &i in indices {
                let at = (o * n + i) * inner;
                data.extend_from_slice(&src[at..at + inner]);
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    /// Adds entry `k` of `src` along `axis` onto entry `indices[k]` of this tensor for every
    /// `k` (repeats accumulate): the reverse of [`Tensor::index_select`], used by its gradient.
    ///
    /// # Errors
    ///
    /// [`TensorError::ShapeMismatch`] when `src` is not this tensor's shape with
    /// `indices.len()` entries along `axis`, [`TensorError::Index`] for an index past the axis.
    pub fn index_add(&mut self, axis: usize, indices: &[usize], src: &Tensor<E>) -> Result<()> {
        check_axis("index_add", self.shape(), axis)?;
        let mut expected = shape_of(self.shape());
        expected[axis] = indices.len();
        if src.shape() != expected.as_slice() {
            return Err(TensorError::ShapeMismatch {
                op: "index_add",
                lhs: self.shape().to_vec(),
                rhs: src.shape().to_vec(),
            });
        }
        let (outer, n, inner) = split_at_axis(self.shape(), axis);
        if let Some(&i) = indices.iter().find(|&&i| i >= n) {
            return Err(TensorError::Index {
                op: "index_add",
                index: vec![i],
                shape: self.shape().to_vec(),
            });
        }
        let m = indices.len();
        let (dst, src) = (self.as_mut_slice(), src.as_slice());
        for o in 0..outer {
            for (k, &i) in indices.iter().enumerate() {
                let (to, from) = ((o * n + i) * inner, (o * m + k) * inner);
                dst[to..to + inner]
                    .iter_mut()
                    .zip(&src[from..from + inner])
                    .for_each(|(a, &b)| *a += b);
            }
        }
        Ok(())
    }
}

/// `shape` with axes `start..=end` merged into one.
pub(crate) fn flattened_shape(shape: &[usize], start: usize, end: usize) -> Shape {
    let mut out: Shape = shape[..start].iter().copied().collect();
    out.push(shape[start..=end].iter().product());
    out.extend_from_slice(&shape[end + 1..]);
    out
}
