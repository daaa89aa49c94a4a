//! Shape ops: reshape, transpose, broadcast, concat, narrow, row selection, gather, one-hot.

use smallvec::SmallVec;

use crate::elementwise::broadcast_shape;
use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::reduce::{check_axis, split_at_axis};
use crate::tensor::{
    Shape, Storage, Tensor, storage_with_capacity, try_storage_filled, try_storage_with_capacity,
};

impl<E: Float> Tensor<E> {
    /// The same elements under a new shape with the same element count.
    ///
    /// # Errors
    ///
    /// [`TensorError::TooLarge`] for a shape whose element count overflows, and
    /// [`TensorError::DataLength`] when the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor<E>> {
        let expected = crate::tensor::checked_numel("reshape", shape)?;
        if expected != self.len() {
            return Err(TensorError::DataLength {
                op: "reshape",
                len: self.len(),
                shape: shape.to_vec(),
                expected,
            });
        }
        Ok(Tensor::from_parts(
            self.data.clone(),
            crate::tensor::shape_of(shape),
        ))
    }

    /// Swaps the last two axes (a matrix transpose, batched over leading axes). Tensors of rank
    /// 0 and 1 are returned unchanged, as in PyTorch's `t()`.
    pub fn t(&self) -> Tensor<E> {
        let r = self.rank();
        if r < 2 {
            return self.clone();
        }
        let (m, n) = (self.shape[r - 2], self.shape[r - 1]);
        let batch = self.len() / (m * n).max(1);
        let mut data = storage_with_capacity(self.len());
        for b in 0..batch {
            let src = &self.data[b * m * n..(b + 1) * m * n];
            for j in 0..n {
                data.extend((0..m).map(|i| src[i * n + j]));
            }
        }
        let mut shape = crate::tensor::shape_of(&self.shape);
        shape.swap(r - 2, r - 1);
        Tensor::from_parts(data, shape)
    }

    /// Broadcasts to `shape` under NumPy rules, materializing the result.
    ///
    /// # Errors
    ///
    /// [`TensorError::Broadcast`] when this tensor's shape does not broadcast to `shape`,
    /// [`TensorError::TooLarge`] when `shape`'s element count overflows, and
    /// [`TensorError::Alloc`] naming the shape and bytes when the memory cannot be had.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor<E>> {
        let out = broadcast_shape("broadcast_to", &self.shape, shape)?;
        if out.as_slice() != shape {
            return Err(TensorError::Broadcast {
                op: "broadcast_to",
                lhs: self.shape.to_vec(),
                rhs: shape.to_vec(),
            });
        }
        // The common case (a bias row repeated for every row of a batch): copies of the whole
        // value, one after another.
        let k = shape.len() - self.rank();
        if shape[k..] == self.shape[..] {
            let (n, row) = (crate::tensor::len_of(&shape[..k]), self.as_slice());
            let data = if let [v] = row {
                try_storage_filled(*v, n, "broadcast_to", shape)?
            } else {
                let mut data = try_storage_with_capacity(n * row.len(), "broadcast_to", shape)?;
                for _ in 0..n {
                    data.extend_from_slice(row);
                }
                data
            };
            return Ok(Tensor::from_parts(data, crate::tensor::shape_of(shape)));
        }
        // Otherwise the broadcasting walk with this tensor on both sides (no zero tensor to
        // combine with).
        let data = crate::elementwise::zip_broadcast("broadcast_to", &out, self, self, |v, _| v)?;
        Ok(Tensor::from_parts(data, out))
    }

    /// Joins tensors along `axis`; all other axes must agree.
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] for an empty list, [`TensorError::Axis`] for a bad axis, and
    /// [`TensorError::ShapeMismatch`] naming the first tensor that does not fit.
    pub fn concat(tensors: &[&Tensor<E>], axis: usize) -> Result<Tensor<E>> {
        let first = tensors.first().ok_or_else(|| TensorError::Invalid {
            op: "concat",
            reason: "no tensors to concatenate".into(),
        })?;
        check_axis("concat", &first.shape, axis)?;
        let mut shape = crate::tensor::shape_of(&first.shape);
        shape[axis] = 0;
        for t in tensors {
            let fits = t.rank() == first.rank()
                && t.shape
                    .iter()
                    .zip(&first.shape)
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b);
            if !fits {
                return Err(TensorError::ShapeMismatch {
                    op: "concat",
                    lhs: first.shape.to_vec(),
                    rhs: t.shape.to_vec(),
                });
            }
            shape[axis] = shape[axis].checked_add(t.shape[axis]).ok_or_else(|| {
                let mut sizes = first.shape.to_vec();
                sizes[axis] = usize::MAX;
                TensorError::TooLarge {
                    op: "concat",
                    shape: sizes,
                }
            })?;
        }
        let n = crate::tensor::checked_numel("concat", &shape)?;
        let (outer, _, inner) = split_at_axis(&first.shape, axis);
        let mut data = try_storage_with_capacity(n, "concat", &shape)?;
        for o in 0..outer {
            for t in tensors {
                let chunk = t.shape[axis] * inner;
                data.extend_from_slice(&t.data[o * chunk..(o + 1) * chunk]);
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    /// The slice `start..start + len` along `axis`.
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] for a bad axis, [`TensorError::Index`] when the range leaves the axis.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Tensor<E>> {
        check_axis("narrow", &self.shape, axis)?;
        if start
            .checked_add(len)
            .is_none_or(|end| end > self.shape[axis])
        {
            return Err(TensorError::Index {
                op: "narrow",
                index: vec![start, start.saturating_add(len)],
                shape: self.shape.to_vec(),
            });
        }
        let (outer, n, inner) = split_at_axis(&self.shape, axis);
        let mut data = storage_with_capacity(outer * len * inner);
        for o in 0..outer {
            let base = o * n * inner;
            data.extend_from_slice(&self.data[base + start * inner..base + (start + len) * inner]);
        }
        let mut shape = crate::tensor::shape_of(&self.shape);
        shape[axis] = len;
        Ok(Tensor::from_parts(data, shape))
    }

    /// The rows (entries of axis 0) at `indices`, in that order: how mini-batches are taken.
    ///
    /// # Errors
    ///
    /// [`TensorError::Rank`] for a scalar, [`TensorError::Index`] naming the first bad index.
    pub fn select_rows(&self, indices: &[usize]) -> Result<Tensor<E>> {
        if self.rank() == 0 {
            return Err(TensorError::Rank {
                op: "select_rows",
                expected: "a tensor of rank 1 or more",
                shape: vec![],
            });
        }
        let row = self.len() / self.shape[0].max(1);
        let mut shape = crate::tensor::shape_of(&self.shape);
        shape[0] = indices.len();
        let n = crate::tensor::checked_numel("select_rows", &shape)?;
        let mut data = try_storage_with_capacity(n, "select_rows", &shape)?;
        for &i in indices {
            if i >= self.shape[0] {
                return Err(TensorError::Index {
                    op: "select_rows",
                    index: vec![i],
                    shape: self.shape.to_vec(),
                });
            }
            data.extend_from_slice(&self.data[i * row..(i + 1) * row]);
        }
        Ok(Tensor::from_parts(data, shape))
    }

    /// Adds row `r` of `src` onto row `indices[r]` of `self` for every `r` (repeated indices
    /// accumulate): the reverse of [`Tensor::select_rows`], used by its gradient.
    ///
    /// # Errors
    ///
    /// [`TensorError::ShapeMismatch`] when `src` is not `indices.len()` rows of `self`'s row
    /// shape, [`TensorError::Index`] naming the first index past the last row.
    pub fn index_add_rows(&mut self, indices: &[usize], src: &Tensor<E>) -> Result<()> {
        let fits = self.rank() >= 1
            && src.rank() == self.rank()
            && src.shape[0] == indices.len()
            && src.shape[1..] == self.shape[1..];
        if !fits {
            return Err(TensorError::ShapeMismatch {
                op: "index_add_rows",
                lhs: self.shape.to_vec(),
                rhs: src.shape.to_vec(),
            });
        }
        let row: usize = self.shape[1..].iter().product();
        for (r, &i) in indices.iter().enumerate() {
            if i >= self.shape[0] {
                return Err(TensorError::Index {
                    op: "index_add_rows",
                    index: vec![i],
                    shape: self.shape.to_vec(),
                });
            }
            let dst = &mut self.data[i * row..(i + 1) * row];
            dst.iter_mut()
                .zip(&src.data[r * row..(r + 1) * row])
                .for_each(|(a, &b)| *a += b);
        }
        Ok(())
    }

    /// Picks one element per row along the last axis: for `[n, k]` and `n` class indices, the
    /// `[n]` tensor of `self[i, indices[i]]` (the scores of the true classes).
    ///
    /// # Errors
    ///
    /// [`TensorError::Rank`] for a scalar, [`TensorError::ShapeMismatch`] when the index count is
    /// not the number of rows, [`TensorError::Index`] for an index past the last axis.
    pub fn gather(&self, indices: &[usize]) -> Result<Tensor<E>> {
        let r = self.rank();
        if r == 0 {
            return Err(TensorError::Rank {
                op: "gather",
                expected: "a tensor of rank 1 or more",
                shape: vec![],
            });
        }
        let k = self.shape[r - 1];
        let rows = crate::tensor::len_of(&self.shape[..r - 1]);
        if indices.len() != rows {
            return Err(TensorError::ShapeMismatch {
                op: "gather",
                lhs: self.shape.to_vec(),
                rhs: vec![indices.len()],
            });
        }
        let mut data = storage_with_capacity(rows);
        for (row, &c) in indices.iter().enumerate() {
            if c >= k {
                return Err(TensorError::Index {
                    op: "gather",
                    index: vec![row, c],
                    shape: self.shape.to_vec(),
                });
            }
            data.push(self.data[row * k + c]);
        }
        Ok(Tensor::from_parts(
            data,
            Shape::from_slice(&self.shape[..r - 1]),
        ))
    }

    /// One-hot rows: `[labels.len(), num_classes]` with a 1 at each label.
    ///
    /// # Errors
    ///
    /// [`TensorError::Index`] naming the first label `>= num_classes`,
    /// [`TensorError::TooLarge`] when `[labels.len(), num_classes]` overflows, and
    /// [`TensorError::Alloc`] naming the shape and bytes when the memory cannot be had.
    pub fn one_hot(labels: &[usize], num_classes: usize) -> Result<Tensor<E>> {
        let shape = [labels.len(), num_classes];
        if let Some((i, &c)) = labels.iter().enumerate().find(|&(_, &c)| c >= num_classes) {
            return Err(TensorError::Index {
                op: "one_hot",
                index: vec![i, c],
                shape: shape.to_vec(),
            });
        }
        let n = crate::tensor::checked_numel("one_hot", &shape)?;
        let mut data: Storage<E> = try_storage_filled(E::ZERO, n, "one_hot", &shape)?;
        for (i, &c) in labels.iter().enumerate() {
            if c >= num_classes {
                return Err(TensorError::Index {
                    op: "one_hot",
                    index: vec![i, c],
                    shape: vec![labels.len(), num_classes],
                });
            }
            data[i * num_classes + c] = E::ONE;
        }
        Ok(Tensor::from_parts(
            data,
            SmallVec::from_slice(&[labels.len(), num_classes]),
        ))
    }
}
