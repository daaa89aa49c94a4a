//! Each op's forward from its inputs' current values, for [`crate::Tape::replay`]: the same
//! code recording runs (the scalar functions of the rank-0 path, the tensor methods of the
//! tensor path), so a replayed value is bit for bit the value a new recording would hold.

use tapegrad_tensor::{Float, Tensor};

use super::Op;
use crate::error::{AutodiffError, Result};
use crate::tape::Store;

/// What recomputing one node gives: its value, what it saves for backward, and index lists
/// (argmax positions) to write back at the given arena offset.
pub(crate) struct Recomputed<E: Float> {
    pub(crate) value: Tensor<E>,
    pub(crate) saved: Option<Tensor<E>>,
    pub(crate) indices: Option<(u32, Vec<usize>)>,
}

/// The rank-0 path of an elementwise op: the scalar function recording used, or `None` for
/// an op that is not elementwise.
pub(crate) fn scalar<E: Float>(op: &Op<E>, a: E, b: E) -> Option<E> {
    use super::*;
    Some(match *op {
        Op::Add => add::forward(a, b),
        Op::Sub => sub::forward(a, b),
        Op::Mul => mul::forward(a, b),
        Op::Div => div::forward(a, b),
        Op::Maximum => maximum::forward(a, b),
        Op::Minimum => minimum::forward(a, b),
        Op::Pow => pow::forward(a, b),
        Op::Neg => neg::forward(a),
        Op::Affine { scale, shift } => scale * a + shift,
        Op::ScalarDiv(c) => c / a,
        Op::PowF(p) => a.powf(p),
        Op::Square => square::forward(a),
        Op::Exp => exp::forward(a),
        Op::Ln => ln::forward(a),
        Op::Sqrt => sqrt::forward(a),
        Op::Abs => abs::forward(a),
        Op::Sigmoid => sigmoid::forward(a),
        Op::Tanh => tanh::forward(a),
        Op::Relu => relu::forward(a),
        Op::Softplus => softplus::forward(a),
        Op::Clamp { lo, hi } => clamp::forward(a, lo, hi),
        Op::Recip => recip::forward(a),
        Op::Sin => sin::forward(a),
        Op::Cos => cos::forward(a),
        Op::Log1p => log1p::forward(a),
        Op::Expm1 => expm1::forward(a),
        Op::Erf => erf::forward(a),
        Op::Gelu => gelu::forward(a),
        Op::GeluTanh => gelu_tanh::forward(a),
        Op::Silu => silu::forward(a),
        Op::LeakyRelu(p) => leaky_relu::forward(a, p),
        Op::Elu(p) => elu::forward(a, p),
        _ => return None,
    })
}

/// Node `i`'s value (and saved tensor, and index lists) from its inputs' current values.
pub(crate) fn tensor<E: Float>(store: &Store<E>, i: usize) -> Result<Recomputed<E>> {
    let inputs = store.inputs(i);
    let v = |k: usize| store.value(inputs[k] as usize);
    let out_shape = || store.shape(i);
    let idx = |start: u32, len: u32| &store.indices[start as usize..(start + len) as usize];
    let plain = |value: Tensor<E>| Recomputed {
        value,
        saved: None,
        indices: None,
    };
    let saving = |value: Tensor<E>, saved: Tensor<E>| Recomputed {
        value,
        saved: Some(saved),
        indices: None,
    };
    let saved_of = || {
        let at = store
            .saved
            .binary_search_by_key(&(i as u32), |(id, _)| *id)
            .expect("internal invariant: this op saved a tensor when recorded");
        store.saved[at].1.clone()
    };
    Ok(match store.nodes[i].op {
        Op::Leaf | Op::Constant => unreachable!("leaves are set, not recomputed"),
        Op::Detach => plain(v(0).into_owned()),
        Op::Add => plain(v(0).add(&v(1))?),
        Op::Sub => plain(v(0).sub(&v(1))?),
        Op::Mul => plain(v(0).mul(&v(1))?),
        Op::Div => plain(v(0).div(&v(1))?),
        Op::Maximum => plain(v(0).maximum(&v(1))?),
        Op::Minimum => plain(v(0).minimum(&v(1))?),
        Op::Pow => plain(v(0).zip_with(&v(1), "pow", super::pow::forward)?),
        Op::Neg => plain(v(0).neg()),
        Op::Affine { scale, shift } => plain(v(0).map(move |x| scale * x + shift)),
        Op::ScalarDiv(c) => plain(v(0).map(|x| c / x)),
        Op::PowF(p) => plain(v(0).powf(p)),
        Op::Square => plain(v(0).square()),
        Op::Exp => plain(v(0).exp()),
        Op::Ln => plain(v(0).ln()),
        Op::Sqrt => plain(v(0).sqrt()),
        Op::Abs => plain(v(0).abs()),
        Op::Sigmoid => plain(v(0).sigmoid()),
        Op::Tanh => plain(v(0).tanh()),
        Op::Relu => plain(v(0).relu()),
        Op::Softplus => plain(v(0).softplus()),
        Op::Clamp { lo, hi } => plain(v(0).clamp(lo, hi)),
        Op::WhereCond => {
            let cond = saved_of();
            saving(Tensor::where_cond(&cond, &v(0), &v(1))?, cond)
        }
        Op::MaskedFill(value) => {
            let mask = saved_of();
            saving(v(0).masked_fill(&mask, value)?, mask)
        }
        Op::Recip => plain(v(0).recip()),
        Op::Sin => plain(v(0).sin()),
        Op::Cos => plain(v(0).cos()),
        Op::Log1p => plain(v(0).log1p()),
        Op::Expm1 => plain(v(0).expm1()),
        Op::Erf => plain(v(0).erf()),
        Op::Gelu => plain(v(0).gelu()),
        Op::GeluTanh => plain(v(0).gelu_tanh()),
        Op::Silu => plain(v(0).silu()),
        Op::LeakyRelu(p) => plain(v(0).leaky_relu(p)),
        Op::Elu(p) => plain(v(0).elu(p)),
        Op::MatMul => plain(v(0).matmul(&v(1))?),
        Op::MatMulT => plain(v(0).matmul_t(
            tapegrad_tensor::Transpose::No,
            &v(1),
            tapegrad_tensor::Transpose::Yes,
        )?),
        Op::Linear => plain(v(0).linear(&v(1), &v(2))?),
        Op::LinearAct(act) => {
            let mut y = v(0).linear(&v(1), &v(2))?;
            act.apply(&mut y);
            plain(y)
        }
        Op::Transpose => plain(v(0).t()),
        Op::Permute { start, len } => plain(v(0).permute(idx(start, len))?),
        Op::TransposeAxes { a, b } => plain(v(0).transpose(a as usize, b as usize)?),
        Op::Stack { axis } => {
            let vals: Vec<_> = (0..inputs.len()).map(v).collect();
            let refs: Vec<&Tensor<E>> = vals.iter().map(|c| &**c).collect();
            plain(Tensor::stack(&refs, axis as usize)?)
        }
        Op::Pad { start, len, value } => {
            let pads: Vec<(usize, usize)> = idx(start, len)
                .chunks_exact(2)
                .map(|p| (p[0], p[1]))
                .collect();
            plain(v(0).pad(&pads, value)?)
        }
        Op::IndexSelect { axis, start, len } => {
            plain(v(0).index_select(axis as usize, idx(start, len))?)
        }
        Op::Reshape => plain(v(0).reshape(out_shape())?),
        Op::BroadcastTo => plain(v(0).broadcast_to(out_shape())?),
        Op::Concat { axis } => {
            let vals: Vec<_> = (0..inputs.len()).map(v).collect();
            let refs: Vec<&Tensor<E>> = vals.iter().map(|c| &**c).collect();
            plain(Tensor::concat(&refs, axis as usize)?)
        }
        Op::Narrow { axis, start } => {
            plain(v(0).narrow(axis as usize, start as usize, out_shape()[axis as usize])?)
        }
        Op::SelectRows { start, len } => plain(v(0).select_rows(idx(start, len))?),
        Op::Sum => plain(v(0).sum()),
        Op::Mean => plain(v(0).mean()),
        Op::SumAxis { axis, keepdim } => plain(v(0).sum_axis(axis as usize, keepdim)?),
        Op::MeanAxis { axis, keepdim } => plain(v(0).mean_axis(axis as usize, keepdim)?),
        Op::MaxAxis {
            axis,
            keepdim,
            start,
            ..
        }
        | Op::MinAxis {
            axis,
            keepdim,
            start,
            ..
        } => {
            let (x, axis) = (v(0), axis as usize);
            let (at, value) = if matches!(store.nodes[i].op, Op::MaxAxis { .. }) {
                (x.argmax_indices(axis)?, x.max_axis(axis, keepdim)?)
            } else {
                (x.argmin_indices(axis)?, x.min_axis(axis, keepdim)?)
            };
            Recomputed {
                value,
                saved: None,
                indices: Some((start, at)),
            }
        }
        Op::Max => plain(v(0).max()?),
        Op::Min => plain(v(0).min()?),
        Op::Logsumexp { axis, keepdim } => plain(v(0).logsumexp(axis as usize, keepdim)?),
        Op::VarAxis {
            axis,
            keepdim,
            correction,
        } => plain(v(0).var_axis(axis as usize, keepdim, correction as usize)?),
        Op::Cumsum { axis } => plain(v(0).cumsum(axis as usize)?),
        Op::Norm => plain(v(0).norm()),
        Op::LayerNorm { eps } => {
            let (y, stats) = v(0).layer_norm_with_stats(&v(1), &v(2), eps)?;
            saving(y, stats)
        }
        Op::Dropout => {
            // The mask drawn when recording is kept: a replay does not draw again.
            let mask = saved_of();
            saving(v(0).mul(&mask)?, mask)
        }
        Op::Conv2d { start } => {
            let p = idx(start, 4);
            let bias = (inputs.len() > 2).then(|| v(2));
            let (y, cols) =
                v(0).conv2d_with_columns(&v(1), bias.as_deref(), (p[0], p[1]), (p[2], p[3]))?;
            saving(y, cols)
        }
        // Recorded without positions (no gradient flows through it): the values alone.
        Op::MaxPool2d { len: 0, params, .. } => {
            let p = idx(params, 4);
            plain(v(0).max_pool2d((p[0], p[1]), (p[2], p[3]))?)
        }
        Op::MaxPool2d { start, params, .. } => {
            let p = idx(params, 4);
            let (y, at) = v(0).max_pool2d_with_indices((p[0], p[1]), (p[2], p[3]))?;
            Recomputed {
                value: y,
                saved: None,
                indices: Some((start, at)),
            }
        }
        Op::AvgPool2d { start } => {
            let p = idx(start, 4);
            plain(v(0).avg_pool2d((p[0], p[1]), (p[2], p[3]))?)
        }
        Op::Softmax { axis } => plain(v(0).softmax(axis as usize)?),
        Op::LogSoftmax { axis } => plain(v(0).log_softmax(axis as usize)?),
        Op::Mse => plain(super::mse::compute(&v(0), &v(1))?),
        Op::BceWithLogits => {
            let (loss, sig) = super::bce_with_logits::compute(&v(0), &v(1))?;
            saving(loss, sig)
        }
        Op::SoftmaxCrossEntropy { start, len } => {
            let (loss, probs) = super::softmax_cross_entropy::compute(&v(0), idx(start, len))?;
            saving(loss, probs)
        }
        Op::Custom { index } => {
            let op = &store.customs[index as usize];
            let vals: Vec<_> = (0..inputs.len()).map(v).collect();
            let refs: Vec<&Tensor<E>> = vals.iter().map(|c| &**c).collect();
            let value = op.forward(&refs).map_err(|e| match e {
                e @ AutodiffError::Custom { .. } => e,
                other => AutodiffError::Custom {
                    op: op.name().to_string(),
                    reason: other.to_string(),
                },
            })?;
            plain(value)
        }
        Op::GatherFlat { start, len } => {
            let x = v(0);
            let xs = x.as_slice();
            plain(Tensor::from_vec(
                idx(start, len).iter().map(|&j| xs[j]).collect(),
                &[len as usize],
            )?)
        }
        Op::ScatterFlat { start, len } => {
            let mut y = Tensor::zeros(out_shape());
            let ys = y.as_mut_slice();
            for (&j, &g) in idx(start, len).iter().zip(v(0).as_slice()) {
                ys[j] += g;
            }
            plain(y)
        }
    })
}
