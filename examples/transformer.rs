//! A decoder block written as user code on `nn::Model` (token embeddings, two-head causal
//! self-attention, a GELU MLP, layer norms and residual sums) learns associative recall: eight
//! (key, value) pairs, then a key; the answer is its value. That task needs lookup by content,
//! which attention does in one step; a multi-layer perceptron of the same parameter count, fed
//! the same tokens one-hot, is trained beside it on the same data. Prints the table, draws the
//! test accuracy of both against the epoch, and checks that a run resumed from its mid-way
//! checkpoint ends bit for bit where the uninterrupted run does.
//!
//! Run: `cargo run --release --example transformer [-- --quick] [--out DIR]`.

mod common;
#[path = "common/models.rs"]
mod models;

use std::time::Instant;

use tapegrad::nn::{self, Activation, Model, Network, OptimizerKind, TrainConfig};
use tapegrad::rand::{SeedableRng, rngs::StdRng};

use models::{Transformer, one_hot_tokens, recall_data};

const PAIRS: usize = 8;
const KEYS: usize = 16;
const VALUES: usize = 16;

fn main() -> common::Res {
    let out = common::out_dir()?;
    let quick = common::quick();
    let mut rng = StdRng::seed_from_u64(0);
    let (n_train, epochs): (usize, usize) = if quick { (2000, 2) } else { (20_000, 40) };
    let train = recall_data(n_train, PAIRS, KEYS, VALUES, &mut rng);
    let test = recall_data(2000, PAIRS, KEYS, VALUES, &mut rng);
    let mut model = Transformer::new(PAIRS + 1, KEYS, VALUES, 32, 2, &mut rng);
    // An MLP with about as many parameters, on the one-hot tokens.
    let (train_hot, test_hot) = (
        one_hot_tokens(&train, KEYS, VALUES),
        one_hot_tokens(&test, KEYS, VALUES),
    );
    let d = train_hot.num_features();
    let hidden = (model.num_parameters() - VALUES) / (d + 1 + VALUES);
    let mut mlp = Network::<f32>::mlp_with(
        &[d, hidden, VALUES],
        Activation::Relu,
        Activation::Softmax,
        &mut rng,
    )?;
    println!(
        "associative recall: {PAIRS} (key, value) pairs of {KEYS} keys and {VALUES} values, then \
         a key; {} training and {} test sequences; chance {:.4}\n",
        train.len(),
        test.len(),
        1.0 / VALUES as f64
    );
    println!(
        "transformer (1 block, 2 heads, width 32): {} parameters",
        model.num_parameters()
    );
    println!(
        "MLP [{d}, {hidden}, {VALUES}] on one-hot tokens: {} parameters\n",
        mlp.num_parameters()
    );
    let mid = epochs.div_ceil(2);
    let ckpt = out.join("transformer.safetensors");
    let mid_ckpt = out.join("transformer_mid.safetensors");
    let config = TrainConfig {
        epochs,
        batch_size: 64,
        learning_rate: 3e-3,
        optimizer: OptimizerKind::adam(),
        checkpoint_every: mid,
        checkpoint_path: Some(ckpt.clone()),
        ..Default::default()
    };
    let mut curve_t = Vec::new();
    let mut failure = None;
    let start = Instant::now();
    nn::train_with(&mut model, &train, &config, &mut rng, |s, m| {
        curve_t.push((s.epoch as f64, m.accuracy(&test).unwrap_or(f64::NAN)));
        if s.epoch == mid
            && let Err(e) = std::fs::copy(&ckpt, &mid_ckpt)
        {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    let t_seconds = start.elapsed().as_secs_f64();
    let mlp_config = TrainConfig {
        checkpoint_every: 0,
        checkpoint_path: None,
        ..config.clone()
    };
    let mut curve_m = Vec::new();
    let start = Instant::now();
    nn::train_with(&mut mlp, &train_hot, &mlp_config, &mut rng, |s, m| {
        curve_m.push((s.epoch as f64, m.accuracy(&test_hot).unwrap_or(f64::NAN)));
    })?;
    let m_seconds = start.elapsed().as_secs_f64();
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>8}",
        "model", "params", "train acc", "test acc", "seconds"
    );
    let (t_acc, m_acc) = (model.accuracy(&test)?, mlp.accuracy(&test_hot)?);
    println!(
        "{:<12} {:>10} {:>10.4} {:>10.4} {:>8.1}",
        "transformer",
        model.num_parameters(),
        model.accuracy(&train)?,
        t_acc,
        t_seconds
    );
    println!(
        "{:<12} {:>10} {:>10.4} {:>10.4} {:>8.1}",
        "MLP",
        mlp.num_parameters(),
        mlp.accuracy(&train_hot)?,
        m_acc,
        m_seconds
    );

    // Resume from the mid-way checkpoint in a fresh model: the same bits at the end.
    let mut resumed = Transformer::new(
        PAIRS + 1,
        KEYS,
        VALUES,
        32,
        2,
        &mut StdRng::seed_from_u64(7),
    );
    let same = models::resumes_to(&model, &mut resumed, &mid_ckpt, &train, &config)?;
    println!(
        "\nresumed from the epoch-{mid} checkpoint: final parameters {} the uninterrupted run's",
        if same {
            "bit-identical to"
        } else {
            "DIFFERENT from"
        }
    );
    if !same {
        return Err("the resumed run differs".into());
    }
    let series = |name: &str, points, c| common::Series::line(name, points, common::color(c));
    let path = out.join("transformer_recall.svg");
    common::line_chart(
        &path,
        "associative recall: test accuracy",
        "epoch",
        "test accuracy",
        &[
            series("transformer (attention)", curve_t, 0),
            series("MLP, same parameter count", curve_m, 1),
        ],
    )?;
    println!("picture: {}", path.display());
    if !quick && t_acc < 0.95 {
        return Err(format!("transformer test accuracy {t_acc:.4} is below 0.95").into());
    }
    Ok(())
}
