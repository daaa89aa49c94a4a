//! Convolution and pooling over NCHW images: `im2col` (patches as columns) so that a
//! convolution is one matrix product per image on matrixmultiply's kernels, `col2im` for its
//! gradient, and 2-D max and average pooling.

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::matmul::gemm_slices;
use crate::tensor::{Tensor, len_of};

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

    /// For output position (oy, ox) and kernel offset (i, j): the input pixel, or `None` in the
    /// padding.
    #[inline]
    fn pixel(&self, oy: usize, ox: usize, i: usize, j: usize) -> Option<(usize, usize)> {
        let y = (oy * self.sh + i).checked_sub(self.ph)?;
        let x = (ox * self.sw + j).checked_sub(self.pw)?;
        (y < self.h && x < self.w).then_some((y, x))
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
        let mut out = Tensor::try_zeros(&shape).map_err(|_| TensorError::Alloc {
            op: "im2col",
            shape: shape.to_vec(),
            bytes: n as u128 * size_of::<E>() as u128,
        })?;
        let (src, dst) = (self.as_slice(), out.as_mut_slice());
        for b in 0..g.n {
            for ch in 0..g.c {
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        let row = (ch * g.kh + i) * g.kw + j;
                        let line = &mut dst[(b * rows + row) * cols..(b * rows + row + 1) * cols];
                        for oy in 0..g.ho {
                            for ox in 0..g.wo {
                                if let Some((y, x)) = g.pixel(oy, ox, i, j) {
                                    line[oy * g.wo + ox] =
                                        src[((b * g.c + ch) * g.h + y) * g.w + x];
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
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
        let (src, dst) = (self.as_slice(), out.as_mut_slice());
        for b in 0..g.n {
            for ch in 0..g.c {
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        let row = (ch * g.kh + i) * g.kw + j;
                        let line = &src[(b * rows + row) * cols..(b * rows + row + 1) * cols];
                        for oy in 0..g.ho {
                            for ox in 0..g.wo {
                                if let Some((y, x)) = g.pixel(oy, ox, i, j) {
                                    dst[((b * g.c + ch) * g.h + y) * g.w + x] +=
                                        line[oy * g.wo + ox];
                                }
                            }
                        }
                    }
                }
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
        let dw = if want_w {
            let mut dw = Tensor::try_zeros(ws)?;
            for i in 0..g.n {
                let (gi, col) = (
                    &gs[i * o * l..(i + 1) * o * l],
                    &cs[i * ckk * l..(i + 1) * ckk * l],
                );
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
            Some(dw)
        } else {
            None
        };
        let dx = if want_x {
            let mut dcols = Tensor::try_zeros(cols.shape())?;
            for (i, dcol) in dcols
                .as_mut_slice()
                .chunks_exact_mut((ckk * l).max(1))
                .enumerate()
            {
                let gi = &gs[i * o * l..(i + 1) * o * l];
                // [o, c kh kw]^T x [o, l].
                gemm_slices((ckk, o, l), E::ONE, w, (1, ckk), gi, (l, 1), E::ZERO, dcol);
            }
            Some(dcols.col2im(x_shape, (ws[2], ws[3]), stride, padding)?)
        } else {
            None
        };
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
        let g = Window::new("max_pool2d", self.shape(), kernel, stride, (0, 0))?;
        let shape = [g.n, g.c, g.ho, g.wo];
        let src = self.as_slice();
        let mut at = Vec::with_capacity(len_of(&shape));
        for plane in 0..g.n * g.c {
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    let mut best = plane * g.h * g.w + (oy * g.sh) * g.w + ox * g.sw;
                    for i in 0..g.kh {
                        for j in 0..g.kw {
                            let k = plane * g.h * g.w + (oy * g.sh + i) * g.w + ox * g.sw + j;
                            if src[k] > src[best] {
                                best = k;
                            }
                        }
                    }
                    at.push(best);
                }
            }
        }
        let y = Tensor::from_vec(at.iter().map(|&k| src[k]).collect(), &shape)?;
        Ok((y, at))
    }

    /// 2-D max pooling (see [`Tensor::max_pool2d_with_indices`]).
    ///
    /// # Errors
    ///
    /// As [`Tensor::im2col`].
    pub fn max_pool2d(&self, kernel: (usize, usize), stride: (usize, usize)) -> Result<Tensor<E>> {
        Ok(self.max_pool2d_with_indices(kernel, stride)?.0)
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
