//! The differentiable backward of every op: its vector-Jacobian product written with `Var` ops,
//! so that the gradient is itself a graph on the tape ([`crate::Tape::grad`]) and can be
//! differentiated again. `backward` keeps its tensor code as the fast path; this is the path
//! for derivatives of derivatives.
//!
//! Three kinds of rule:
//! - smooth ops write their derivative with `Var` ops (`exp`: `g * y`);
//! - piecewise-linear ones (relu, abs, clamp, max, the masks of maximum and where) multiply by a
//!   constant mask: their derivative is constant where it exists, so its own derivative is 0;
//! - composite ops (softmax, layer norm, the losses, gelu, average pooling) record their
//!   forward again from primitive ops and differentiate that ([`composite`]): one definition,
//!   exact to rounding;
//! - ops that route elements (convolution, max pooling, index selects) write their backward
//!   with other linear ops: correlations with a flipped kernel, one-hot products, and the
//!   internal gather and scatter by stored positions, each the other's transpose.
//!
//! Custom ops take part through [`crate::CustomOp::vjp`]; one without it is named in a
//! [`AutodiffError::NotTwiceDifferentiable`].

use smallvec::SmallVec;
use tapegrad_tensor::{Float, Tensor};

use super::Op;
use super::linear::Act;
use crate::error::{AutodiffError, Result};
use crate::tape::Tape;
use crate::var::Var;

/// One contribution per input: `None` where the input does not need one.
pub(crate) type Contribs<'t, E> = SmallVec<[Option<Var<'t, E>>; 3]>;

/// What a vector-Jacobian product reads: the node, its inputs, which of them want a
/// contribution, and the upstream gradient as a `Var`.
pub(crate) struct VjpCtx<'t, E: Float> {
    pub(crate) tape: &'t Tape<E>,
    pub(crate) id: usize,
    pub(crate) inputs: SmallVec<[u32; 4]>,
    pub(crate) wants: SmallVec<[bool; 4]>,
    pub(crate) g: Var<'t, E>,
}

impl<'t, E: Float> VjpCtx<'t, E> {
    fn x(&self, k: usize) -> Var<'t, E> {
        Var::at(self.tape, self.inputs[k])
    }

    fn y(&self) -> Var<'t, E> {
        Var::at(self.tape, self.id as u32)
    }

    fn xv(&self, k: usize) -> Tensor<E> {
        self.tape
            .store()
            .value(self.inputs[k] as usize)
            .into_owned()
    }

    fn yv(&self) -> Tensor<E> {
        self.tape.store().value(self.id).into_owned()
    }

    fn saved(&self) -> Tensor<E> {
        let store = self.tape.store();
        let i = store
            .saved
            .binary_search_by_key(&(self.id as u32), |(id, _)| *id)
            .expect("internal invariant: this op saves a tensor in its forward");
        store.saved[i].1.clone()
    }

    fn indices(&self, start: u32, len: u32) -> Vec<usize> {
        self.tape.store().indices[start as usize..(start + len) as usize].to_vec()
    }

    fn c(&self, t: Tensor<E>) -> Var<'t, E> {
        self.tape.constant(t)
    }

    /// Input 0's contribution from `f`, if wanted.
    fn unary(&self, f: impl FnOnce() -> Result<Var<'t, E>>) -> Result<Contribs<'t, E>> {
        Ok(SmallVec::from_iter([if self.wants[0] {
            Some(f()?)
        } else {
            None
        }]))
    }

    /// `g` times a constant factor computed per element from (x, y): for piecewise-linear
    /// ops, whose derivative has derivative 0.
    fn masked(&self, f: impl Fn(E, E) -> E) -> Result<Contribs<'t, E>> {
        self.unary(|| {
            let (x, y) = (self.xv(0), self.yv());
            let (xs, ys) = (x.as_slice(), y.as_slice());
            let m = Tensor::from_fn(x.shape(), |i| f(xs[i], ys[i]));
            self.g.mul(self.c(m))
        })
    }

    /// Contributions for a binary op, each reduced to its input's shape.
    fn binary(
        &self,
        fa: impl FnOnce() -> Result<Var<'t, E>>,
        fb: impl FnOnce() -> Result<Var<'t, E>>,
    ) -> Result<Contribs<'t, E>> {
        let a = if self.wants[0] {
            Some(reduce_to(fa()?, &self.x(0).shape())?)
        } else {
            None
        };
        let b = if self.wants[1] {
            Some(reduce_to(fb()?, &self.x(1).shape())?)
        } else {
            None
        };
        Ok(SmallVec::from_iter([a, b]))
    }
}

/// Sums `v` down to `shape` (the inverse of broadcasting): leading axes away, then every axis
/// where `shape` has 1.
pub(crate) fn reduce_to<'t, E: Float>(v: Var<'t, E>, shape: &[usize]) -> Result<Var<'t, E>> {
    let vs = v.shape();
    if vs.as_slice() == shape {
        return Ok(v);
    }
    let mut r = v;
    for _ in 0..vs.len().saturating_sub(shape.len()) {
        r = r.sum_axis(0, false)?;
    }
    for (a, &d) in shape.iter().enumerate() {
        if d == 1 && r.shape()[a] != 1 {
            r = r.sum_axis(a, true)?;
        }
    }
    if r.shape().as_slice() != shape {
        r = r.reshape(shape)?;
    }
    Ok(r)
}

/// The contributions of a composite op: its forward recorded again from primitive ops by `f`
/// on the node's inputs, differentiated by the differentiable path with `g` as the upstream
/// gradient.
fn composite<'t, E: Float>(
    ctx: &VjpCtx<'t, E>,
    f: impl FnOnce(&[Var<'t, E>]) -> Result<Var<'t, E>>,
) -> Result<Contribs<'t, E>> {
    let inputs: SmallVec<[Var<'t, E>; 4]> = (0..ctx.inputs.len()).map(|k| ctx.x(k)).collect();
    let floor = ctx.tape.len();
    let y = f(&inputs)?;
    let wanted: SmallVec<[Var<'t, E>; 4]> = inputs
        .iter()
        .zip(&ctx.wants)
        .filter(|&(_, &w)| w)
        .map(|(v, _)| *v)
        .collect();
    let mut got = crate::higher::grad_from(ctx.tape, y, ctx.g, &wanted, floor)?.into_iter();
    Ok(ctx
        .wants
        .iter()
        .map(|&w| if w { got.next().flatten() } else { None })
        .collect())
}

/// `inv[axes[i]] = i`.
fn inverse(axes: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; axes.len()];
    for (i, &a) in axes.iter().enumerate() {
        inv[a] = i;
    }
    inv
}

/// The one-hot matrix `[rows.len(), n]` with a 1 at `(i, rows[i])`.
fn one_hot<E: Float>(rows: &[usize], n: usize) -> Tensor<E> {
    let mut t = Tensor::zeros(&[rows.len(), n]);
    for (i, &r) in rows.iter().enumerate() {
        t.as_mut_slice()[i * n + r] = E::ONE;
    }
    t
}

/// `g` with the reduced axis put back (when `keepdim` was false), broadcast to `shape`.
fn expand<'t, E: Float>(
    g: Var<'t, E>,
    axis: usize,
    keepdim: bool,
    shape: &[usize],
) -> Result<Var<'t, E>> {
    let g = if keepdim { g } else { g.unsqueeze(axis)? };
    g.broadcast_to(shape)
}

/// The differentiable backward of node `ctx.id`, whose op is `op`.
pub(crate) fn vjp<'t, E: Float>(op: &Op<E>, ctx: &VjpCtx<'t, E>) -> Result<Contribs<'t, E>> {
    let g = ctx.g;
    let two = E::ONE + E::ONE;
    match *op {
        Op::Leaf | Op::Constant | Op::Detach => Ok(SmallVec::new()),
        Op::Add => ctx.binary(|| Ok(g), || Ok(g)),
        Op::Sub => ctx.binary(|| Ok(g), || Ok(g.neg())),
        Op::Mul => ctx.binary(|| g.mul(ctx.x(1)), || g.mul(ctx.x(0))),
        Op::Div => ctx.binary(
            || g.div(ctx.x(1)),
            || Ok(g.mul(ctx.x(0))?.div(ctx.x(1).square())?.neg()),
        ),
        Op::Neg => ctx.unary(|| Ok(g.neg())),
        Op::Affine { scale, .. } => ctx.unary(|| Ok(g.mul_scalar(scale))),
        Op::ScalarDiv(_) => ctx.unary(|| Ok(g.mul(ctx.y())?.div(ctx.x(0))?.neg())),
        Op::PowF(p) => ctx.unary(|| {
            if p == E::ZERO {
                Ok(g.mul_scalar(E::ZERO))
            } else {
                g.mul(ctx.x(0).powf(p - E::ONE).mul_scalar(p))
            }
        }),
        Op::Square => ctx.unary(|| g.mul(ctx.x(0).mul_scalar(two))),
        Op::Exp => ctx.unary(|| g.mul(ctx.y())),
        Op::Ln => ctx.unary(|| g.div(ctx.x(0))),
        Op::Sqrt => ctx.unary(|| g.div(ctx.y().mul_scalar(two))),
        Op::Abs => ctx.masked(|x, y| super::abs::derivative(E::ONE, x, y)),
        Op::Sigmoid => ctx.unary(|| {
            let y = ctx.y();
            g.mul(y.mul(y.affine(-E::ONE, E::ONE))?)
        }),
        Op::Tanh => ctx.unary(|| g.mul(ctx.y().square().affine(-E::ONE, E::ONE))),
        Op::Relu => ctx.masked(|x, y| super::relu::derivative(E::ONE, x, y)),
        Op::Softplus => ctx.unary(|| g.mul(ctx.x(0).sigmoid())),
        Op::Maximum | Op::Minimum => {
            let (a, b) = (ctx.xv(0), ctx.xv(1));
            let shape = ctx.yv().shape().to_vec();
            let (a, b) = (a.broadcast_to(&shape)?, b.broadcast_to(&shape)?);
            let d = |k: usize| {
                Tensor::from_fn(&shape, |i| {
                    let (x, z) = (a.as_slice()[i], b.as_slice()[i]);
                    let ds = if matches!(op, Op::Maximum) {
                        super::maximum::derivatives(E::ONE, x, z, E::ZERO)
                    } else {
                        super::minimum::derivatives(E::ONE, x, z, E::ZERO)
                    };
                    ds[k]
                })
            };
            ctx.binary(|| g.mul(ctx.c(d(0))), || g.mul(ctx.c(d(1))))
        }
        Op::Pow => ctx.binary(
            || {
                let (a, b) = (ctx.x(0), ctx.x(1));
                g.mul(b.mul(a.pow(b.add_scalar(-E::ONE))?)?)
            },
            || g.mul(ctx.y().mul(ctx.x(0).ln())?),
        ),
        Op::Clamp { lo, hi } => ctx.masked(|x, _| super::clamp::derivative(E::ONE, x, lo, hi)),
        Op::WhereCond => {
            let shape = ctx.yv().shape().to_vec();
            let cond = ctx.saved().broadcast_to(&shape)?;
            let on = cond.map(|c| if c != E::ZERO { E::ONE } else { E::ZERO });
            let off = on.map(|c| E::ONE - c);
            ctx.binary(|| g.mul(ctx.c(on)), || g.mul(ctx.c(off)))
        }
        Op::MaskedFill(_) => ctx.unary(|| {
            let shape = ctx.yv().shape().to_vec();
            let mask = ctx.saved().broadcast_to(&shape)?;
            g.mul(ctx.c(mask.map(|m| if m != E::ZERO { E::ZERO } else { E::ONE })))
        }),
        Op::Recip => ctx.unary(|| Ok(g.mul(ctx.y().square())?.neg())),
        Op::Sin => ctx.unary(|| g.mul(ctx.x(0).cos())),
        Op::Cos => ctx.unary(|| Ok(g.mul(ctx.x(0).sin())?.neg())),
        Op::Log1p => ctx.unary(|| g.div(ctx.x(0).add_scalar(E::ONE))),
        Op::Expm1 => ctx.unary(|| g.mul(ctx.y().add_scalar(E::ONE))),
        Op::Erf => ctx.unary(|| {
            let k = E::from_f64(2.0 / std::f64::consts::PI.sqrt());
            g.mul(ctx.x(0).square().neg().exp().mul_scalar(k))
        }),
        Op::Gelu => composite(ctx, |v| {
            let x = v[0];
            let k = E::from_f64(std::f64::consts::FRAC_1_SQRT_2);
            x.mul(
                x.mul_scalar(k)
                    .erf()
                    .affine(E::from_f64(0.5), E::from_f64(0.5)),
            )
        }),
        Op::GeluTanh => composite(ctx, |v| {
            let x = v[0];
            let c = E::from_f64((2.0 / std::f64::consts::PI).sqrt());
            let inner = x.add(x.powf(E::from_f64(3.0)).mul_scalar(E::from_f64(0.044715)))?;
            x.mul(
                inner
                    .mul_scalar(c)
                    .tanh()
                    .affine(E::from_f64(0.5), E::from_f64(0.5)),
            )
        }),
        Op::Silu => composite(ctx, |v| v[0].mul(v[0].sigmoid())),
        Op::LeakyRelu(p) => ctx.masked(|x, y| super::leaky_relu::derivative(E::ONE, x, y, p)),
        Op::Elu(alpha) => ctx.unary(|| {
            // 1 where x > 0, else y + alpha (= alpha e^x), which is differentiable.
            let x = ctx.xv(0);
            let pos = x.map(|v| if v > E::ZERO { E::ONE } else { E::ZERO });
            let neg = pos.map(|p| E::ONE - p);
            let slope = ctx.y().add_scalar(alpha).mul(ctx.c(neg))?.add(ctx.c(pos))?;
            g.mul(slope)
        }),
        Op::MatMul => matmul_vjp(ctx, false),
        Op::MatMulT => matmul_vjp(ctx, true),
        Op::Linear => linear_vjp(ctx, g),
        Op::LinearAct(act) => {
            // The pre-activation's gradient as the activation's own rule writes it.
            let y = ctx.y();
            let gz = match act {
                Act::Sigmoid => g.mul(y.mul(y.affine(-E::ONE, E::ONE))?)?,
                Act::Tanh => g.mul(y.square().affine(-E::ONE, E::ONE))?,
                // relu's mask from the output: relu(x) > 0 exactly when x > 0.
                Act::Relu => {
                    let m = ctx.yv().map(|y| if y > E::ZERO { E::ONE } else { E::ZERO });
                    g.mul(ctx.c(m))?
                }
            };
            linear_vjp(ctx, gz)
        }
        Op::Transpose => ctx.unary(|| Ok(g.t())),
        Op::Permute { start, len } => ctx.unary(|| g.permute(&inverse(&ctx.indices(start, len)))),
        Op::TransposeAxes { a, b } => ctx.unary(|| g.transpose(a as usize, b as usize)),
        Op::Stack { axis } => {
            let axis = axis as usize;
            (0..ctx.inputs.len())
                .map(|k| {
                    if ctx.wants[k] {
                        Ok(Some(g.narrow(axis, k, 1)?.squeeze(axis)?))
                    } else {
                        Ok(None)
                    }
                })
                .collect()
        }
        Op::Pad { start, len, .. } => ctx.unary(|| {
            let flat = ctx.indices(start, len);
            let shape = ctx.x(0).shape();
            let mut r = g;
            for (axis, p) in flat.chunks_exact(2).enumerate() {
                if p[0] != 0 || p[1] != 0 {
                    r = r.narrow(axis, p[0], shape[axis])?;
                }
            }
            Ok(r)
        }),
        Op::IndexSelect { axis, start, len } => ctx.unary(|| {
            // The gradient scatters back through a one-hot matrix: a linear map, so it is
            // differentiable again (its transpose gathers).
            let axis = axis as usize;
            let shape = ctx.x(0).shape();
            let last = shape.len() - 1;
            let p = ctx.c(one_hot(&ctx.indices(start, len), shape[axis]));
            if axis == last {
                g.matmul(p)
            } else {
                g.transpose(axis, last)?.matmul(p)?.transpose(axis, last)
            }
        }),
        Op::Reshape => ctx.unary(|| g.reshape(&ctx.x(0).shape())),
        Op::BroadcastTo => ctx.unary(|| reduce_to(g, &ctx.x(0).shape())),
        Op::Concat { axis } => {
            let axis = axis as usize;
            let mut offset = 0;
            (0..ctx.inputs.len())
                .map(|k| {
                    let n = ctx.x(k).shape()[axis];
                    let part = if ctx.wants[k] {
                        Some(g.narrow(axis, offset, n)?)
                    } else {
                        None
                    };
                    offset += n;
                    Ok(part)
                })
                .collect()
        }
        Op::Narrow { axis, start } => ctx.unary(|| {
            let (axis, start) = (axis as usize, start as usize);
            let shape = ctx.x(0).shape();
            let len = ctx.y().shape()[axis];
            let mut pads = vec![(0, 0); shape.len()];
            pads[axis] = (start, shape[axis] - start - len);
            g.pad(&pads, E::ZERO)
        }),
        Op::SelectRows { start, len } => ctx.unary(|| {
            let shape = ctx.x(0).shape();
            let n = shape[0];
            let rest: usize = shape[1..].iter().product();
            let pt = ctx.c(one_hot::<E>(&ctx.indices(start, len), n).t());
            pt.matmul(g.reshape(&[len as usize, rest])?)?
                .reshape(&shape)
        }),
        Op::Sum => ctx.unary(|| g.broadcast_to(&ctx.x(0).shape())),
        Op::Mean => ctx.unary(|| {
            let shape = ctx.x(0).shape();
            let n = shape.iter().product::<usize>().max(1);
            g.mul_scalar(E::ONE / E::from_usize(n)).broadcast_to(&shape)
        }),
        Op::SumAxis { axis, keepdim } => {
            ctx.unary(|| expand(g, axis as usize, keepdim, &ctx.x(0).shape()))
        }
        Op::MeanAxis { axis, keepdim } => ctx.unary(|| {
            let shape = ctx.x(0).shape();
            let n = E::from_usize(shape[axis as usize]);
            expand(g.mul_scalar(E::ONE / n), axis as usize, keepdim, &shape)
        }),
        Op::MaxAxis {
            axis,
            keepdim,
            start,
            len,
        }
        | Op::MinAxis {
            axis,
            keepdim,
            start,
            len,
        } => ctx.unary(|| {
            let axis = axis as usize;
            let shape = ctx.x(0).shape();
            let picked = ctx.indices(start, len);
            let (n, inner) = (shape[axis], shape[axis + 1..].iter().product::<usize>());
            let mut mask = Tensor::zeros(&shape);
            for (r, &j) in picked.iter().enumerate() {
                let (o, i) = (r / inner.max(1), r % inner.max(1));
                mask.as_mut_slice()[(o * n + j) * inner + i] = E::ONE;
            }
            expand(g, axis, keepdim, &shape)?.mul(ctx.c(mask))
        }),
        Op::Max | Op::Min => ctx.unary(|| {
            let (x, y) = (ctx.xv(0), ctx.yv().as_slice()[0]);
            let ties = x.as_slice().iter().filter(|&&v| v == y).count().max(1);
            let share = E::ONE / E::from_usize(ties);
            let mask = x.map(|v| if v == y { share } else { E::ZERO });
            g.broadcast_to(x.shape())?.mul(ctx.c(mask))
        }),
        Op::Logsumexp { axis, keepdim } => ctx.unary(|| {
            let axis = axis as usize;
            let x = ctx.x(0);
            let shape = x.shape();
            let y = expand(ctx.y(), axis, keepdim, &shape)?;
            expand(g, axis, keepdim, &shape)?.mul(x.sub(y)?.exp())
        }),
        Op::VarAxis {
            axis,
            keepdim,
            correction,
        } => ctx.unary(|| {
            let axis = axis as usize;
            let x = ctx.x(0);
            let shape = x.shape();
            let scale = two / E::from_usize(shape[axis] - correction as usize);
            let centred = x.sub(x.mean_axis(axis, true)?)?;
            expand(g, axis, keepdim, &shape)?.mul(centred.mul_scalar(scale))
        }),
        Op::Cumsum { axis } => ctx.unary(|| {
            // The reverse cumulative sum: the total, less what came before.
            let axis = axis as usize;
            let shape = ctx.x(0).shape();
            let total = g.sum_axis(axis, true)?.broadcast_to(&shape)?;
            total.sub(g.cumsum(axis)?)?.add(g)
        }),
        Op::Norm => ctx.unary(|| {
            if ctx.yv().as_slice()[0] == E::ZERO {
                return Ok(g.broadcast_to(&ctx.x(0).shape())?.mul_scalar(E::ZERO));
            }
            g.mul(ctx.x(0).div(ctx.y())?)
        }),
        Op::LayerNorm { eps } => composite(ctx, |v| {
            let (x, gamma, beta) = (v[0], v[1], v[2]);
            let last = x.shape().len() - 1;
            let centred = x.sub(x.mean_axis(last, true)?)?;
            let var = centred.square().mean_axis(last, true)?;
            let rstd = var.add_scalar(eps).sqrt().recip();
            centred.mul(rstd)?.mul(gamma)?.add(beta)
        }),
        Op::Dropout => ctx.unary(|| g.mul(ctx.c(ctx.saved()))),
        Op::Conv2d { start } => conv2d_vjp(ctx, &ctx.indices(start, 4)),
        Op::MaxPool2d { start, len, .. } => ctx.unary(|| {
            // The gradient goes to each window's maximum: a scatter by the stored positions.
            let shape = ctx.x(0).shape();
            let n = shape.iter().product();
            g.reshape(&[len as usize])?
                .scatter_flat(start, len, n)?
                .reshape(&shape)
        }),
        Op::AvgPool2d { start } => {
            // Each channel convolved with a constant kernel of 1 / (kh kw).
            let p = ctx.indices(start, 4);
            let (kernel, stride) = ((p[0], p[1]), (p[2], p[3]));
            let shape = ctx.x(0).shape();
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
            let k = ctx.c(Tensor::full(
                &[1, 1, kernel.0, kernel.1],
                E::ONE / E::from_usize(kernel.0 * kernel.1),
            ));
            composite(ctx, move |v| {
                let y = v[0]
                    .reshape(&[n * c, 1, h, w])?
                    .conv2d(k, None, stride, (0, 0))?;
                let (ho, wo) = (y.shape()[2], y.shape()[3]);
                y.reshape(&[n, c, ho, wo])
            })
        }
        Op::Softmax { axis } => composite(ctx, |v| {
            let axis = axis as usize;
            let shift = v[0].detach().max_axis(axis, true)?;
            let e = v[0].sub(shift)?.exp();
            e.div(e.sum_axis(axis, true)?)
        }),
        Op::LogSoftmax { axis } => composite(ctx, |v| log_softmax(v[0], axis as usize)),
        Op::Mse => composite(ctx, |v| Ok(v[0].sub(v[1])?.square().mean())),
        Op::BceWithLogits => composite(ctx, |v| {
            let (z, t) = (v[0], v[1]);
            Ok(z.softplus().sub(z.mul(t)?)?.mean())
        }),
        Op::SoftmaxCrossEntropy { start, len } => {
            let labels = ctx.indices(start, len);
            let k = ctx.x(0).shape()[1];
            let picks = ctx.c(one_hot(&labels, k));
            let n = E::from_usize(labels.len());
            composite(ctx, move |v| {
                let picked = log_softmax(v[0], 1)?.mul(picks)?.sum();
                Ok(picked.mul_scalar(-E::ONE / n))
            })
        }
        Op::GatherFlat { start, len } => ctx.unary(|| {
            let shape = ctx.x(0).shape();
            g.scatter_flat(start, len, shape.iter().product())?
                .reshape(&shape)
        }),
        Op::ScatterFlat { start, len, .. } => ctx.unary(|| {
            let shape = ctx.x(0).shape();
            g.gather_flat(start, len)?.reshape(&shape)
        }),
        Op::Custom { index } => {
            let op = std::sync::Arc::clone(&ctx.tape.store().customs[index as usize]);
            let inputs: Vec<Var<'t, E>> = (0..ctx.inputs.len()).map(|k| ctx.x(k)).collect();
            match op.vjp(&inputs, ctx.y(), g) {
                None => Err(AutodiffError::NotTwiceDifferentiable {
                    op: op.name().to_string(),
                }),
                Some(got) => {
                    let got = got?;
                    if got.len() != inputs.len() {
                        return Err(AutodiffError::Custom {
                            op: op.name().to_string(),
                            reason: format!(
                                "vjp returned {} gradients for {} inputs",
                                got.len(),
                                inputs.len()
                            ),
                        });
                    }
                    got.into_iter()
                        .zip(&inputs)
                        .zip(&ctx.wants)
                        .map(|((c, x), &w)| match c {
                            Some(c) if w => {
                                if c.shape() != x.shape() {
                                    return Err(AutodiffError::Custom {
                                        op: op.name().to_string(),
                                        reason: format!(
                                            "vjp gave shape {:?} for an input of shape {:?}",
                                            c.shape().as_slice(),
                                            x.shape().as_slice()
                                        ),
                                    });
                                }
                                Ok(Some(c))
                            }
                            _ => Ok(None),
                        })
                        .collect()
                }
            }
        }
    }
}

/// `x - m - ln(sum(exp(x - m)))` along `axis`, with the shift `m` (the row maximum) a constant.
fn log_softmax<'t, E: Float>(x: Var<'t, E>, axis: usize) -> Result<Var<'t, E>> {
    let shifted = x.sub(x.detach().max_axis(axis, true)?)?;
    shifted.sub(shifted.exp().sum_axis(axis, true)?.ln())
}

/// `C = A B` (or `A B^T` when `transposed`, B being the node's second input), with `torch.matmul`'s
/// rank-1 and batch rules: both operands are made at least rank 2, the gradient is reshaped to
/// match, and each contribution is summed back over broadcast batch axes.
fn matmul_vjp<'t, E: Float>(ctx: &VjpCtx<'t, E>, transposed: bool) -> Result<Contribs<'t, E>> {
    let (a, b) = (ctx.x(0), ctx.x(1));
    let (sa, sb) = (a.shape(), b.shape());
    let a2 = if sa.len() == 1 { a.unsqueeze(0)? } else { a };
    // The right operand as the product reads it: B, or B^T.
    let b2 = if transposed {
        let r = sb.len();
        b.transpose(r - 2, r - 1)?
    } else if sb.len() == 1 {
        b.unsqueeze(1)?
    } else {
        b
    };
    let mut y2: Vec<usize> = ctx.y().shape().to_vec();
    if !transposed && sb.len() == 1 {
        y2.push(1);
    }
    if sa.len() == 1 {
        let at = y2.len() - 1;
        y2.insert(at, 1);
    }
    let g2 = ctx.g.reshape(&y2)?;
    let swap = |v: Var<'t, E>| -> Result<Var<'t, E>> {
        let r = v.shape().len();
        v.transpose(r - 2, r - 1)
    };
    let da = if ctx.wants[0] {
        let d = g2.matmul(swap(b2)?)?;
        Some(reduce_to(d, &a2.shape())?.reshape(&sa)?)
    } else {
        None
    };
    let db = if ctx.wants[1] {
        let d = swap(a2)?.matmul(g2)?; // the gradient of B as read: B^T when transposed
        let d = reduce_to(d, &b2.shape())?;
        Some(if transposed {
            swap(d)?
        } else {
            d.reshape(&sb)?
        })
    } else {
        None
    };
    Ok(SmallVec::from_iter([da, db]))
}

/// A matrix `[out, inp]` with a 1 at `(i * stride + a, i)` for `a < width`: multiplying by it
/// spreads each of `inp` entries over `width` places `stride` apart (width 1: the zeros a
/// strided convolution skips).
fn spread<E: Float>(out: usize, inp: usize, stride: usize, width: usize) -> Tensor<E> {
    let mut t = Tensor::zeros(&[out, inp]);
    for i in 0..inp {
        for a in 0..width {
            let r = i * stride + a;
            if r < out {
                t.as_mut_slice()[r * inp + i] = E::ONE;
            }
        }
    }
    t
}

/// conv2d's backward with conv2d and matmul: the upstream gradient dilated by the stride,
/// padded, and convolved with the flipped, transposed kernel gives the input's gradient; the
/// padded input, batch and channels swapped, convolved with the dilated gradient gives the
/// kernel's.
fn conv2d_vjp<'t, E: Float>(ctx: &VjpCtx<'t, E>, p: &[usize]) -> Result<Contribs<'t, E>> {
    let (sh, sw, ph, pw) = (p[0], p[1], p[2], p[3]);
    let (x, w) = (ctx.x(0), ctx.x(1));
    let (xs, ws, gs) = (x.shape(), w.shape(), ctx.g.shape());
    let (h, wd) = (xs[2], xs[3]);
    let (kh, kw) = (ws[2], ws[3]);
    let (ho, wo) = (gs[2], gs[3]);
    let (hp, wp) = (h + 2 * ph, wd + 2 * pw);
    // The gradient dilated to the stride-1 output size: [n, o, hd, wd].
    let (hd, wdd) = ((ho - 1) * sh + 1, (wo - 1) * sw + 1);
    let g = ctx.g;
    let gd = if sh == 1 && sw == 1 {
        g
    } else {
        let uh = ctx.c(spread(hd, ho, sh, 1));
        let uw = ctx.c(spread::<E>(wdd, wo, sw, 1).t());
        uh.matmul(g)?.matmul(uw)?
    };
    let dx = if ctx.wants[0] {
        // Full correlation of the dilated gradient with the flipped kernel, over the padded
        // input; rows and columns a stride skipped at the end get zeros; then the padding is
        // cut away.
        let flip_h: Vec<usize> = (0..kh).rev().collect();
        let flip_w: Vec<usize> = (0..kw).rev().collect();
        let wf = w
            .index_select(2, &flip_h)?
            .index_select(3, &flip_w)?
            .transpose(0, 1)?;
        let full = gd
            .pad(
                &[
                    (0, 0),
                    (0, 0),
                    (kh - 1, kh - 1 + hp - kh + 1 - hd),
                    (kw - 1, kw - 1 + wp - kw + 1 - wdd),
                ],
                E::ZERO,
            )?
            .conv2d(wf, None, (1, 1), (0, 0))?; // [n, c, hp, wp]
        Some(full.narrow(2, ph, h)?.narrow(3, pw, wd)?)
    } else {
        None
    };
    let dw = if ctx.wants[1] {
        let xp = x.pad(&[(0, 0), (0, 0), (ph, ph), (pw, pw)], E::ZERO)?;
        let corr = xp
            .transpose(0, 1)?
            .conv2d(gd.transpose(0, 1)?, None, (1, 1), (0, 0))?; // [c, o, hp - hd + 1, ...]
        Some(corr.narrow(2, 0, kh)?.narrow(3, 0, kw)?.transpose(0, 1)?)
    } else {
        None
    };
    let db = if ctx.inputs.len() > 2 && ctx.wants[2] {
        Some(
            g.sum_axis(3, false)?
                .sum_axis(2, false)?
                .sum_axis(0, false)?,
        )
    } else {
        None
    };
    let mut out: Contribs<'t, E> = SmallVec::from_iter([dx, dw]);
    if ctx.inputs.len() > 2 {
        out.push(db);
    }
    Ok(out)
}

/// The contributions of a `linear` node (`x W + b`) for the output gradient `g`.
fn linear_vjp<'t, E: Float>(ctx: &VjpCtx<'t, E>, g: Var<'t, E>) -> Result<Contribs<'t, E>> {
    let (x, w) = (ctx.x(0), ctx.x(1));
    let (k, m) = (w.shape()[0], w.shape()[1]);
    let n = x.shape().iter().product::<usize>() / k.max(1);
    let dx = if ctx.wants[0] {
        Some(g.matmul(w.t())?.reshape(&x.shape())?)
    } else {
        None
    };
    let dw = if ctx.wants[1] {
        let xf = x.reshape(&[n, k])?;
        Some(xf.t().matmul(g.reshape(&[n, m])?)?)
    } else {
        None
    };
    let db = if ctx.wants[2] {
        Some(reduce_to(g, &ctx.x(2).shape())?)
    } else {
        None
    };
    Ok(SmallVec::from_iter([dx, dw, db]))
}
