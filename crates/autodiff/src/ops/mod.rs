//! Every differentiable op: one file each, with the forward (a `Var` method) and the backward
//! side by side. Adding an op means a file here, a variant of [`Op`], and one arm in each of the
//! exhaustive matches below (no `_ =>` arm, so a forgotten op does not compile).

use std::borrow::Cow;

use tapegrad_tensor::{Float, PAR_MIN_CHEAP, Tensor, par_chunk_len, par_chunks_mut};

use crate::error::Result;
use crate::tape::{Node, Store};

mod abs;
mod add;
mod affine;
mod avg_pool2d;
mod bce_with_logits;
mod broadcast_to;
mod clamp;
mod concat;
mod conv1d;
mod conv2d;
mod cos;
mod cumsum;
mod div;
mod dropout;
mod elu;
mod erf;
mod exp;
mod expm1;
mod flat_index;
mod flatten;
mod gelu;
mod gelu_tanh;
mod index_select;
mod layer_norm;
mod leaky_relu;
mod linear;
mod ln;
mod log1p;
mod log_softmax;
mod logsumexp;
mod masked_fill;
mod matmul;
mod max;
mod max_axis;
mod max_pool2d;
mod maximum;
mod mean;
mod mean_axis;
mod min;
mod min_axis;
mod minimum;
mod mse;
mod mul;
mod narrow;
mod neg;
mod norm;
mod operators;
mod pad;
mod permute;
mod pow;
mod powf;
mod recip;
mod relu;
pub(crate) mod replay;
mod reshape;
mod scalar_div;
mod select_rows;
mod sigmoid;
mod silu;
mod sin;
mod softmax;
mod softmax_cross_entropy;
mod softplus;
mod sqrt;
mod square;
mod squeeze;
mod stack;
mod std_axis;
mod sub;
mod sum;
mod sum_axis;
mod tanh;
mod transpose;
mod transpose_axes;
mod unsqueeze;
mod var_axis;
pub(crate) mod vjp;
mod where_cond;

/// What computed a node, with the parameters its backward needs.
#[derive(Debug, Clone, Copy)]
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
    Maximum,
    Minimum,
    Pow,
    Clamp {
        lo: E,
        hi: E,
    },
    WhereCond,
    /// The fill value.
    MaskedFill(E),
    Recip,
    Sin,
    Cos,
    Log1p,
    Expm1,
    Erf,
    Gelu,
    GeluTanh,
    Silu,
    LeakyRelu(E),
    Elu(E),
    MatMul,
    /// `A B^T` recorded on B (a `matmul` given a transpose of the last two axes).
    MatMulT,
    /// `x W + b` in one node.
    Linear,
    /// `act(x W + b)` in one node (a dense layer).
    LinearAct(linear::Act),
    Transpose,
    /// Axes `indices[start..start + len]` of the tape's index arena.
    Permute {
        start: u32,
        len: u32,
    },
    TransposeAxes {
        a: u32,
        b: u32,
    },
    Stack {
        axis: u32,
    },
    /// (before, after) pairs flattened in `indices[start..start + len]`, and the fill value.
    Pad {
        start: u32,
        len: u32,
        value: E,
    },
    IndexSelect {
        axis: u32,
        start: u32,
        len: u32,
    },
    Reshape,
    BroadcastTo,
    Concat {
        axis: u32,
    },
    Narrow {
        axis: u32,
        start: u32,
    },
    /// Rows `indices[start..start + len]` of the tape's index arena.
    SelectRows {
        start: u32,
        len: u32,
    },
    Sum,
    Mean,
    SumAxis {
        axis: u32,
        keepdim: bool,
    },
    MeanAxis {
        axis: u32,
        keepdim: bool,
    },
    /// The argmax positions live in the tape's index arena at `start..start + len`.
    MaxAxis {
        axis: u32,
        keepdim: bool,
        start: u32,
        len: u32,
    },
    /// The argmin positions live in the tape's index arena at `start..start + len`.
    MinAxis {
        axis: u32,
        keepdim: bool,
        start: u32,
        len: u32,
    },
    Max,
    Min,
    Logsumexp {
        axis: u32,
        keepdim: bool,
    },
    VarAxis {
        axis: u32,
        keepdim: bool,
        correction: u32,
    },
    Cumsum {
        axis: u32,
    },
    Norm,
    LayerNorm {
        eps: E,
    },
    Dropout,
    /// Stride and padding (sh, sw, ph, pw) at `indices[start..start + 4]`.
    Conv2d {
        start: u32,
    },
    /// Each window's argmax (a flat input index) at `indices[start..start + len]`; kernel and
    /// stride (kh, kw, sh, sw) at `indices[params..params + 4]`.
    MaxPool2d {
        start: u32,
        len: u32,
        params: u32,
    },
    /// Kernel and stride (kh, kw, sh, sw) at `indices[start..start + 4]`.
    AvgPool2d {
        start: u32,
    },
    Softmax {
        axis: u32,
    },
    LogSoftmax {
        axis: u32,
    },
    Mse,
    BceWithLogits,
    /// Labels `indices[start..start + len]` of the tape's index arena.
    SoftmaxCrossEntropy {
        start: u32,
        len: u32,
    },
    /// A user-defined op: the store's `customs[index]`.
    Custom {
        index: u32,
    },
    /// Elements at the flat positions `indices[start..start + len]` (internal: the
    /// differentiable backwards record it).
    GatherFlat {
        start: u32,
        len: u32,
    },
    /// Elements added into zeros at the flat positions `indices[start..start + len]`
    /// (internal, the transpose of `GatherFlat`; the output's size is its value's).
    ScatterFlat {
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
            Op::Maximum => "maximum",
            Op::Minimum => "minimum",
            Op::Pow => "pow",
            Op::Clamp { .. } => "clamp",
            Op::WhereCond => "where_cond",
            Op::MaskedFill(_) => "masked_fill",
            Op::Recip => "recip",
            Op::Sin => "sin",
            Op::Cos => "cos",
            Op::Log1p => "log1p",
            Op::Expm1 => "expm1",
            Op::Erf => "erf",
            Op::Gelu => "gelu",
            Op::GeluTanh => "gelu_tanh",
            Op::Silu => "silu",
            Op::LeakyRelu(_) => "leaky_relu",
            Op::Elu(_) => "elu",
            Op::MatMul => "matmul",
            Op::MatMulT => "matmul",
            Op::Linear => "linear",
            Op::LinearAct(act) => act.name(),
            Op::Transpose => "t",
            Op::Permute { .. } => "permute",
            Op::TransposeAxes { .. } => "transpose",
            Op::Stack { .. } => "stack",
            Op::Pad { .. } => "pad",
            Op::IndexSelect { .. } => "index_select",
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
            Op::MinAxis { .. } => "min_axis",
            Op::Max => "max",
            Op::Min => "min",
            Op::Logsumexp { .. } => "logsumexp",
            Op::VarAxis { .. } => "var_axis",
            Op::Cumsum { .. } => "cumsum",
            Op::Norm => "norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Dropout => "dropout",
            Op::Conv2d { .. } => "conv2d",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Mse => "mse",
            Op::BceWithLogits => "binary_cross_entropy_with_logits",
            Op::SoftmaxCrossEntropy { .. } => "softmax_cross_entropy",
            Op::Custom { .. } => "custom",
            Op::GatherFlat { .. } => "gather",
            Op::ScatterFlat { .. } => "scatter_add",
        }
    }

    /// The op's parameters for the trace (empty when it has none).
    pub(crate) fn params(&self) -> String {
        match self {
            Op::Affine { scale, shift } => format!("{scale}*x + {shift}"),
            Op::ScalarDiv(c) => format!("{c}/x"),
            Op::PowF(p) => format!("p={p}"),
            Op::LeakyRelu(p) => format!("slope={p}"),
            Op::Clamp { lo, hi } => format!("{lo}..={hi}"),
            Op::Elu(p) => format!("alpha={p}"),
            Op::Concat { axis }
            | Op::Stack { axis }
            | Op::Softmax { axis }
            | Op::LogSoftmax { axis } => {
                format!("axis={axis}")
            }
            Op::Narrow { axis, start } => format!("axis={axis}, start={start}"),
            Op::SumAxis { axis, keepdim }
            | Op::MeanAxis { axis, keepdim }
            | Op::MaxAxis { axis, keepdim, .. }
            | Op::MinAxis { axis, keepdim, .. }
            | Op::Logsumexp { axis, keepdim } => format!("axis={axis}, keepdim={keepdim}"),
            Op::VarAxis {
                axis,
                keepdim,
                correction,
            } => format!("axis={axis}, keepdim={keepdim}, correction={correction}"),
            Op::Cumsum { axis } => format!("axis={axis}"),
            Op::LayerNorm { eps } => format!("eps={eps}"),
            Op::SelectRows { len, .. } => format!("{len} rows"),
            Op::TransposeAxes { a, b } => format!("{a}, {b}"),
            Op::MatMulT => "rhs transposed".to_string(),
            Op::IndexSelect { axis, len, .. } => format!("axis={axis}, {len} entries"),
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
            Op::Maximum => maximum::backward(ctx),
            Op::Minimum => minimum::backward(ctx),
            Op::Pow => pow::backward(ctx),
            Op::Clamp { lo, hi } => clamp::backward(ctx, *lo, *hi),
            Op::WhereCond => where_cond::backward(ctx),
            Op::MaskedFill(_) => masked_fill::backward(ctx),
            Op::Recip => recip::backward(ctx),
            Op::Sin => sin::backward(ctx),
            Op::Cos => cos::backward(ctx),
            Op::Log1p => log1p::backward(ctx),
            Op::Expm1 => expm1::backward(ctx),
            Op::Erf => erf::backward(ctx),
            Op::Gelu => gelu::backward(ctx),
            Op::GeluTanh => gelu_tanh::backward(ctx),
            Op::Silu => silu::backward(ctx),
            Op::LeakyRelu(p) => leaky_relu::backward(ctx, *p),
            Op::Elu(p) => elu::backward(ctx, *p),
            Op::MatMul => matmul::backward(ctx),
            Op::MatMulT => matmul::backward_transposed(ctx),
            Op::Linear => linear::backward(ctx),
            Op::LinearAct(act) => linear::backward_act(ctx, *act),
            Op::Transpose => transpose::backward(ctx),
            Op::Permute { start, len } => {
                let axes = ctx.indices(*start, *len);
                permute::backward(ctx, axes)
            }
            Op::TransposeAxes { a, b } => transpose_axes::backward(ctx, *a as usize, *b as usize),
            Op::Stack { axis } => stack::backward(ctx, *axis as usize),
            Op::Pad { start, len, .. } => {
                let pads = ctx.indices(*start, *len);
                pad::backward(ctx, pads)
            }
            Op::IndexSelect { axis, start, len } => {
                let indices = ctx.indices(*start, *len);
                index_select::backward(ctx, *axis as usize, indices)
            }
            Op::Reshape => reshape::backward(ctx),
            Op::BroadcastTo => broadcast_to::backward(ctx),
            Op::Concat { axis } => concat::backward(ctx, *axis as usize),
            Op::Narrow { axis, start } => narrow::backward(ctx, *axis as usize, *start as usize),
            Op::SelectRows { start, len } => {
                let rows = ctx.indices(*start, *len);
                select_rows::backward(ctx, rows)
            }
            Op::Sum => sum::backward(ctx),
            Op::Mean => mean::backward(ctx),
            Op::SumAxis { axis, keepdim } => sum_axis::backward(ctx, *axis as usize, *keepdim),
            Op::MeanAxis { axis, keepdim } => mean_axis::backward(ctx, *axis as usize, *keepdim),
            Op::MaxAxis {
                axis,
                keepdim,
                start,
                len,
            } => {
                let argmax = ctx.indices(*start, *len);
                max_axis::backward(ctx, *axis as usize, *keepdim, argmax)
            }
            Op::MinAxis {
                axis,
                keepdim,
                start,
                len,
            } => {
                let argmin = ctx.indices(*start, *len);
                max_axis::backward(ctx, *axis as usize, *keepdim, argmin)
            }
            Op::Max | Op::Min => max::backward(ctx),
            Op::Logsumexp { axis, keepdim } => logsumexp::backward(ctx, *axis as usize, *keepdim),
            Op::VarAxis {
                axis,
                keepdim,
                correction,
            } => var_axis::backward(ctx, *axis as usize, *keepdim, *correction as usize),
            Op::Cumsum { axis } => cumsum::backward(ctx, *axis as usize),
            Op::Norm => norm::backward(ctx),
            Op::LayerNorm { .. } => layer_norm::backward(ctx),
            Op::Dropout => dropout::backward(ctx),
            Op::Conv2d { start } => {
                let params = ctx.indices(*start, 4);
                conv2d::backward(ctx, params)
            }
            Op::MaxPool2d { start, len, .. } => {
                let at = ctx.indices(*start, *len);
                max_pool2d::backward(ctx, at)
            }
            Op::AvgPool2d { start } => {
                let params = ctx.indices(*start, 4);
                avg_pool2d::backward(ctx, params)
            }
            Op::Softmax { axis } => softmax::backward(ctx, *axis as usize),
            Op::LogSoftmax { axis } => log_softmax::backward(ctx, *axis as usize),
            Op::Mse => mse::backward(ctx),
            Op::BceWithLogits => bce_with_logits::backward(ctx),
            Op::SoftmaxCrossEntropy { start, len } => {
                let labels = ctx.indices(*start, *len);
                softmax_cross_entropy::backward(ctx, labels)
            }
            Op::Custom { index } => {
                let op = ctx.custom(*index);
                crate::custom::backward(ctx, &*op)
            }
            Op::GatherFlat { start, len } => {
                let at = ctx.indices(*start, *len);
                flat_index::backward_gather(ctx, at)
            }
            Op::ScatterFlat { start, len, .. } => {
                let at = ctx.indices(*start, *len);
                flat_index::backward_scatter(ctx, at)
            }
        }
    }

    /// The same op, built anew variant by variant (the scalar path's ops; any other is
    /// copied). Recording a scalar node stores this into its record: the compiler then writes
    /// the tag (and parameters) straight into the record, where a plain copy of the enum moves
    /// all 16 bytes, most of them undefined, through the stack, and the wide load of a narrow
    /// store stalls.
    #[inline(always)]
    pub(crate) fn rebuilt(self) -> Self {
        match self {
            Op::Add => Op::Add,
            Op::Sub => Op::Sub,
            Op::Mul => Op::Mul,
            Op::Div => Op::Div,
            Op::Neg => Op::Neg,
            Op::Affine { scale, shift } => Op::Affine { scale, shift },
            Op::ScalarDiv(c) => Op::ScalarDiv(c),
            Op::PowF(p) => Op::PowF(p),
            Op::Square => Op::Square,
            Op::Exp => Op::Exp,
            Op::Ln => Op::Ln,
            Op::Sqrt => Op::Sqrt,
            Op::Abs => Op::Abs,
            Op::Sigmoid => Op::Sigmoid,
            Op::Tanh => Op::Tanh,
            Op::Relu => Op::Relu,
            Op::Softplus => Op::Softplus,
            Op::Maximum => Op::Maximum,
            Op::Minimum => Op::Minimum,
            Op::Pow => Op::Pow,
            Op::Clamp { lo, hi } => Op::Clamp { lo, hi },
            Op::Recip => Op::Recip,
            Op::Sin => Op::Sin,
            Op::Cos => Op::Cos,
            Op::Log1p => Op::Log1p,
            Op::Expm1 => Op::Expm1,
            Op::Erf => Op::Erf,
            Op::Gelu => Op::Gelu,
            Op::GeluTanh => Op::GeluTanh,
            Op::Silu => Op::Silu,
            Op::LeakyRelu(p) => Op::LeakyRelu(p),
            Op::Elu(p) => Op::Elu(p),
            other => other,
        }
    }

    /// For elementwise ops: the gradient contributions `g dy/da` and `g dy/db` of one element
    /// (`b` unused by unary ops), or `None` for every other op. Backward uses this for
    /// one-element nodes, without building a tensor or a context.
    #[inline(always)]
    pub(crate) fn scalar_backward(&self, g: E, a: E, b: E, y: E) -> Option<[E; 2]> {
        let unary = |d: E| Some([d, E::ZERO]);
        match self {
            Op::Add => Some(add::derivatives(g, a, b, y)),
            Op::Sub => Some(sub::derivatives(g, a, b, y)),
            Op::Mul => Some(mul::derivatives(g, a, b, y)),
            Op::Div => Some(div::derivatives(g, a, b, y)),
            Op::Neg => unary(neg::derivative(g, a, y)),
            Op::Affine { scale, .. } => unary(affine::derivative(g, *scale)),
            Op::ScalarDiv(_) => unary(scalar_div::derivative(g, a, y)),
            Op::PowF(p) => unary(powf::derivative(g, a, *p)),
            Op::Square => unary(square::derivative(g, a, y)),
            Op::Exp => unary(exp::derivative(g, a, y)),
            Op::Ln => unary(ln::derivative(g, a, y)),
            Op::Sqrt => unary(sqrt::derivative(g, a, y)),
            Op::Abs => unary(abs::derivative(g, a, y)),
            Op::Sigmoid => unary(sigmoid::derivative(g, a, y)),
            Op::Tanh => unary(tanh::derivative(g, a, y)),
            Op::Relu => unary(relu::derivative(g, a, y)),
            Op::Softplus => unary(softplus::derivative(g, a, y)),
            Op::Maximum => Some(maximum::derivatives(g, a, b, y)),
            Op::Minimum => Some(minimum::derivatives(g, a, b, y)),
            Op::Pow => Some(pow::derivatives(g, a, b, y)),
            Op::Clamp { lo, hi } => unary(clamp::derivative(g, a, *lo, *hi)),
            Op::Recip => unary(recip::derivative(g, a, y)),
            Op::Sin => unary(sin::derivative(g, a, y)),
            Op::Cos => unary(cos::derivative(g, a, y)),
            Op::Log1p => unary(log1p::derivative(g, a, y)),
            Op::Expm1 => unary(expm1::derivative(g, a, y)),
            Op::Erf => unary(erf::derivative(g, a, y)),
            Op::Gelu => unary(gelu::derivative(g, a, y)),
            Op::GeluTanh => unary(gelu_tanh::derivative(g, a, y)),
            Op::Silu => unary(silu::derivative(g, a, y)),
            Op::LeakyRelu(p) => unary(leaky_relu::derivative(g, a, y, *p)),
            Op::Elu(p) => unary(elu::derivative(g, a, y, *p)),
            Op::Leaf
            | Op::Constant
            | Op::Detach
            | Op::MatMul
            | Op::MatMulT
            | Op::Linear
            | Op::LinearAct(_)
            | Op::Transpose
            | Op::Permute { .. }
            | Op::TransposeAxes { .. }
            | Op::Stack { .. }
            | Op::Pad { .. }
            | Op::IndexSelect { .. }
            | Op::Reshape
            | Op::BroadcastTo
            | Op::Concat { .. }
            | Op::Narrow { .. }
            | Op::SelectRows { .. }
            | Op::Sum
            | Op::Mean
            | Op::SumAxis { .. }
            | Op::MeanAxis { .. }
            | Op::MaxAxis { .. }
            | Op::MinAxis { .. }
            | Op::Max
            | Op::Min
            | Op::Logsumexp { .. }
            | Op::VarAxis { .. }
            | Op::Cumsum { .. }
            | Op::Norm
            | Op::LayerNorm { .. }
            | Op::Dropout
            | Op::Conv2d { .. }
            | Op::MaxPool2d { .. }
            | Op::AvgPool2d { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Mse
            | Op::BceWithLogits
            | Op::SoftmaxCrossEntropy { .. }
            | Op::WhereCond
            | Op::MaskedFill(_)
            | Op::Custom { .. }
            | Op::GatherFlat { .. }
            | Op::ScatterFlat { .. } => None,
        }
    }
}

/// A new gradient tensor of `shape` whose elements from flat index `start` on are
/// `terms(start)`: split over the worker threads from [`PAR_MIN_CHEAP`] elements per thread,
/// each element computed alike wherever it is.
pub(crate) fn from_terms<E: Float, I: ExactSizeIterator<Item = E>>(
    shape: &[usize],
    terms: impl Fn(usize) -> I + Sync,
) -> Result<Tensor<E>> {
    let len = terms(0).len();
    Ok(if par_chunk_len(len, PAR_MIN_CHEAP) < len {
        Tensor::par_fill(shape, "backward", PAR_MIN_CHEAP, |start, part| {
            for (o, t) in part.iter_mut().zip(terms(start)) {
                *o = t;
            }
        })?
    } else {
        Tensor::from_iter_exact(shape, terms(0))?
    })
}

/// What a backward sees: its node's inputs, output and upstream gradient, and the gradient
/// slots of its inputs. Op files use only this, never the tape's internals.
///
/// An input holding one element keeps its gradient as a plain number (`scalars`); every other
/// input that requires a gradient has a tensor slot (`tensors`). The accumulate methods pick
/// the right one, so op files need not know.
pub(crate) struct BackwardCtx<'a, E: Float> {
    store: &'a Store<E>,
    nodes: &'a [Node<E>],
    saved: &'a [(u32, Tensor<E>)],
    indices: &'a [usize],
    /// Tensors built for the rank-0 nodes among the inputs and the output (which store none).
    rank0: &'a [(u32, Tensor<E>)],
    id: usize,
    /// The node's input ids, read once.
    inputs: &'a [u32],
    grad: &'a Tensor<E>,
    tensors: &'a mut [Option<Tensor<E>>],
    scalars: &'a mut [Option<E>],
    /// Stand-in slots for one-element inputs of ops that write a slot directly ([`Self::slot`]);
    /// [`Self::finish`] moves them into `scalars`.
    scratch: [Option<Tensor<E>>; 2],
}

impl<'a, E: Float> BackwardCtx<'a, E> {
    pub(crate) fn new(
        store: &'a Store<E>,
        rank0: &'a [(u32, Tensor<E>)],
        id: usize,
        inputs: &'a [u32],
        grad: &'a Tensor<E>,
        tensors: &'a mut [Option<Tensor<E>>],
        scalars: &'a mut [Option<E>],
    ) -> Self {
        BackwardCtx {
            store,
            nodes: &store.nodes,
            saved: &store.saved,
            indices: &store.indices,
            rank0,
            id,
            inputs,
            grad,
            tensors,
            scalars,
            scratch: [None, None],
        }
    }

    /// The value of node `j` as a tensor.
    #[inline]
    fn value_of(&self, j: usize) -> &'a Tensor<E> {
        if let Some(t) = self.store.tensor(j) {
            return t;
        }
        let (_, t) = self
            .rank0
            .iter()
            .find(|(id, _)| *id as usize == j)
            .expect("internal invariant: rank-0 inputs and output are built before backward");
        t
    }

    /// Moves what ops wrote into stand-in slots of one-element inputs into their gradients.
    pub(crate) fn finish(&mut self) {
        for k in 0..self.inputs.len().min(2) {
            if let Some(t) = self.scratch[k].take() {
                let i = self.input_id(k);
                self.add_scalar(i, t.as_slice()[0]);
            }
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
        self.value_of(self.input_id(k))
    }

    /// This node's forward value.
    #[inline]
    pub(crate) fn output(&self) -> &'a Tensor<E> {
        self.value_of(self.id)
    }

    /// The tensor this node's forward saved for its backward.
    pub(crate) fn saved(&self) -> &'a Tensor<E> {
        let i = self
            .saved
            .binary_search_by_key(&(self.id as u32), |(id, _)| *id)
            .expect("internal invariant: this op saves a tensor in its forward");
        &self.saved[i].1
    }

    /// The user-defined op of a custom node.
    pub(crate) fn custom(&self, index: u32) -> std::sync::Arc<dyn crate::custom::CustomOp<E>> {
        std::sync::Arc::clone(&self.store.customs[index as usize])
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

    /// Whether input `k` holds one element (its gradient is a plain number).
    #[inline]
    fn single(&self, k: usize) -> bool {
        self.nodes[self.input_id(k)].single
    }

    /// Adds `v` into the gradient of the one-element node `i`.
    #[inline]
    fn add_scalar(&mut self, i: usize, v: E) {
        // -0 + v is exactly v: one path for the first contribution and later ones.
        let acc = &mut self.scalars[i];
        *acc = Some(acc.unwrap_or(-E::ZERO) + v);
    }

    /// The gradient slot of input `k`, for ops that accumulate in place (matmul, row
    /// selection, sum). For a one-element input (of an op with at most two inputs) this is a
    /// stand-in that [`Self::finish`] adds into the input's gradient.
    pub(crate) fn slot(&mut self, k: usize) -> &mut Option<Tensor<E>> {
        if self.single(k) {
            return &mut self.scratch[k];
        }
        let slot = self.nodes[self.input_id(k)].slot as usize;
        &mut self.tensors[slot]
    }

    /// Adds `t` (already of input `k`'s shape) into input `k`'s gradient.
    pub(crate) fn accumulate(&mut self, k: usize, t: Tensor<E>) -> Result<()> {
        if !self.wants(k) {
            return Ok(());
        }
        if self.single(k) {
            self.add_scalar(self.input_id(k), t.as_slice()[0]);
            return Ok(());
        }
        match self.slot(k) {
            Some(g) => g.add_assign(&t)?,
            slot @ None => *slot = Some(t),
        }
        Ok(())
    }

    /// For elementwise ops whose input `k`, output and gradient share one shape: adds
    /// `f(g, x, y)` into input `k`'s gradient, in place when the slot exists (no temporary).
    /// Large gradients are split over the worker threads ([`PAR_MIN_CHEAP`] elements per
    /// thread): the same numbers, each element computed alike wherever it is.
    #[inline]
    pub(crate) fn accumulate_elementwise(
        &mut self,
        k: usize,
        f: impl Fn(E, E, E) -> E + Sync,
    ) -> Result<()> {
        if !self.wants(k) {
            return Ok(());
        }
        let (g, x, y) = (self.grad, self.input(k), self.output());
        debug_assert!(g.shape() == x.shape() && x.shape() == y.shape());
        let (gs, xs, ys) = (g.as_slice(), x.as_slice(), y.as_slice());
        if self.single(k) {
            self.add_scalar(self.input_id(k), f(gs[0], xs[0], ys[0]));
            return Ok(());
        }
        // A gradient slot always has its node's shape, which here is g's.
        // The terms of the elements from `start` on.
        let terms = |start: usize| {
            let (gs, xs, ys) = (&gs[start..], &xs[start..], &ys[start..]);
            gs.iter().zip(xs).zip(ys).map(|((&g, &x), &y)| f(g, x, y))
        };
        match self.slot(k) {
            Some(acc) => par_chunks_mut(acc.as_mut_slice(), PAR_MIN_CHEAP, |start, part| {
                for (a, t) in part.iter_mut().zip(terms(start)) {
                    *a += t;
                }
            }),
            slot @ None => *slot = Some(from_terms(g.shape(), terms)?),
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
        if a.shape() == g.shape() && b.shape() == g.shape() {
            let (gs, as_, bs, ys) = (g.as_slice(), a.as_slice(), b.as_slice(), y.as_slice());
            if self.single(k) {
                self.add_scalar(self.input_id(k), f(gs[0], as_[0], bs[0], ys[0]));
                return Ok(());
            }
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
        if self.single(k) {
            // `sum_to`'s number without its checks (the forward checked that the shapes
            // broadcast): the element itself where the shapes agree, else the sum of every
            // element.
            let total = if t.shape() == shape {
                t.as_slice()[0]
            } else {
                t.sum().as_slice()[0]
            };
            self.add_scalar(self.input_id(k), total);
            return Ok(());
        }
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
