//! Elementwise ops: unary maps, and binary ops with NumPy broadcasting.

use smallvec::SmallVec;

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::pool;
use crate::tensor::{Shape, Storage, Tensor, collect_storage, contiguous_strides};

/// The NumPy broadcast of two shapes: axes aligned from the right, sizes equal or one of them 1.
///
/// # Errors
///
/// [`TensorError::Broadcast`] naming `op` and both shapes when some aligned axis differs and
/// neither size is 1; [`TensorError::TooLarge`] when the broadcast shape's element count
/// overflows.
pub fn broadcast_shape(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<Shape> {
    let rank = lhs.len().max(rhs.len());
    let mut out: Shape = SmallVec::from_elem(0, rank);
    // The product of the nonzero sizes, checked as `checked_numel` does, along the way.
    let mut product = Some(1usize);
    for i in 0..rank {
        let l = if i < rank - lhs.len() {
            1
        } else {
            lhs[i - (rank - lhs.len())]
        };
        let r = if i < rank - rhs.len() {
            1
        } else {
            rhs[i - (rank - rhs.len())]
        };
        out[i] = if l == r || r == 1 {
            l
        } else if l == 1 {
            r
        } else {
            return Err(TensorError::Broadcast {
                op,
                lhs: lhs.to_vec(),
                rhs: rhs.to_vec(),
            });
        };
        product = product.and_then(|p| p.checked_mul(out[i].max(1)));
    }
    if product.is_none_or(|p| p > isize::MAX as usize) {
        return Err(TensorError::TooLarge {
            op,
            shape: out.to_vec(),
        });
    }
    Ok(out)
}

/// Strides of `shape` seen as broadcast to `out` (0 on broadcast axes); `out` has the higher rank.
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Shape {
    let own = contiguous_strides(shape);
    let pad = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < pad || shape[i - pad] == 1 {
                0
            } else {
                own[i - pad]
            }
        })
        .collect()
}

/// Visits every element of the broadcast of `a` and `b` in row-major order of `out`.
#[inline]
pub(crate) fn zip_broadcast<E: Float>(
    op: &'static str,
    out: &[usize],
    a: &Tensor<E>,
    b: &Tensor<E>,
    mut f: impl FnMut(E, E) -> E,
) -> Result<Storage<E>> {
    let n = crate::tensor::checked_numel(op, out)?;
    if n == 0 {
        return Ok(Storage::new());
    }
    // The broadcast of two operands can be far larger than either: a fallible allocation.
    let mut data: Vec<E> = pool::try_take(n, op, out)?;
    let sa = broadcast_strides(&a.shape, out);
    let sb = broadcast_strides(&b.shape, out);
    let rank = out.len();
    let inner = out[rank - 1];
    let (ia, ib) = (sa[rank - 1], sb[rank - 1]);
    let outer = n / inner;
    let mut idx: Shape = SmallVec::from_elem(0, rank);
    let (ad, bd) = (a.as_slice(), b.as_slice());
    for _ in 0..outer {
        let mut oa = 0;
        let mut ob = 0;
        for d in 0..rank - 1 {
            oa += idx[d] * sa[d];
            ob += idx[d] * sb[d];
        }
        match (ia, ib) {
            (1, 1) => data.extend(
                ad[oa..oa + inner]
                    .iter()
                    .zip(&bd[ob..ob + inner])
                    .map(|(&x, &y)| f(x, y)),
            ),
            (1, 0) => {
                let y = bd[ob];
                data.extend(ad[oa..oa + inner].iter().map(|&x| f(x, y)));
            }
            (0, 1) => {
                let x = ad[oa];
                data.extend(bd[ob..ob + inner].iter().map(|&y| f(x, y)));
            }
            _ => data.extend((0..inner).map(|j| f(ad[oa + j * ia], bd[ob + j * ib]))),
        }
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < out[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(Storage::from_vec(data))
}

impl<E: Float> Tensor<E> {
    /// Applies `f` to every element.
    #[inline]
    pub fn map(&self, f: impl Fn(E) -> E) -> Tensor<E> {
        if let Some(v) = self.single() {
            // The scalar graph nodes' path: no iterator plumbing.
            let mut data = Storage::new();
            data.push(f(v));
            return Tensor::from_parts(data, crate::tensor::shape_of(&self.shape));
        }
        Tensor::from_parts(
            collect_storage(self.data.iter().map(|&v| f(v))),
            crate::tensor::shape_of(&self.shape),
        )
    }

    /// Applies an expensive `f` (exp, ln, tanh, ...) to every element, split over the worker
    /// threads (see [`crate::set_num_threads`]) when the tensor has at least
    /// `PAR_MIN_ELEMENTS` elements per thread; the same values as [`Tensor::map`] either way.
    pub(crate) fn map_par(&self, f: impl Fn(E) -> E + Sync) -> Tensor<E> {
        let n = self.len();
        if crate::workers::par_chunk_len(n, PAR_MIN_ELEMENTS) >= n {
            return self.map(f);
        }
        let src = self.as_slice();
        let fill = |start: usize, out: &mut [E]| {
            for (o, &x) in out.iter_mut().zip(&src[start..]) {
                *o = f(x);
            }
        };
        // The size is this tensor's, which is in memory already: an allocation that fails
        // here is as out of memory as `map`'s would be.
        Tensor::par_fill(self.shape(), "map", PAR_MIN_ELEMENTS, fill)
            .expect("a buffer the size of an existing tensor")
    }

    /// Applies `f` to every element in place.
    #[inline]
    pub fn map_inplace(&mut self, f: impl Fn(E) -> E) {
        self.data.iter_mut().for_each(|v| *v = f(*v));
    }

    /// [`Tensor::map_inplace`] for an expensive `f` (exp, tanh, sigmoid, ...), split over the
    /// worker threads as the elementwise ops are (from 2^13 elements per thread); the same
    /// values either way, and no buffer is taken.
    ///
    /// ```
    /// use tapegrad_tensor::{Float, Tensor};
    /// let x = Tensor::<f32>::from_fn(&[3, 50_000], |i| i as f32 * 1e-4 - 7.0);
    /// let mut y = x.clone();
    /// y.map_inplace_par(|v| v.sigmoid());
    /// assert_eq!(y, x.sigmoid());
    /// ```
    pub fn map_inplace_par(&mut self, f: impl Fn(E) -> E + Sync) {
        crate::workers::par_chunks_mut(self.as_mut_slice(), PAR_MIN_ELEMENTS, |_, part| {
            part.iter_mut().for_each(|v| *v = f(*v));
        });
    }

    /// Combines two tensors elementwise with NumPy broadcasting.
    ///
    /// # Errors
    ///
    /// [`TensorError::Broadcast`] naming `op` when the shapes do not broadcast.
    #[inline]
    pub fn zip_with(
        &self,
        other: &Tensor<E>,
        op: &'static str,
        f: impl Fn(E, E) -> E,
    ) -> Result<Tensor<E>> {
        if let (Some(a), Some(b)) = (self.single(), other.single())
            && self.rank() >= other.rank()
        {
            let mut data = Storage::new();
            data.push(f(a, b));
            let same = self.rank() == other.rank()
                && self
                    .shape
                    .iter()
                    .zip(other.shape.iter())
                    .all(|(a, b)| a == b);
            let shape = if same || other.rank() == 0 {
                crate::tensor::shape_of(&self.shape)
            } else {
                broadcast_shape(op, &self.shape, &other.shape)?
            };
            return Ok(Tensor::from_parts(data, shape));
        }
        if self.shape == other.shape {
            let data = collect_storage(self.data.iter().zip(&other.data).map(|(&a, &b)| f(a, b)));
            return Ok(Tensor::from_parts(
                data,
                crate::tensor::shape_of(&self.shape),
            ));
        }
        if other.data.len() == 1 && other.rank() <= self.rank() {
            let b = other.data[0];
            return Ok(self.map(|a| f(a, b)));
        }
        if self.data.len() == 1 && self.rank() <= other.rank() {
            let a = self.data[0];
            return Ok(other.map(|b| f(a, b)));
        }
        let out = broadcast_shape(op, &self.shape, &other.shape)?;
        let data = zip_broadcast(op, &out, self, other, f)?;
        Ok(Tensor::from_parts(data, out))
    }

    /// In place `self = f(self, other)` where `other` broadcasts to `self`'s shape.
    ///
    /// # Errors
    ///
    /// [`TensorError::Broadcast`] when `other` does not broadcast to `self`'s shape.
    pub fn zip_inplace(
        &mut self,
        other: &Tensor<E>,
        op: &'static str,
        f: impl Fn(E, E) -> E,
    ) -> Result<()> {
        if self.shape == other.shape {
            self.data
                .iter_mut()
                .zip(&other.data)
                .for_each(|(a, &b)| *a = f(*a, b));
            return Ok(());
        }
        let out = broadcast_shape(op, &self.shape, &other.shape)?;
        if out != self.shape {
            return Err(TensorError::Broadcast {
                op,
                lhs: self.shape.to_vec(),
                rhs: other.shape.to_vec(),
            });
        }
        let data = zip_broadcast(op, &out, self, other, f)?;
        let old = std::mem::replace(&mut self.data, data);
        if old.spilled() {
            pool::give(old.into_vec());
        }
        Ok(())
    }

    /// `self += other` (other broadcast to self's shape), reusing self's buffer.
    ///
    /// # Errors
    ///
    /// [`TensorError::Broadcast`] when `other` does not broadcast to `self`'s shape.
    pub fn add_assign(&mut self, other: &Tensor<E>) -> Result<()> {
        self.zip_inplace(other, "add_assign", |a, b| a + b)
    }

    /// `self += alpha * other` for tensors of the same shape (an axpy), reusing self's buffer.
    ///
    /// # Errors
    ///
    /// [`TensorError::ShapeMismatch`] when the shapes differ.
    pub fn scaled_add_assign(&mut self, alpha: E, other: &Tensor<E>) -> Result<()> {
        if self.shape != other.shape {
            return Err(TensorError::ShapeMismatch {
                op: "scaled_add_assign",
                lhs: self.shape.to_vec(),
                rhs: other.shape.to_vec(),
            });
        }
        self.data
            .iter_mut()
            .zip(&other.data)
            .for_each(|(a, &b)| *a += alpha * b);
        Ok(())
    }
}

macro_rules! binary_ops {
    ($($(#[$doc:meta])* $name:ident => |$a:ident, $b:ident| $body:expr;)*) => {
        impl<E: Float> Tensor<E> {
            $(
                $(#[$doc])*
                ///
                /// # Errors
                ///
                /// [`TensorError::Broadcast`] when the shapes do not broadcast.
                pub fn $name(&self, other: &Tensor<E>) -> Result<Tensor<E>> {
                    self.zip_with(other, stringify!($name), |$a: E, $b: E| $body)
                }
            )*
        }
    };
}

binary_ops! {
    /// Elementwise sum with broadcasting.
    add => |a, b| a + b;
    /// Elementwise difference with broadcasting.
    sub => |a, b| a - b;
    /// Elementwise product with broadcasting.
    mul => |a, b| a * b;
    /// Elementwise quotient with broadcasting.
    div => |a, b| a / b;
    /// Elementwise maximum with broadcasting.
    maximum => |a, b| a.max(b);
    /// Elementwise minimum with broadcasting.
    minimum => |a, b| a.min(b);
    /// Elementwise power `a^b` with broadcasting.
    pow => |a, b| a.powf(b);
    /// Mask: 1 where `a == b`, else 0 (with broadcasting).
    eq => |a, b| if a == b { E::ONE } else { E::ZERO };
    /// Mask: 1 where `a != b`, else 0 (with broadcasting).
    ne => |a, b| if a != b { E::ONE } else { E::ZERO };
    /// Mask: 1 where `a > b`, else 0 (with broadcasting).
    gt => |a, b| if a > b { E::ONE } else { E::ZERO };
    /// Mask: 1 where `a >= b`, else 0 (with broadcasting).
    ge => |a, b| if a >= b { E::ONE } else { E::ZERO };
    /// Mask: 1 where `a < b`, else 0 (with broadcasting).
    lt => |a, b| if a < b { E::ONE } else { E::ZERO };
    /// Mask: 1 where `a <= b`, else 0 (with broadcasting).
    le => |a, b| if a <= b { E::ONE } else { E::ZERO };
}

/// Elements per thread from which [`Tensor::map_par`] splits its work (about 25 us of `exp`; a
/// split between two large products also keeps the second core awake for the next one).
pub(crate) const PAR_MIN_ELEMENTS: usize = 1 << 13;

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident => $map:ident |$x:ident| $body:expr;)*) => {
        impl<E: Float> Tensor<E> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Tensor<E> {
                    self.$map(|$x: E| $body)
                }
            )*
        }
    };
}

unary_ops! {
    /// Elementwise negation.
    neg => map |x| -x;
    /// Elementwise e^x.
    exp => map_par |x| x.exp();
    /// Elementwise natural logarithm.
    ln => map_par |x| x.ln();
    /// Elementwise square root.
    sqrt => map |x| x.sqrt();
    /// Elementwise absolute value.
    abs => map |x| x.abs();
    /// Elementwise x^2.
    square => map |x| x * x;
    /// Elementwise 1 / x.
    recip => map |x| E::ONE / x;
    /// Elementwise logistic sigmoid, stable for large |x|.
    sigmoid => map_par |x| x.sigmoid();
    /// Elementwise hyperbolic tangent.
    tanh => map_par |x| x.tanh();
    /// Elementwise max(x, 0).
    relu => map |x| x.max(E::ZERO);
    /// Elementwise ln(1 + e^x), stable for large |x|.
    softplus => map_par |x| x.softplus();
    /// Elementwise sine.
    sin => map_par |x| x.sin();
    /// Elementwise cosine.
    cos => map_par |x| x.cos();
    /// Elementwise ln(1 + x), accurate near 0.
    log1p => map_par |x| x.ln_1p();
    /// Elementwise e^x - 1, accurate near 0.
    expm1 => map_par |x| x.exp_m1();
    /// Elementwise error function.
    erf => map_par |x| x.erf();
    /// Elementwise GELU, exact: x Phi(x).
    gelu => map_par |x| x.gelu();
    /// Elementwise GELU, tanh approximation.
    gelu_tanh => map_par |x| x.gelu_tanh();
    /// Elementwise SiLU (swish): x sigmoid(x).
    silu => map_par |x| x.silu();
}

impl<E: Float> Tensor<E> {
    /// Elementwise leaky ReLU: x for x > 0, else `slope` x.
    pub fn leaky_relu(&self, slope: E) -> Tensor<E> {
        self.map(|x| if x > E::ZERO { x } else { slope * x })
    }

    /// Elementwise ELU: x for x > 0, else `alpha` (e^x - 1).
    pub fn elu(&self, alpha: E) -> Tensor<E> {
        self.map_par(|x| if x > E::ZERO { x } else { alpha * x.exp_m1() })
    }
}

impl<E: Float> Tensor<E> {
    /// Elementwise x^p for a scalar exponent.
    pub fn powf(&self, p: E) -> Tensor<E> {
        self.map_par(|x| x.powf(p))
    }

    /// Adds a scalar to every element.
    pub fn add_scalar(&self, c: E) -> Tensor<E> {
        self.map(|x| x + c)
    }

    /// Multiplies every element by a scalar.
    pub fn mul_scalar(&self, c: E) -> Tensor<E> {
        self.map(|x| x * c)
    }

    /// Clamps every element into `[low, high]`.
    pub fn clamp(&self, low: E, high: E) -> Tensor<E> {
        self.map(|x| x.max(low).min(high))
    }

    /// Elementwise choice: `on_true` where `cond` is nonzero, else `on_false`, all three
    /// broadcast together (NumPy's `where`, PyTorch's `torch.where`).
    ///
    /// ```
    /// use tapegrad_tensor::Tensor;
    /// let cond = Tensor::<f32>::from_vec(vec![1.0, 0.0, 2.0], &[3])?;
    /// let a = Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3])?;
    /// let y = Tensor::where_cond(&cond, &a, &Tensor::scalar(-1.0))?;
    /// assert_eq!(y.to_vec(), vec![10.0, -1.0, 30.0]);
    /// # Ok::<(), tapegrad_tensor::TensorError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TensorError::Broadcast`] when the three shapes do not broadcast together, and the
    /// errors of a result too large to hold.
    pub fn where_cond(
        cond: &Tensor<E>,
        on_true: &Tensor<E>,
        on_false: &Tensor<E>,
    ) -> Result<Tensor<E>> {
        let shape = broadcast_shape("where_cond", cond.shape(), on_true.shape())?;
        let shape = broadcast_shape("where_cond", &shape, on_false.shape())?;
        let (c, t, f) = (
            cond.broadcast_to(&shape)?,
            on_true.broadcast_to(&shape)?,
            on_false.broadcast_to(&shape)?,
        );
        let (cs, ts, fs) = (c.as_slice(), t.as_slice(), f.as_slice());
        Tensor::try_from_fn(&shape, |i| if cs[i] != E::ZERO { ts[i] } else { fs[i] })
    }

    /// `value` where `mask` (broadcast to this tensor's shape) is nonzero, else this tensor's
    /// element (PyTorch's `masked_fill`).
    ///
    /// # Errors
    ///
    /// [`TensorError::Broadcast`] when `mask` does not broadcast to this tensor's shape.
    pub fn masked_fill(&self, mask: &Tensor<E>, value: E) -> Result<Tensor<E>> {
        let m = mask
            .broadcast_to(self.shape())
            .map_err(|_| TensorError::Broadcast {
                op: "masked_fill",
                lhs: self.shape().to_vec(),
                rhs: mask.shape().to_vec(),
            })?;
        let ms = m.as_slice();
        Ok(Tensor::from_fn(self.shape(), |i| {
            if ms[i] != E::ZERO {
                value
            } else {
                self.data[i]
            }
        }))
    }
}
