//! Two architectures written as user code on `nn::Model`: a small convolutional network and a
//! one-block decoder transformer. Shared by the `conv_digits` and `transformer` examples and by
//! `tests/architectures.rs`, which trains both at small size.
#![allow(dead_code)] // each user takes some of these

use tapegrad::autodiff::Var;
use tapegrad::nn::checkpoint::load_checkpoint;
use tapegrad::nn::{
    self, Activation, Bound, Dataset, Init, Model, ParamId, ParamStore, Result, TrainConfig,
};
use tapegrad::rand::{Rng, RngExt};
use tapegrad::tensor::Tensor;

/// conv 3x3 (padding 1) -> relu -> max pool 2x2 -> linear, on square one-channel images given
/// as rows of `side * side` pixels. Returns logits.
pub struct ConvNet {
    pub params: ParamStore,
    side: usize,
    channels: usize,
    conv_w: ParamId,
    conv_b: ParamId,
    fc_w: ParamId,
    fc_b: ParamId,
}

impl ConvNet {
    pub fn new(side: usize, channels: usize, classes: usize, rng: &mut impl Rng) -> Self {
        let mut params = ParamStore::new();
        let fan = 9;
        let conv_w = params.insert(
            "conv.weight",
            Init::HeUniform.tensor(&[channels, 1, 3, 3], fan, channels * 9, rng),
        );
        let conv_b = params.insert("conv.bias", Tensor::zeros(&[channels]));
        let flat = channels * (side / 2) * (side / 2);
        let fc_w = params.insert(
            "fc.weight",
            Init::XavierUniform.tensor(&[flat, classes], flat, classes, rng),
        );
        let fc_b = params.insert("fc.bias", Tensor::zeros(&[classes]));
        ConvNet {
            params,
            side,
            channels,
            conv_w,
            conv_b,
            fc_w,
            fc_b,
        }
    }
}

impl Model for ConvNet {
    fn params(&self) -> &ParamStore {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    fn input_features(&self) -> Option<usize> {
        Some(self.side * self.side)
    }

    fn output_activation(&self) -> Activation {
        Activation::Softmax
    }

    fn forward<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>) -> Result<Var<'t, f32>> {
        let n = x.shape()[0];
        let s = self.side;
        let img = x.reshape(&[n, 1, s, s])?;
        let h = img
            .conv2d(p[self.conv_w], Some(p[self.conv_b]), (1, 1), (1, 1))?
            .relu()
            .max_pool2d((2, 2), (2, 2))?;
        let flat = h.reshape(&[n, self.channels * (s / 2) * (s / 2)])?;
        Ok(flat.linear(p[self.fc_w], p[self.fc_b])?)
    }
}

/// Associative recall: `pairs` (key, value) tokens with distinct keys, then a query token
/// holding one of the keys; the answer is that key's value. Each row of `x` is
/// `[k1, v1, ..., kP, vP, q, NO_VALUE]` as numbers; the label is the value.
pub fn recall_data(
    n: usize,
    pairs: usize,
    keys: usize,
    values: usize,
    rng: &mut impl Rng,
) -> Dataset {
    let width = 2 * (pairs + 1);
    let mut x = Vec::with_capacity(n * width);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        // `pairs` distinct keys: a partial Fisher-Yates shuffle.
        let mut ks: Vec<usize> = (0..keys).collect();
        for i in 0..pairs {
            let j = rng.random_range(i..keys);
            ks.swap(i, j);
        }
        let vs: Vec<usize> = (0..pairs).map(|_| rng.random_range(0..values)).collect();
        for i in 0..pairs {
            x.push(ks[i] as f32);
            x.push(vs[i] as f32);
        }
        let asked = rng.random_range(0..pairs);
        x.push(ks[asked] as f32);
        x.push(values as f32); // the query's "no value yet" token
        labels.push(vs[asked]);
    }
    Dataset::classification(
        Tensor::from_vec(x, &[n, width]).expect("sizes agree"),
        labels,
    )
    .expect("labels agree")
}

/// The same rows one-hot encoded, for a multi-layer perceptron: per token `keys` key bits and
/// `values + 1` value bits.
pub fn one_hot_tokens(data: &Dataset, keys: usize, values: usize) -> Dataset {
    let (n, width) = (data.len(), data.num_features());
    let per = keys + values + 1;
    let tokens = width / 2;
    let src = data.x.as_slice();
    let x = Tensor::from_fn(&[n, tokens * per], |i| {
        let (r, c) = (i / (tokens * per), i % (tokens * per));
        let (t, bit) = (c / per, c % per);
        let (k, v) = (
            src[r * width + 2 * t] as usize,
            src[r * width + 2 * t + 1] as usize,
        );
        if bit == k || bit == keys + v {
            1.0
        } else {
            0.0
        }
    });
    Dataset::classification(x, data.labels().expect("labels").to_vec()).expect("same labels")
}

/// A decoder block over tokens that are (key, value) pairs: token embeddings, multi-head causal
/// self-attention and a GELU MLP, each behind layer norm with a residual sum, then a final
/// layer norm and a linear head on the last token. Returns logits over the values.
pub struct Transformer {
    pub params: ParamStore,
    pub tokens: usize,
    pub dim: usize,
    pub heads: usize,
    pub keys: usize,
    pub values: usize,
    ids: Vec<ParamId>,
}

impl Transformer {
    pub fn new(
        tokens: usize,
        keys: usize,
        values: usize,
        dim: usize,
        heads: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let mut params = ParamStore::new();
        let d = dim;
        let mut add = |name: &str, t: Tensor| params.insert(name, t);
        let emb = |n: usize, rng: &mut dyn Rng| {
            Init::Normal {
                mean: 0.0,
                std: 0.5,
            }
            .tensor(&[n, d], n, d, rng)
        };
        let lin =
            |a: usize, b: usize, rng: &mut dyn Rng| Init::XavierUniform.tensor(&[a, b], a, b, rng);
        let ids = vec![
            add("embed.key", emb(keys, rng)),
            add("embed.value", emb(values + 1, rng)),
            add("ln1.gamma", Tensor::ones(&[d])),
            add("ln1.beta", Tensor::zeros(&[d])),
            add("attn.qkv", lin(d, 3 * d, rng)),
            add("attn.out", lin(d, d, rng)),
            add("ln2.gamma", Tensor::ones(&[d])),
            add("ln2.beta", Tensor::zeros(&[d])),
            add("mlp.w1", lin(d, 4 * d, rng)),
            add("mlp.b1", Tensor::zeros(&[4 * d])),
            add("mlp.w2", lin(4 * d, d, rng)),
            add("mlp.b2", Tensor::zeros(&[d])),
            add("lnf.gamma", Tensor::ones(&[d])),
            add("lnf.beta", Tensor::zeros(&[d])),
            add("head.weight", lin(d, values, rng)),
            add("head.bias", Tensor::zeros(&[values])),
        ];
        Transformer {
            params,
            tokens,
            dim,
            heads,
            keys,
            values,
            ids,
        }
    }
}

impl Model for Transformer {
    fn params(&self) -> &ParamStore {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    fn input_features(&self) -> Option<usize> {
        Some(2 * self.tokens)
    }

    fn output_activation(&self) -> Activation {
        Activation::Softmax
    }

    fn forward<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>) -> Result<Var<'t, f32>> {
        let [
            ek,
            ev,
            g1,
            b1,
            qkv_w,
            out_w,
            g2,
            b2,
            w1,
            c1,
            w2,
            c2,
            gf,
            bf,
            hw,
            hb,
        ] = std::array::from_fn(|i| p[self.ids[i]]);
        let (n, t, d, h) = (x.shape()[0], self.tokens, self.dim, self.heads);
        let dh = d / h;
        // Token ids come from the data (a constant): embedding lookups are index selects.
        let raw = x.value();
        let ids = |offset: usize| -> Vec<usize> {
            raw.as_slice()
                .iter()
                .skip(offset)
                .step_by(2)
                .map(|&v| v as usize)
                .collect()
        };
        let e = ek
            .index_select(0, &ids(0))?
            .add(ev.index_select(0, &ids(1))?)?;
        let e = e.reshape(&[n, t, d])?;
        // Multi-head causal self-attention.
        let a = e.layer_norm(g1, b1, 1e-5)?;
        let qkv = a.matmul(qkv_w)?;
        let split = |k: usize| -> Result<Var<'t, f32>> {
            let part = qkv.narrow(2, k * d, d)?.reshape(&[n, t, h, dh])?;
            Ok(part.permute(&[0, 2, 1, 3])?)
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scores = q
            .matmul(k.transpose(2, 3)?)?
            .mul_scalar(1.0 / (dh as f32).sqrt());
        let future = Tensor::from_fn(&[t, t], |i| if i % t > i / t { 1.0 } else { 0.0 });
        let att = scores.masked_fill(&future, -1e9)?.softmax(3)?.matmul(v)?;
        let merged = att.permute(&[0, 2, 1, 3])?.reshape(&[n, t, d])?;
        let r = e.add(merged.matmul(out_w)?)?;
        // The MLP, with its residual sum.
        let m = r
            .layer_norm(g2, b2, 1e-5)?
            .linear(w1, c1)?
            .gelu()
            .linear(w2, c2)?;
        let r = r.add(m)?;
        // The answer is read at the last token.
        let last = r.narrow(1, t - 1, 1)?.reshape(&[n, d])?;
        Ok(last.layer_norm(gf, bf, 1e-5)?.linear(hw, hb)?)
    }
}

/// Loads the checkpoint at `path` into `fresh`, trains it on to `config.epochs` (without
/// checkpoints), and says whether its parameters end bit for bit on `reference`'s.
pub fn resumes_to<M: Model>(
    reference: &M,
    fresh: &mut M,
    path: &std::path::Path,
    data: &Dataset,
    config: &TrainConfig,
) -> Result<bool> {
    let mut state = load_checkpoint(path, fresh)?;
    let rest = TrainConfig {
        checkpoint_every: 0,
        checkpoint_path: None,
        ..config.clone()
    };
    nn::train_from(fresh, data, &rest, &mut state, |_, _| {})?;
    let bits = |m: &M| -> Vec<u32> {
        m.params()
            .iter()
            .flat_map(|(_, p)| {
                p.value()
                    .as_slice()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    Ok(bits(reference) == bits(fresh))
}
