//! Reductions: whole-tensor and per-axis, and `sum_to`, the reverse of broadcasting.

use smallvec::SmallVec;

use crate::elementwise::broadcast_strides;
use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::tensor::{Shape, Storage, Tensor};

/// Splits a shape around `axis` into `(outer, size of axis, inner)` element counts.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

pub(crate) fn check_axis(op: &'static str, shape: &[usize], axis: usize) -> Result<()> {
    if axis >= shape.len() {
        return Err(TensorError::Axis {
            op,
            axis,
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Shape {
    let mut out = crate::tensor::shape_of(shape);
    if keepdim {
        out[axis] = 1;
    } else {
        out.remove(axis);
    }
    out
}

/// The sum of `v` in eight interleaved partial sums, added pairwise at the end: eight
/// independent additions per step instead of one long dependency chain, so it vectorizes (a
/// sequential float sum cannot be reordered by the compiler) and rounds no worse.
pub(crate) fn sum_slice<E: Float>(v: &[E]) -> E {
    let mut acc = [E::ZERO; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(tail) {
        *a += x;
    }
    let [a, b, c, d, e, f, g, h] = acc;
    ((a + b) + (c + d)) + ((e + f) + (g + h))
}

impl<E: Float> Tensor<E> {
    /// The sum of all elements, as a rank-0 tensor (0 for an empty tensor).
    pub fn sum(&self) -> Tensor<E> {
        Tensor::scalar(sum_slice(&self.data))
    }

    /// The mean of all elements, as a rank-0 tensor (NaN for an empty tensor, as in NumPy).
    pub fn mean(&self) -> Tensor<E> {
        let n = E::from_usize(self.len());
        Tensor::scalar(sum_slice(&self.data) / n)
    }

    fn fold_axis(
        &self,
        op: &'static str,
        axis: usize,
        keepdim: bool,
        init: E,
        f: impl Fn(E, E) -> E,
    ) -> Result<Tensor<E>> {
        check_axis(op, &self.shape, axis)?;
        let (outer, n, inner) = split_at_axis(&self.shape, axis);
        if inner == 1 {
            // The last axis: each output folds one contiguous row.
            let data = crate::tensor::collect_storage(
                self.data
                    .chunks_exact(n.max(1))
                    .take(if n == 0 { 0 } else { outer })
                    .map(|row| row.iter().fold(init, |a, &b| f(a, b))),
            );
            let data = if n == 0 {
                crate::tensor::storage_filled(init, outer)
            } else {
                data
            };
            return Ok(Tensor::from_parts(
                data,
                reduced_shape(&self.shape, axis, keepdim),
            ));
        }
        let mut data: Storage<E> = crate::tensor::storage_filled(init, outer * inner);
        for o in 0..outer {
            let out = &mut data[o * inner..(o + 1) * inner];
            for j in 0..n {
                let row = &self.data[(o * n + j) * inner..(o * n + j + 1) * inner];
                out.iter_mut().zip(row).for_each(|(a, &b)| *a = f(*a, b));
            }
        }
        Ok(Tensor::from_parts(
            data,
            reduced_shape(&self.shape, axis, keepdim),
        ))
    }

    /// Sums along `axis`; `keepdim` keeps that axis with size 1.
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`.
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor<E>> {
        self.fold_axis("sum_axis", axis, keepdim, E::ZERO, |a, b| a + b)
    }

    /// Means along `axis`; `keepdim` keeps that axis with size 1.
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`.
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor<E>> {
        check_axis("mean_axis", &self.shape, axis)?;
        let n = E::from_usize(self.shape[axis]);
        let mut t = self.fold_axis("mean_axis", axis, keepdim, E::ZERO, |a, b| a + b)?;
        t.map_inplace(|v| v / n);
        Ok(t)
    }

    /// Maxima along `axis` (negative infinity for an empty axis).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`.
    pub fn max_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor<E>> {
        self.fold_axis("max_axis", axis, keepdim, E::neg_infinity(), |a, b| {
            if b > a { b } else { a }
        })
    }

    /// The index of the first maximum along `axis`, for every other position, as plain indices in
    /// row-major order of the reduced shape.
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`; [`TensorError::Invalid`] when the axis is empty.
    pub fn argmax_indices(&self, axis: usize) -> Result<Vec<usize>> {
        check_axis("argmax_axis", &self.shape, axis)?;
        let (outer, n, inner) = split_at_axis(&self.shape, axis);
        if n == 0 {
            return Err(TensorError::Invalid {
                op: "argmax_axis",
                reason: format!("axis {axis} of shape {:?} is empty", self.shape()),
            });
        }
        let mut out = vec![0usize; outer * inner];
        for o in 0..outer {
            for i in 0..inner {
                let mut best = self.data[o * n * inner + i];
                for j in 1..n {
                    let v = self.data[(o * n + j) * inner + i];
                    if v > best {
                        best = v;
                        out[o * inner + i] = j;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The index of the first maximum along `axis`, as a tensor of (exactly representable)
    /// float indices; `keepdim` keeps that axis with size 1.
    ///
    /// # Errors
    ///
    /// As [`Tensor::argmax_indices`].
    pub fn argmax_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor<E>> {
        let idx = self.argmax_indices(axis)?;
        Ok(Tensor::from_parts(
            crate::tensor::collect_storage(idx.into_iter().map(E::from_usize)),
            reduced_shape(&self.shape, axis, keepdim),
        ))
    }

    /// Sums a (broadcast) tensor back down to `shape`, the shape of an operand it was broadcast
    /// from: the gradient of broadcasting.
    ///
    /// # Errors
    ///
    /// [`TensorError::Broadcast`] when `shape` does not broadcast to this tensor's shape.
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor<E>> {
        // [n, m] -> [m] (a bias's gradient), first and without the general checks: the same
        // fold of rows as the path below takes for it, so the same numbers.
        if let ([_, cols], [m]) = (self.shape.as_slice(), shape)
            && cols == m
            && *m > 1
        {
            let mut data: Storage<E> = crate::tensor::storage_filled(E::ZERO, *m);
            // Both as plain slices of one length: the rows' loop vectorizes and checks no
            // bounds.
            let out = data.as_mut_slice();
            for row in self.data.chunks_exact(out.len()) {
                for (a, &b) in out.iter_mut().zip(row) {
                    *a += b;
                }
            }
            return Ok(Tensor::from_parts(data, crate::tensor::shape_of(shape)));
        }
        if self.shape.as_slice() == shape {
            return Ok(self.clone());
        }
        let err = || TensorError::Broadcast {
            op: "sum_to",
            lhs: self.shape.to_vec(),
            rhs: shape.to_vec(),
        };
        if shape.len() > self.rank() {
            return Err(err());
        }
        let pad = self.rank() - shape.len();
        for (i, &d) in shape.iter().enumerate() {
            if d != 1 && d != self.shape[pad + i] {
                return Err(err());
            }
        }
        let n_out = crate::tensor::len_of(shape);
        if n_out == 1 {
            return Ok(Tensor::from_parts(
                SmallVec::from_elem(sum_slice(&self.data), 1),
                crate::tensor::shape_of(shape),
            ));
        }
        let mut data: Storage<E> = crate::tensor::storage_filled(E::ZERO, n_out);
        if self.is_empty() {
            return Ok(Tensor::from_parts(data, crate::tensor::shape_of(shape)));
        }
        // Leading axes that are reduced entirely: fold rows onto the output when the trailing
        // part matches (the common bias-gradient case [n, m] -> [m] or [1, m]).
        let trailing: usize = self.shape[pad..].iter().product();
        if trailing == n_out && shape.iter().zip(&self.shape[pad..]).all(|(a, b)| a == b) {
            for row in self.data.chunks_exact(n_out) {
                data.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
            }
            return Ok(Tensor::from_parts(data, crate::tensor::shape_of(shape)));
        }
        let strides = broadcast_strides(shape, &self.shape);
        let rank = self.rank();
        let mut idx: Shape = SmallVec::from_elem(0, rank);
        for &v in self.data.iter() {
            let off: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
            data[off] += v;
            for d in (0..rank).rev() {
                idx[d] += 1;
                if idx[d] < self.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok(Tensor::from_parts(data, crate::tensor::shape_of(shape)))
    }

    /// Softmax along `axis`: exp(x - max) / sum(exp(x - max)) (no overflow at +-1000).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`.
    pub fn softmax(&self, axis: usize) -> Result<Tensor<E>> {
        check_axis("softmax", &self.shape, axis)?;
        if axis + 1 == self.rank() {
            return self.softmax_rows(|_, _, _| {});
        }
        self.normalize_axis("softmax", axis, |shifted, sum| shifted.exp() / sum)
    }

    /// Softmax along the last axis ([`Tensor::softmax`]), calling `each_row(i, max, sum)` with
    /// row `i`'s maximum and its sum of `exp(x - max)`: what a row's log-sum-exp (`max + ln
    /// sum`) or a cross-entropy needs, without a second pass of exponentials. Rows are
    /// contiguous: one exp per element, kept and then scaled by `1 / sum`.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let z = Tensor::<f64>::from_vec(vec![0.0, 0.0, 1.0, 1.0], &[2, 2])?;
    /// let mut lse = Vec::new();
    /// let p = z.softmax_rows(|_, max, sum| lse.push(max + sum.ln()))?;
    /// assert_eq!(p, z.softmax(1)?);
    /// assert_eq!(lse, vec![2f64.ln(), 1.0 + 2f64.ln()]);
    /// assert!(Tensor::<f64>::scalar(1.0).softmax_rows(|_, _, _| {}).is_err());
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] for a rank-0 tensor, which has no axis.
    pub fn softmax_rows(&self, mut each_row: impl FnMut(usize, E, E)) -> Result<Tensor<E>> {
        let Some(&n) = self.shape.last() else {
            return Err(TensorError::Axis {
                op: "softmax",
                axis: 0,
                shape: vec![],
            });
        };
        let mut out = self.clone();
        for (i, row) in out.data.chunks_exact_mut(n.max(1)).enumerate() {
            let m = row.iter().fold(E::neg_infinity(), |a, &b| a.max(b));
            let mut s = E::ZERO;
            for v in row.iter_mut() {
                *v = (*v - m).exp();
                s += *v;
            }
            each_row(i, m, s);
            let inv = E::ONE / s;
            row.iter_mut().for_each(|v| *v *= inv);
        }
        Ok(out)
    }

    /// Log-softmax along `axis`: (x - max) - ln(sum(exp(x - max))), finite for logits of +-1000.
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`.
    pub fn log_softmax(&self, axis: usize) -> Result<Tensor<E>> {
        check_axis("log_softmax", &self.shape, axis)?;
        if axis + 1 == self.rank() {
            let n = self.shape[axis];
            let mut out = self.clone();
            for row in out.data.chunks_exact_mut(n.max(1)) {
                let m = row.iter().fold(E::neg_infinity(), |a, &b| a.max(b));
                let s: E = row.iter().map(|&v| (v - m).exp()).sum();
                let ls = s.ln();
                // (x - max) - ln s, not x - (max + ln s): exact where x is the maximum.
                row.iter_mut().for_each(|v| *v = (*v - m) - ls);
            }
            return Ok(out);
        }
        self.normalize_axis("log_softmax", axis, |shifted, sum| shifted - sum.ln())
    }

    /// Shared loop of softmax and log-softmax: `f(x - max, sum(exp(x - max)))` along `axis`.
    fn normalize_axis(
        &self,
        op: &'static str,
        axis: usize,
        f: impl Fn(E, E) -> E,
    ) -> Result<Tensor<E>> {
        check_axis(op, &self.shape, axis)?;
        let (outer, n, inner) = split_at_axis(&self.shape, axis);
        let mut out = self.clone();
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| (o * n + j) * inner + i;
                let mut m = E::neg_infinity();
                for j in 0..n {
                    m = m.max(self.data[at(j)]);
                }
                let mut s = E::ZERO;
                for j in 0..n {
                    s += (self.data[at(j)] - m).exp();
                }
                for j in 0..n {
                    out.data[at(j)] = f(self.data[at(j)] - m, s);
                }
            }
        }
        Ok(out)
    }
}

impl<E: Float> Tensor<E> {
    /// Minima along `axis` (positive infinity for an empty axis).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`.
    pub fn min_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor<E>> {
        self.fold_axis("min_axis", axis, keepdim, -E::neg_infinity(), |a, b| {
            if b < a { b } else { a }
        })
    }

    /// The index of the first minimum along `axis`, for every other position (row-major order
    /// of the reduced shape).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`; [`TensorError::Invalid`] when the axis is empty.
    pub fn argmin_indices(&self, axis: usize) -> Result<Vec<usize>> {
        self.map(|v| -v).argmax_indices(axis)
    }

    /// The largest element, as a rank-0 tensor.
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] for an empty tensor.
    pub fn max(&self) -> Result<Tensor<E>> {
        self.extreme("max", |a, b| b > a)
    }

    /// The smallest element, as a rank-0 tensor.
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] for an empty tensor.
    pub fn min(&self) -> Result<Tensor<E>> {
        self.extreme("min", |a, b| b < a)
    }

    fn extreme(&self, op: &'static str, better: impl Fn(E, E) -> bool) -> Result<Tensor<E>> {
        let (&first, rest) = self
            .data
            .split_first()
            .ok_or_else(|| TensorError::Invalid {
                op,
                reason: format!("shape {:?} has no element", self.shape()),
            })?;
        let best = rest
            .iter()
            .fold(first, |a, &b| if better(a, b) { b } else { a });
        Ok(Tensor::scalar(best))
    }

    /// ln(sum(exp(x))) along `axis`, computed stably as m + ln(sum(exp(x - m))) with m the
    /// maximum (finite for inputs of +-1000; -inf for a slice of -inf only, as PyTorch).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`.
    pub fn logsumexp(&self, axis: usize, keepdim: bool) -> Result<Tensor<E>> {
        let m = self.max_axis(axis, true)?;
        // Where the maximum is infinite, shift by 0: -inf stays -inf, +inf stays +inf.
        let shift = m.map(|v| if v.is_finite() { v } else { E::ZERO });
        let sum = self
            .sub(&shift)?
            .map_par(|v| v.exp())
            .sum_axis(axis, true)?;
        let out = sum.zip_with(&shift, "logsumexp", |s, m| m + s.ln())?;
        if keepdim { Ok(out) } else { out.squeeze(axis) }
    }

    /// The variance along `axis`: the sum of squared deviations from the mean, divided by
    /// `n - correction` (1 for the unbiased sample variance, PyTorch's default; 0 for the
    /// population variance).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`; [`TensorError::Invalid`] when the axis has
    /// no more than `correction` elements (the quotient would be infinite or NaN).
    pub fn var_axis(&self, axis: usize, keepdim: bool, correction: usize) -> Result<Tensor<E>> {
        check_axis("var_axis", &self.shape, axis)?;
        let n = self.shape[axis];
        if n <= correction {
            return Err(TensorError::Invalid {
                op: "var_axis",
                reason: format!(
                    "axis {axis} of shape {:?} has {n} elements, correction {correction} needs \
                     more",
                    self.shape()
                ),
            });
        }
        let mean = self.mean_axis(axis, true)?;
        let dev = self.sub(&mean)?;
        let ss = dev.map(|d| d * d).sum_axis(axis, keepdim)?;
        let denom = E::from_usize(n - correction);
        Ok(ss.map(|v| v / denom))
    }

    /// Running sums along `axis`: element j is the sum of elements 0 to j.
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`.
    pub fn cumsum(&self, axis: usize) -> Result<Tensor<E>> {
        self.scan_axis("cumsum", axis, false)
    }

    /// Running sums along `axis` from the end: element j is the sum of elements j to n - 1
    /// (the gradient of [`Tensor::cumsum`]).
    ///
    /// # Errors
    ///
    /// [`TensorError::Axis`] when `axis >= rank`.
    pub fn cumsum_reverse(&self, axis: usize) -> Result<Tensor<E>> {
        self.scan_axis("cumsum", axis, true)
    }

    fn scan_axis(&self, op: &'static str, axis: usize, reverse: bool) -> Result<Tensor<E>> {
        check_axis(op, &self.shape, axis)?;
        let (outer, n, inner) = split_at_axis(&self.shape, axis);
        let mut out = self.clone();
        for o in 0..outer {
            let block = &mut out.data[o * n * inner..(o + 1) * n * inner];
            for step in 1..n {
                let (j, prev) = if reverse {
                    (n - 1 - step, n - step)
                } else {
                    (step, step - 1)
                };
                for i in 0..inner {
                    let v = block[prev * inner + i];
                    block[j * inner + i] += v;
                }
            }
        }
        Ok(out)
    }

    /// The Euclidean (L2) norm of all elements, as a rank-0 tensor.
    pub fn norm(&self) -> Tensor<E> {
        Tensor::scalar(self.data.iter().map(|&v| v * v).sum::<E>().sqrt())
    }
}

impl<E: Float> Tensor<E> {
    /// Layer normalization over the last axis: each row `x` of `[..., d]` becomes
    /// `(x - mean) / sqrt(var + eps) * gamma + beta` (the population variance, as PyTorch's
    /// `layer_norm`), with `gamma` and `beta` of shape `[d]`.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 3.0], &[1, 2])?;
    /// let y = x.layer_norm(&Tensor::ones(&[2]), &Tensor::zeros(&[2]), 0.0)?;
    /// assert_eq!(y.to_vec(), vec![-1.0, 1.0]);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Invalid`] unless `self` has rank 1 or more and `gamma` and `beta` are
    /// `[d]`, or when `eps` is negative or NaN.
    pub fn layer_norm(&self, gamma: &Tensor<E>, beta: &Tensor<E>, eps: E) -> Result<Tensor<E>> {
        Ok(self.layer_norm_with_stats(gamma, beta, eps)?.0)
    }

    /// [`Tensor::layer_norm`], also returning each row's mean and 1 / sqrt(var + eps) as a
    /// `[rows, 2]` tensor (what its gradient needs).
    ///
    /// # Errors
    ///
    /// As [`Tensor::layer_norm`].
    pub fn layer_norm_with_stats(
        &self,
        gamma: &Tensor<E>,
        beta: &Tensor<E>,
        eps: E,
    ) -> Result<(Tensor<E>, Tensor<E>)> {
        let r = self.rank();
        let d = self.shape.last().copied().unwrap_or(0);
        if r == 0
            || gamma.shape() != [d]
            || beta.shape() != [d]
            || eps
                .partial_cmp(&E::ZERO)
                .is_none_or(|o| o == std::cmp::Ordering::Less)
        {
            return Err(TensorError::Invalid {
                op: "layer_norm",
                reason: format!(
                    "expected x [..., d], gamma [d], beta [d] and eps >= 0, got x {:?}, gamma \
                     {:?}, beta {:?} and eps {eps}",
                    self.shape(),
                    gamma.shape(),
                    beta.shape()
                ),
            });
        }
        let rows = self.len().checked_div(d).unwrap_or(0);
        let mut out = self.clone();
        let mut stats = Vec::with_capacity(2 * rows);
        let (g, b) = (gamma.as_slice(), beta.as_slice());
        let n = E::from_usize(d);
        for row in out.data.chunks_exact_mut(d.max(1)).take(rows) {
            let mean = row.iter().copied().sum::<E>() / n;
            let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<E>() / n;
            let rstd = E::ONE / (var + eps).sqrt();
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) * rstd * g[j] + b[j];
            }
            stats.push(mean);
            stats.push(rstd);
        }
        let stats = Tensor::from_vec(stats, &[rows, 2])?;
        Ok((out, stats))
    }
}
