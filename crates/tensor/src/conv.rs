//! Convolution and pooling over NCHW images: `im2col` (patches as columns) so that a
//! convolution is one matrix product per image on matrixmultiply's kernels, `col2im` for its
//! gradient, and 2-D max and average pooling.

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::matmul::gemm_slices;
use crate::tensor::{Storage, Tensor, len_of, shape_of};

use std::mem::MaybeUninit;

/// The fewest elements written (im2col) or summed (col2im) worth a worker thread each.
const PAR_MIN_ELEMENTS: usize = 1 << 14;

/// The output size of a sliding window: `(size + 2 pad - kernel) / stride + 1`, or `None` when
/// the window does not fit.
fn out_size(size: usize, kernel: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = size.checked_add(pad.checked_mul(2)?)?;
    if kernel == 0 || stride == 0 || padded < kernel {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

/// The geometry of a 2-D sliding window over `[n, c, h, w]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    ho: usize,
    wo: usize,
}

impl Window {
    fn new(
        op: &'static str,
        shape: &[usize],
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (ph, pw): (usize, usize),
    ) -> Result<Window> {
        let [n, c, h, w] = *shape else {
            return Err(TensorError::Rank {
                op,
                expected: "an NCHW input [n, c, h, w]",
                shape: shape.to_vec(),
            });
        };
        match (out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)) {
            (Some(ho), Some(wo)) => Ok(Window {
                n,
                c,
                h,
                w,
                kh,
                kw,
                sh,
                sw,
                ph,
                pw,
                ho,
                wo,
            }),
            _ => Err(TensorError::Invalid {
                op,
                reason: format!(
                    "a {kh} x {kw} window with stride ({sh}, {sw}) and padding ({ph}, {pw}) does \
                     not fit input {shape:?} (kernel and stride must be at least 1)"
                ),
            }),
        }
    }

    /// For output row `oy` and kernel row `i`: the input row, or `None` in the padding.
    #[inline]
    fn input_row(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.sh + i)
            .checked_sub(self.ph)
            .filter(|&y| y < self.h)
    }

    /// For kernel column `j`: the output columns `lo..hi` whose input column
    /// `ox sw + j - pw` is inside the image (the others read the padding), with `lo <= hi`.
    #[inline]
    fn output_columns(&self, j: usize) -> (usize, usize) {
        let lo = self.pw.saturating_sub(j).div_ceil(self.sw);
        // `w + pw` fits: the padded width was checked when the window was made.
        let hi = (self.w + self.pw)
            .saturating_sub(j)
            .div_ceil(self.sw)
            .min(self.wo);
        (lo.min(hi), hi)
    }

    /// Line `at` of the columns (image `at / (c kh kw)`, window offset `at % (c kh kw)`), all
    /// its `ho wo` elements written: each output row's input range copied, the padding's
    /// columns and rows zero.
    fn im2col_line<E: Float>(&self, src: &[E], at: usize, line: &mut [MaybeUninit<E>]) {
        let zero = |out: &mut [MaybeUninit<E>]| {
            out.iter_mut().for_each(|o| {
                o.write(E::ZERO);
            });
        };
        let rows = self.c * self.kh * self.kw;
        let (b, row) = (at / rows, at % rows);
        let (ch, i, j) = (
            row / (self.kh * self.kw),
            row / self.kw % self.kh,
            row % self.kw,
        );
        let plane_len = self.h * self.w;
        let plane = &src[(b * self.c + ch) * plane_len..(b * self.c + ch + 1) * plane_len];
        // Output columns outside lo..hi read the padding.
        let (lo, hi) = self.output_columns(j);
        for (oy, out) in line.chunks_exact_mut(self.wo).enumerate() {
            let Some(y) = self.input_row(oy, i).filter(|_| lo < hi) else {
                zero(out);
                continue;
            };
            let pixels = &plane[y * self.w..(y + 1) * self.w];
            let x0 = lo * self.sw + j - self.pw;
            zero(&mut out[..lo]);
            if self.sw == 1 {
                // Sliced to the same length as `out[lo..hi]` (or a panic), so each is written.
                for (o, &v) in out[lo..hi].iter_mut().zip(&pixels[x0..x0 + hi - lo]) {
                    o.write(v);
                }
            } else {
                for (k, o) in out[lo..hi].iter_mut().enumerate() {
                    o.write(pixels[x0 + k * self.sw]);
                }
            }
            zero(&mut out[hi..]);
        }
    }

    /// One image's columns `[c kh kw, ho wo]` added into its `[c, h, w]` pixels, channels split
    /// over the worker threads: each pixel gets the sum over the windows that saw it, in the
    /// same order for every caller and split (kernel row, kernel column, output row, output
    /// column), so the same bits.
    fn col2im_image<E: Float>(&self, src: &[E], dst: &mut [E]) {
        let plane_len = self.h * self.w;
        let per_channel = self.kh * self.kw * self.ho * self.wo;
        if plane_len == 0 || per_channel == 0 {
            return;
        }
        let per = crate::workers::par_chunk_len(self.c, PAR_MIN_ELEMENTS.div_ceil(per_channel));
        crate::workers::par_chunks_mut_by(dst, per * plane_len, |start, part| {
            for (k, plane) in part.chunks_exact_mut(plane_len).enumerate() {
                let ch = start / plane_len + k;
                self.col2im_plane(&src[ch * per_channel..(ch + 1) * per_channel], plane);
            }
        });
    }

    /// One channel's columns `[kh kw, ho wo]` added into its `[h, w]` plane.
    fn col2im_plane<E: Float>(&self, src: &[E], plane: &mut [E]) {
        let cols = self.ho * self.wo;
        for i in 0..self.kh {
            for j in 0..self.kw {
                let line = &src[(i * self.kw + j) * cols..(i * self.kw + j + 1) * cols];
                let (lo, hi) = self.output_columns(j);
                if lo == hi {
                    continue;
                }
                // The first valid output column's input column; the others follow by sw.
                let x0 = lo * self.sw + j - self.pw;
                for oy in 0..self.ho {
                    let Some(y) = self.input_row(oy, i) else {
                        continue;
                    };
                    let out = &line[oy * self.wo + lo..oy * self.wo + hi];
                    let pixels = &mut plane[y * self.w + x0..(y + 1) * self.w];
                    if self.sw == 1 {
                        for (p, &v) in pixels.iter_mut().zip(out) {
                            *p += v;
                        }
                    } else {
                        for (p, &v) in pixels.iter_mut().step_by(self.sw).zip(out) {
                            *p += v;
                        }
                    }
                }
            }
        }
    }
}

impl<E: Float> Tensor<E> {
    /// The patches of an NCHW input as columns: `[n, c kh kw, ho wo]`, where column `(oy, ox)`
    /// of image `b` holds the `c x kh x kw` window at that output position (zeros in the
    /// padding). A convolution is then one product per image with the `[out, c kh kw]` weight.
    ///
    /// # Errors
    ///
    /// [`TensorError::Rank`] unless the input is rank 4; [`TensorError::Invalid`] when the
    /// window does not fit; the errors of a result too large to hold.
    pub fn im2col(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor<E>> {
        let g = Window::new("im2col", self.shape(), kernel, stride, padding)?;
        let rows = g.c * g.kh * g.kw;
        let cols = g.ho * g.wo;
        let shape = [g.n, rows, cols];
        let n = crate::tensor::checked_numel("im2col", &shape)?;
        if n == 0 {
            return Tensor::try_zeros(&shape);
        }
        // Every element is written once, the padding's zeros included, so the 9x larger
        // result is not zero-filled first.
        let mut buf: Vec<E> = crate::pool::try_take(n, "im2col", &shape)?;
        let dst = &mut buf.spare_capacity_mut()[..n];
        let src = self.as_slice();
        // Lines (one per image and window offset) split over the worker threads in whole lines.
        let per = crate::workers::par_chunk_len(g.n * rows, PAR_MIN_ELEMENTS.div_ceil(cols));
        crate::workers::par_chunks_mut_by(dst, per * cols, |start, part| {
            for (k, line) in part.chunks_exact_mut(cols).enumerate() {
                g.im2col_line(src, start / cols + k, line);
            }
        });
        // SAFETY: every element of the first n was written before `par_chunks_mut_by` returned:
        // the chunks are whole lines that tile them, and `im2col_line` writes its line in full
        // (a job that panics makes the call panic before this line, leaving `buf` empty).
        unsafe { buf.set_len(n) };
        Ok(Tensor::from_parts(Storage::from_vec(buf), shape_of(&shape)))
    }

    /// The reverse of [`Tensor::im2col`]: columns `[n, c kh kw, ho wo]` summed back into an
    /// NCHW tensor of `shape` (each input pixel gets the sum over the windows that saw it): the
    /// gradient of `im2col`.
    ///
    /// # Errors
    ///
    /// As [`Tensor::im2col`], and [`TensorError::ShapeMismatch`] when the columns do not have
    /// the shape `im2col` would give for `shape`.
    pub fn col2im(
        &self,
        shape: &[usize],
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor<E>> {
        let g = Window::new("col2im", shape, kernel, stride, padding)?;
        let (rows, cols) = (g.c * g.kh * g.kw, g.ho * g.wo);
        if self.shape() != [g.n, rows, cols] {
            return Err(TensorError::ShapeMismatch {
                op: "col2im",
                lhs: self.shape().to_vec(),
                rhs: vec![g.n, rows, cols],
            });
        }
        let mut out = Tensor::try_zeros(shape)?;
        let image = g.c * g.h * g.w;
        if image > 0 && rows * cols > 0 {
            for (src, dst) in self
                .as_slice()
                .chunks_exact(rows * cols)
                .zip(out.as_mut_slice().chunks_exact_mut(image))
            {
                g.col2im_image(src, dst);
            }
        }
        Ok(out)
    }

    /// 2-D convolution (cross-correlation, as PyTorch's `conv2d`) of an NCHW input with
    /// weights `[out, c, kh, kw]` and an optional bias `[out]`: `[n, out, ho, wo]`, by im2col
    /// and one product per image.
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let x = Tensor::<f64>::from_fn(&[1, 1, 3, 3], |i| i as f64);
    /// let w = Tensor::ones(&[1, 1, 2, 2]);
    /// let y = x.conv2d(&w, None, (1, 1), (0, 0))?;
    /// assert_eq!(y.shape(), &[1, 1, 2, 2]);
    /// assert_eq!(y.to_vec(), vec![8.0, 12.0, 20.0, 24.0]);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::ShapeMismatch`] when the weight's channels or the bias's length do not
    /// fit; the errors of [`Tensor::im2col`].
    pub fn conv2d(
        &self,
        weight: &Tensor<E>,
        bias: Option<&Tensor<E>>,
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor<E>> {
        Ok(self.conv2d_with_columns(weight, bias, stride, padding)?.0)
    }

    /// [`Tensor::conv2d`], also returning the im2col columns (what its gradient reads).
    ///
    /// # Errors
    ///
    /// As [`Tensor::conv2d`].
    pub fn conv2d_with_columns(
        &self,
        weight: &Tensor<E>,
        bias: Option<&Tensor<E>>,
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<(Tensor<E>, Tensor<E>)> {
        let ws = weight.shape();
        let fits = ws.len() == 4
            && self.rank() == 4
            && ws[1] == self.shape()[1]
            && bias.is_none_or(|b| b.shape() == [ws[0]]);
        if !fits {
            return Err(TensorError::ShapeMismatch {
                op: "conv2d",
                lhs: self.shape().to_vec(),
                rhs: ws.to_vec(),
            });
        }
        let (o, kh, kw) = (ws[0], ws[2], ws[3]);
        let cols = self.im2col((kh, kw), stride, padding)?;
        let g = Window::new("conv2d", self.shape(), (kh, kw), stride, padding)?;
        let (ckk, l) = (g.c * kh * kw, g.ho * g.wo);
        // [o, c kh kw] x [c kh kw, ho wo] per image, written straight into its NCHW block.
        let mut y = Tensor::try_zeros(&[g.n, o, g.ho, g.wo])?;
        let (cs, w) = (cols.as_slice(), weight.as_slice());
        for (i, out) in y
            .as_mut_slice()
            .chunks_exact_mut((o * l).max(1))
            .enumerate()
        {
            let col = &cs[i * ckk * l..(i + 1) * ckk * l];
            gemm_slices((o, ckk, l), E::ONE, w, (ckk, 1), col, (l, 1), E::ZERO, out);
            if let Some(b) = bias {
                for (plane, &bv) in out.chunks_exact_mut(l.max(1)).zip(b.as_slice()) {
                    plane.iter_mut().for_each(|v| *v += bv);
                }
            }
        }
        Ok((y, cols))
    }

    /// The gradients of [`Tensor::conv2d`] from this upstream gradient `[n, out, ho, wo]`, the
    /// input's shape, the im2col columns of the forward and the weights: `(dx, dw, db)`, each
    /// computed only where asked for. One product per image for each, the weight gradient
    /// accumulated in place across images, and col2im for the input's.
    ///
    /// # Errors
    ///
    /// [`TensorError::ShapeMismatch`] when the shapes do not belong to one convolution; the
    /// errors of [`Tensor::col2im`].
    #[allow(clippy::type_complexity)]
    pub fn conv2d_backward(
        &self,
        x_shape: &[usize],
        cols: &Tensor<E>,
        weight: &Tensor<E>,
        (stride, padding): ((usize, usize), (usize, usize)),
        (want_x, want_w, want_b): (bool, bool, bool),
    ) -> Result<(Option<Tensor<E>>, Option<Tensor<E>>, Option<Tensor<E>>)> {
        let ws = weight.shape();
        let bad = || TensorError::ShapeMismatch {
            op: "conv2d (backward)",
            lhs: self.shape().to_vec(),
            rhs: ws.to_vec(),
        };
        if ws.len() != 4 {
            return Err(bad());
        }
        let g = Window::new("conv2d", x_shape, (ws[2], ws[3]), stride, padding)?;
        let (o, ckk, l) = (ws[0], g.c * ws[2] * ws[3], g.ho * g.wo);
        if self.shape() != [g.n, o, g.ho, g.wo] || cols.shape() != [g.n, ckk, l] {
            return Err(bad());
        }
        let (gs, cs, w) = (self.as_slice(), cols.as_slice(), weight.as_slice());
        let db = want_b.then(|| {
            let mut db = vec![E::ZERO; o];
            for (p, plane) in gs.chunks_exact(l.max(1)).enumerate() {
                db[p % o] += plane.iter().copied().sum::<E>();
            }
            Tensor::from_vec(db, &[o])
        });
        let mut dw = want_w.then(|| Tensor::try_zeros(ws)).transpose()?;
        let mut dx = want_x.then(|| Tensor::try_zeros(x_shape)).transpose()?;
        // One image's input gradient as columns, reused for every image: each is summed into
        // the image's pixels (col2im) while it is still in cache, instead of all images'
        // columns (as large as the forward's) being written out and read back.
        let mut dcol = want_x.then(|| Tensor::try_zeros(&[ckk, l])).transpose()?;
        let image = g.c * g.h * g.w;
        // Image by image, so that its upstream gradient is read from cache by the second
        // product. Each image's pixels are its own, and the weight gradient accumulates over
        // the images in order: the same bits as one pass per gradient.
        for i in 0..g.n {
            let (gi, col) = (
                &gs[i * o * l..(i + 1) * o * l],
                &cs[i * ckk * l..(i + 1) * ckk * l],
            );
            if let Some(dw) = &mut dw {
                let beta = if i == 0 { E::ZERO } else { E::ONE };
                // [o, l] x [c kh kw, l]^T, accumulated over the images.
                gemm_slices(
                    (o, l, ckk),
                    E::ONE,
                    gi,
                    (l, 1),
                    col,
                    (1, l),
                    beta,
                    dw.as_mut_slice(),
                );
            }
            if let (Some(dx), Some(dcol)) = (&mut dx, &mut dcol) {
                // [o, c kh kw]^T x [o, l].
                let dcol = dcol.as_mut_slice();
                gemm_slices((ckk, o, l), E::ONE, w, (1, ckk), gi, (l, 1), E::ZERO, dcol);
                g.col2im_image(dcol, &mut dx.as_mut_slice()[i * image..(i + 1) * image]);
            }
        }
        Ok((dx, dw, db.transpose()?))
    }

    /// 2-D max pooling of an NCHW input over `kernel` windows moved by `stride` (no padding):
    /// `[n, c, ho, wo]`, and the flat input index of each window's first maximum.
    ///
    /// # Errors
    ///
    /// As [`Tensor::im2col`].
    pub fn max_pool2d_with_indices(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
    ) -> Result<(Tensor<E>, Vec<usize>)> {
        self.max_pool(kernel, stride, true)
    }

    /// Max pooling's values, and its argmax positions when `keep` (else none: what inference
    /// needs, without an index per output).
    fn max_pool(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        keep: bool,
    ) -> Result<(Tensor<E>, Vec<usize>)> {
        let g = Window::new("max_pool2d", self.shape(), kernel, stride, (0, 0))?;
        let shape = [g.n, g.c, g.ho, g.wo];
        let n = len_of(&shape);
        // The positions take twice the values' bytes (usize against f32): fallible as well.
        let mut at = Vec::new();
        if keep {
            at.try_reserve_exact(n).map_err(|_| TensorError::Alloc {
                op: "max_pool2d (positions)",
                shape: shape.to_vec(),
                bytes: n as u128 * size_of::<usize>() as u128,
            })?;
        }
        let mut values = crate::pool::try_take(n, "max_pool2d", &shape)?;
        let plane_len = g.h * g.w;
        if n > 0 {
            for (plane, image) in self.as_slice().chunks_exact(plane_len).enumerate() {
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let first = oy * g.sh * g.w + ox * g.sw;
                        let (mut best, mut top) = (first, image[first]);
                        for i in 0..g.kh {
                            let row = first + i * g.w;
                            for (j, &v) in image[row..row + g.kw].iter().enumerate() {
                                // The first maximum, as `>` finds it scanning in order, chosen
                                // without a branch: which element wins is as good as random,
                                // and a mispredicted branch per window cost more than the rest
                                // of the pooling.
                                let wins = v > top;
                                best = if wins { row + j } else { best };
                                top = if wins { v } else { top };
                            }
                        }
                        if keep {
                            at.push(plane * plane_len + best);
                        }
                        values.push(top);
                    }
                }
            }
        }
        let y = Tensor::from_vec(values, &shape)?;
        Ok((y, at))
    }

    /// 2-D max pooling (see [`Tensor::max_pool2d_with_indices`]).
    ///
    /// # Errors
    ///
    /// As [`Tensor::im2col`].
    pub fn max_pool2d(&self, kernel: (usize, usize), stride: (usize, usize)) -> Result<Tensor<E>> {
        Ok(self.max_pool(kernel, stride, false)?.0)
    }

    /// 2-D average pooling of an NCHW input over `kernel` windows moved by `stride` (no
    /// padding): `[n, c, ho, wo]`.
    ///
    /// # Errors
    ///
    /// As [`Tensor::im2col`].
    pub fn avg_pool2d(&self, kernel: (usize, usize), stride: (usize, usize)) -> Result<Tensor<E>> {
        let g = Window::new("avg_pool2d", self.shape(), kernel, stride, (0, 0))?;
        let area = E::from_usize(g.kh * g.kw);
        let src = self.as_slice();
        let shape = [g.n, g.c, g.ho, g.wo];
        Tensor::try_from_fn(&shape, |k| {
            let (plane, rest) = (k / (g.ho * g.wo), k % (g.ho * g.wo));
            let (oy, ox) = (rest / g.wo, rest % g.wo);
            let mut s = E::ZERO;
            for i in 0..g.kh {
                for j in 0..g.kw {
                    s += src[plane * g.h * g.w + (oy * g.sh + i) * g.w + ox * g.sw + j];
                }
            }
            s / area
        })
    }

    /// The gradient of [`Tensor::avg_pool2d`]: each window's upstream gradient spread evenly
    /// over its pixels, into an input of `shape`.
    ///
    /// # Errors
    ///
    /// As [`Tensor::im2col`], and [`TensorError::ShapeMismatch`] when this gradient does not
    /// have the pooled shape.
    pub fn avg_pool2d_backward(
        &self,
        shape: &[usize],
        kernel: (usize, usize),
        stride: (usize, usize),
    ) -> Result<Tensor<E>> {
        let g = Window::new("avg_pool2d", shape, kernel, stride, (0, 0))?;
        if self.shape() != [g.n, g.c, g.ho, g.wo] {
            return Err(TensorError::ShapeMismatch {
                op: "avg_pool2d",
                lhs: self.shape().to_vec(),
                rhs: vec![g.n, g.c, g.ho, g.wo],
            });
        }
        let area = E::from_usize(g.kh * g.kw);
        let mut out = Tensor::try_zeros(shape)?;
        let dst = out.as_mut_slice();
        for (k, &v) in self.as_slice().iter().enumerate() {
            let (plane, rest) = (k / (g.ho * g.wo), k % (g.ho * g.wo));
            let (oy, ox) = (rest / g.wo, rest % g.wo);
            for i in 0..g.kh {
                for j in 0..g.kw {
                    dst[plane * g.h * g.w + (oy * g.sh + i) * g.w + ox * g.sw + j] += v / area;
                }
            }
        }
        Ok(out)
    }
}
