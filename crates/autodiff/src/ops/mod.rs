//! Every differentiable op: one file each, with the forward (a `Var` method) and the backward
//! side by side. Adding an op means a file here, a variant of [`Op`], and one arm in each of the
//! two exhaustive matches below (no `_ =>` arm, so a forgotten op does not compile).

use std::borrow::Cow;

use tapegrad_tensor::{Float, Tensor};

use crate::error::Result;
use crate::tape::Node;

mod abs;
mod add;
mod affine;
mod bce_with_logits;
mod broadcast_to;
mod concat;
mod div;
mod exp;
mod ln;
mod log_softmax;
mod matmul;
mod max_axis;
mod mean;
mod mean_axis;
mod mse;
mod mul;
mod narrow;
mod neg;
mod operators;
mod powf;
mod relu;
mod reshape;
mod scalar_div;
mod select_rows;
mod sigmoid;
mod softmax;
mod softmax_cross_entropy;
mod softplus;
mod sqrt;
mod square;
mod sub;
mod sum;
mod sum_axis;
mod tanh;
mod transpose;

/// What computed a node, with the parameters its backward needs.
#[derive(Debug, Clone)]
pub(crate) enum Op<E: Float> {
    /// A leaf that receives a gradient.
    Leaf,
    /// A leaf without a gradient.
    Constant,
    /// A detached copy of another node's value.
    Detach,
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    /// `scale * x + shift`: every operator between a var and a plain number but `c / x`.
    Affine {
        scale: E,
        shift: E,
    },
    /// `c / x`.
    ScalarDiv(E),
    PowF(E),
    Square,
    Exp,
    Ln,
    Sqrt,
    Abs,
    Sigmoid,
    Tanh,
    Relu,
    Softplus,
    MatMul,
    Transpose,
    Reshape,
    BroadcastTo,
    Concat {
        axis: usize,
    },
    Narrow {
        axis: usize,
        start: usize,
    },
    /// Rows `indices[start..start + len]` of the tape's index arena.
    SelectRows {
        start: u32,
        len: u32,
    },
    Sum,
    Mean,
    SumAxis {
        axis: usize,
        keepdim: bool,
    },
    MeanAxis {
        axis: usize,
        keepdim: bool,
    },
    /// The argmax positions live in the tape's index arena at `start..start + len`.
    MaxAxis {
        axis: usize,
        keepdim: bool,
        start: u32,
        len: u32,
    },
    Softmax {
        axis: usize,
    },
    LogSoftmax {
        axis: usize,
    },
    Mse,
    BceWithLogits,
    /// Labels `indices[start..start + len]` of the tape's index arena.
    SoftmaxCrossEntropy {
        start: u32,
        len: u32,
    },
}

impl<E: Float> Op<E> {
    /// The op's name as traces, drawings and errors show it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Leaf => "leaf",
            Op::Constant => "constant",
            Op::Detach => "detach",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Neg => "neg",
            Op::Affine { .. } => "affine",
            Op::ScalarDiv(_) => "scalar_div",
            Op::PowF(_) => "powf",
            Op::Square => "square",
            Op::Exp => "exp",
            Op::Ln => "ln",
            Op::Sqrt => "sqrt",
            Op::Abs => "abs",
            Op::Sigmoid => "sigmoid",
            Op::Tanh => "tanh",
            Op::Relu => "relu",
            Op::Softplus => "softplus",
            Op::MatMul => "matmul",
            Op::Transpose => "t",
            Op::Reshape => "reshape",
            Op::BroadcastTo => "broadcast_to",
            Op::Concat { .. } => "concat",
            Op::Narrow { .. } => "narrow",
            Op::SelectRows { .. } => "select_rows",
            Op::Sum => "sum",
            Op::Mean => "mean",
            Op::SumAxis { .. } => "sum_axis",
            Op::MeanAxis { .. } => "mean_axis",
            Op::MaxAxis { .. } => "max_axis",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Mse => "mse",
            Op::BceWithLogits => "binary_cross_entropy_with_logits",
            Op::SoftmaxCrossEntropy { .. } => "softmax_cross_entropy",
        }
    }

    /// The op's parameters for the trace (empty when it has none).
    pub(crate) fn params(&self) -> String {
        match self {
            Op::Affine { scale, shift } => format!("{scale}*x + {shift}"),
            Op::ScalarDiv(c) => format!("{c}/x"),
            Op::PowF(p) => format!("p={p}"),
            Op::Concat { axis } | Op::Softmax { axis } | Op::LogSoftmax { axis } => {
                format!("axis={axis}")
            }
            Op::Narrow { axis, start } => format!("axis={axis}, start={start}"),
            Op::SumAxis { axis, keepdim }
            | Op::MeanAxis { axis, keepdim }
            | Op::MaxAxis { axis, keepdim, .. } => format!("axis={axis}, keepdim={keepdim}"),
            Op::SelectRows { len, .. } => format!("{len} rows"),
            Op::SoftmaxCrossEntropy { len, .. } => format!("{len} labels"),
            _ => String::new(),
        }
    }

    /// Adds this node's contribution to its inputs' gradients.
    pub(crate) fn backward(&self, ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
        match self {
            Op::Leaf | Op::Constant | Op::Detach => Ok(()),
            Op::Add => add::backward(ctx),
            Op::Sub => sub::backward(ctx),
            Op::Mul => mul::backward(ctx),
            Op::Div => div::backward(ctx),
            Op::Neg => neg::backward(ctx),
            Op::Affine { scale, .. } => affine::backward(ctx, *scale),
            Op::ScalarDiv(_) => scalar_div::backward(ctx),
            Op::PowF(p) => powf::backward(ctx, *p),
            Op::Square => square::backward(ctx),
            Op::Exp => exp::backward(ctx),
            Op::Ln => ln::backward(ctx),
            Op::Sqrt => sqrt::backward(ctx),
            Op::Abs => abs::backward(ctx),
            Op::Sigmoid => sigmoid::backward(ctx),
            Op::Tanh => tanh::backward(ctx),
            Op::Relu => relu::backward(ctx),
            Op::Softplus => softplus::backward(ctx),
            Op::MatMul => matmul::backward(ctx),
            Op::Transpose => transpose::backward(ctx),
            Op::Reshape => reshape::backward(ctx),
            Op::BroadcastTo => broadcast_to::backward(ctx),
            Op::Concat { axis } => concat::backward(ctx, *axis),
            Op::Narrow { axis, start } => narrow::backward(ctx, *axis, *start),
            Op::SelectRows { start, len } => {
                let rows = ctx.indices(*start, *len);
                select_rows::backward(ctx, rows)
            }
            Op::Sum => sum::backward(ctx),
            Op::Mean => mean::backward(ctx),
            Op::SumAxis { axis, keepdim } => sum_axis::backward(ctx, *axis, *keepdim),
            Op::MeanAxis { axis, keepdim } => mean_axis::backward(ctx, *axis, *keepdim),
            Op::MaxAxis {
                axis,
                keepdim,
                start,
                len,
            } => {
                let argmax = ctx.indices(*start, *len);
                max_axis::backward(ctx, *axis, *keepdim, argmax)
            }
            Op::Softmax { axis } => softmax::backward(ctx, *axis),
            Op::LogSoftmax { axis } => log_softmax::backward(ctx, *axis),
            Op::Mse => mse::backward(ctx),
            Op::BceWithLogits => bce_with_logits::backward(ctx),
            Op::SoftmaxCrossEntropy { start, len } => {
                let labels = ctx.indices(*start, *len);
                softmax_cross_entropy::backward(ctx, labels)
            }
        }
    }
}

/// What a backward sees: its node's inputs, output and upstream gradient, and the gradient
/// slots of its inputs. Op files use only this, never the tape's internals.
pub(crate) struct BackwardCtx<'a, E: Float> {
    nodes: &'a [Node<E>],
    saved: &'a [Tensor<E>],
    indices: &'a [usize],
    id: usize,
    /// The node's input ids, read once (every op but `concat` has at most two).
    inputs: &'a [u32],
    grad: &'a Tensor<E>,
    grads: &'a mut [Option<Tensor<E>>],
}

impl<'a, E: Float> BackwardCtx<'a, E> {
    pub(crate) fn new(
        (nodes, saved, indices): (&'a [Node<E>], &'a [Tensor<E>], &'a [usize]),
        id: usize,
        grad: &'a Tensor<E>,
        grads: &'a mut [Option<Tensor<E>>],
    ) -> Self {
        BackwardCtx {
            nodes,
            saved,
            indices,
            id,
            inputs: &nodes[id].inputs,
            grad,
            grads,
        }
    }

    /// The gradient of the loss with respect to this node's output.
    #[inline]
    pub(crate) fn grad(&self) -> &'a Tensor<E> {
        self.grad
    }

    /// The number of inputs.
    pub(crate) fn arity(&self) -> usize {
        self.inputs.len()
    }

    #[inline]
    fn input_id(&self, k: usize) -> usize {
        self.inputs[k] as usize
    }

    /// The forward value of input `k`.
    #[inline]
    pub(crate) fn input(&self, k: usize) -> &'a Tensor<E> {
        &self.nodes[self.input_id(k)].value
    }

    /// This node's forward value.
    #[inline]
    pub(crate) fn output(&self) -> &'a Tensor<E> {
        &self.nodes[self.id].value
    }

    /// The tensor this node's forward saved for its backward.
    pub(crate) fn saved(&self) -> &'a Tensor<E> {
        let i = self.nodes[self.id].saved;
        assert!(
            i != u32::MAX,
            "internal invariant: this op saves a tensor in its forward"
        );
        &self.saved[i as usize]
    }

    /// The slice `start..start + len` of the tape's index arena (labels, rows, argmax).
    pub(crate) fn indices(&self, start: u32, len: u32) -> &'a [usize] {
        &self.indices[start as usize..(start + len) as usize]
    }

    /// Whether input `k` needs a gradient (skip the work when it does not).
    #[inline]
    pub(crate) fn wants(&self, k: usize) -> bool {
        self.nodes[self.input_id(k)].requires_grad
    }

    /// The gradient slot of input `k`, for ops that accumulate in place (matmul).
    pub(crate) fn slot(&mut self, k: usize) -> &mut Option<Tensor<E>> {
        let i = self.input_id(k);
        &mut self.grads[i]
    }

    /// Adds `t` (already of input `k`'s shape) into input `k`'s gradient.
    pub(crate) fn accumulate(&mut self, k: usize, t: Tensor<E>) -> Result<()> {
        if !self.wants(k) {
            return Ok(());
        }
        match self.slot(k) {
            Some(g) => g.add_assign(&t)?,
            slot @ None => *slot = Some(t),
        }
        Ok(())
    }

    /// Adds `v` into the gradient of a one-element input `k` (the scalar graph's fast path).
    #[inline]
    fn accumulate_one(&mut self, k: usize, v: E) -> Result<()> {
        let i = self.input_id(k);
        match &mut self.grads[i] {
            Some(acc) => {
                if let [a] = acc.as_mut_slice() {
                    *a += v;
                }
            }
            slot @ None => *slot = Some(Tensor::full(self.nodes[i].value.shape(), v)),
        }
        Ok(())
    }

    /// For elementwise ops whose input `k`, output and gradient share one shape: adds
    /// `f(g, x, y)` into input `k`'s gradient, in place when the slot exists (no temporary).
    #[inline]
    pub(crate) fn accumulate_elementwise(
        &mut self,
        k: usize,
        f: impl Fn(E, E, E) -> E,
    ) -> Result<()> {
        if !self.wants(k) {
            return Ok(());
        }
        let (g, x, y) = (self.grad, self.input(k), self.output());
        if let (Some(gv), Some(xv), Some(yv)) = (g.single(), x.single(), y.single()) {
            return self.accumulate_one(k, f(gv, xv, yv));
        }
        debug_assert!(g.shape() == x.shape() && x.shape() == y.shape());
        let (gs, xs, ys) = (g.as_slice(), x.as_slice(), y.as_slice());
        // A gradient slot always has its node's shape, which here is g's.
        match self.slot(k) {
            Some(acc) => {
                for (i, a) in acc.as_mut_slice().iter_mut().enumerate() {
                    *a += f(gs[i], xs[i], ys[i]);
                }
            }
            slot @ None => *slot = Some(Tensor::from_fn(g.shape(), |i| f(gs[i], xs[i], ys[i]))),
        }
        Ok(())
    }
    /// For broadcasting binary ops: adds `f(g, a, b, y)` elementwise into input `k`'s gradient
    /// when no operand is broadcast (in place when the slot exists, no temporary). When one is,
    /// `broadcast(g, a, b, y)` gives the gradient over the output's shape (borrowing `g` itself
    /// where it can), which is then summed back to input `k`'s shape.
    pub(crate) fn accumulate_binary(
        &mut self,
        k: usize,
        f: impl Fn(E, E, E, E) -> E,
        broadcast: impl FnOnce(
            &'a Tensor<E>,
            &'a Tensor<E>,
            &'a Tensor<E>,
            &'a Tensor<E>,
        ) -> Result<Cow<'a, Tensor<E>>>,
    ) -> Result<()> {
        if !self.wants(k) {
            return Ok(());
        }
        let (g, a, b, y) = (self.grad, self.input(0), self.input(1), self.output());
        if g.len() == 1 && a.len() == 1 && b.len() == 1 {
            let v = f(
                g.as_slice()[0],
                a.as_slice()[0],
                b.as_slice()[0],
                y.as_slice()[0],
            );
            return self.accumulate_one(k, v);
        }
        if a.shape() == g.shape() && b.shape() == g.shape() {
            let (gs, as_, bs, ys) = (g.as_slice(), a.as_slice(), b.as_slice(), y.as_slice());
            match self.slot(k) {
                Some(acc) => {
                    for (i, v) in acc.as_mut_slice().iter_mut().enumerate() {
                        *v += f(gs[i], as_[i], bs[i], ys[i]);
                    }
                }
                slot @ None => {
                    *slot = Some(Tensor::from_fn(g.shape(), |i| {
                        f(gs[i], as_[i], bs[i], ys[i])
                    }));
                }
            }
            return Ok(());
        }
        let full = broadcast(g, a, b, y)?;
        self.accumulate_reduced(k, &full)
    }

    /// Sums `t` (of the output's broadcast shape) down to input `k`'s shape and accumulates it,
    /// in place where the shapes already agree.
    pub(crate) fn accumulate_reduced(&mut self, k: usize, t: &Tensor<E>) -> Result<()> {
        if !self.wants(k) {
            return Ok(());
        }
        let shape = self.input(k).shape();
        if t.shape() == shape {
            match self.slot(k) {
                Some(acc) => acc.add_assign(t)?,
                slot @ None => *slot = Some(t.clone()),
            }
            return Ok(());
        }
        let reduced = t.sum_to(shape)?;
        self.accumulate(k, reduced)
    }
}
