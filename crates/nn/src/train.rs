//! Training: shuffled mini-batches on one reused tape, an optimizer, and a per-epoch history.

use std::time::Instant;

use rand::Rng;
use rand::seq::SliceRandom;
use tapegrad_autodiff::Tape;
use tapegrad_tensor::{Float, Tensor};

use crate::data::{Dataset, Targets};
use crate::error::{NnError, Result, config};
use crate::loss::Loss;
use crate::network::Network;
use crate::optim::{Optimizer, OptimizerKind};

/// How to train. Build it with struct update syntax over the defaults:
/// `TrainConfig { epochs: 300, learning_rate: 0.5, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Samples per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// The step size.
    pub learning_rate: f64,
    /// The optimizer. The default, SGD with momentum 0.9, gets sigmoid networks off the
    /// plateaus where plain SGD sits for hundreds of epochs.
    pub optimizer: OptimizerKind,
    /// The loss; [`Loss::Auto`] follows the output width and targets.
    pub loss: Loss,
    /// Reshuffle the rows every epoch.
    pub shuffle: bool,
    /// Print one line per epoch to standard error.
    pub verbose: bool,
    /// Check every value and gradient for NaN and infinity, and stop on a non-finite loss.
    pub check_finite: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 100,
            batch_size: 32,
            learning_rate: 0.1,
            optimizer: OptimizerKind::sgd_momentum(0.9),
            loss: Loss::Auto,
            shuffle: true,
            verbose: false,
            check_finite: false,
        }
    }
}

/// What one epoch measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// The 1-based epoch.
    pub epoch: usize,
    /// The mean training loss over the epoch's batches (weighted by batch size).
    pub loss: f64,
    /// The training accuracy over the epoch's batches, as the network was during each batch
    /// (classification only).
    pub accuracy: Option<f64>,
    /// Wall time of the epoch.
    pub seconds: f64,
}

/// The result of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// One entry per epoch.
    pub history: Vec<EpochStats>,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Total wall time.
    pub seconds: f64,
    /// Samples processed per second.
    pub samples_per_second: f64,
}

impl TrainReport {
    /// The last epoch's statistics.
    pub fn last(&self) -> Option<&EpochStats> {
        self.history.last()
    }
}

/// Checks the settings and the data against the network before any training starts.
fn validate<E: Float>(net: &Network<E>, data_set: &Dataset<E>, cfg: &TrainConfig) -> Result<Loss> {
    use crate::error::data;
    if cfg.batch_size == 0 {
        return Err(config("batch_size", "must be at least 1, got 0"));
    }
    if !cfg.learning_rate.is_finite() || cfg.learning_rate < 0.0 {
        return Err(config(
            "learning_rate",
            format!("must be a finite number >= 0, got {}", cfg.learning_rate),
        ));
    }
    cfg.optimizer.validate()?;
    if data_set.is_empty() {
        return Err(data("train", "the dataset is empty"));
    }
    let (n, d) = (data_set.len(), net.input_width());
    if data_set.x.rank() != 2 || data_set.num_features() != d {
        return Err(data(
            "train",
            format!(
                "the network takes {d} input features, the data has shape {:?}",
                data_set.x.shape()
            ),
        ));
    }
    let width = net.output_width()?;
    match &data_set.y {
        Targets::Classes { labels, .. } => {
            let classes = if width == 1 { 2 } else { width };
            if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
                return Err(data(
                    "train",
                    format!(
                        "label {l} of row {i} is out of range: the network's {width} output(s) \
                         predict {classes} classes"
                    ),
                ));
            }
        }
        Targets::Values(y) => {
            if y.shape() != [n, width] {
                return Err(data(
                    "train",
                    format!(
                        "targets {:?} do not match outputs [{n}, {width}]",
                        y.shape()
                    ),
                ));
            }
        }
    }
    cfg.loss.resolve(net, data_set)
}

/// Trains `net` on `data` with mini-batch gradient descent; see [`train_with`] to watch
/// progress.
///
/// # Errors
///
/// [`NnError::Config`] or [`NnError::Data`] before any step when a setting or the data does not
/// fit (batch size 0, a NaN or negative learning rate, an empty dataset, a label out of range,
/// the wrong input width); [`NnError::NonFiniteLoss`] with the finite check on; any error of the
/// ops.
pub fn train<E: Float, R: Rng + ?Sized>(
    net: &mut Network<E>,
    data: &Dataset<E>,
    config: &TrainConfig,
    rng: &mut R,
) -> Result<TrainReport> {
    train_with(net, data, config, rng, |_, _| {})
}

/// [`train`], calling `on_epoch` with the epoch's statistics and the network after every epoch
/// (for progress bars, logging, looking at weights as they move).
///
/// # Errors
///
/// As [`train`].
pub fn train_with<E: Float, R: Rng + ?Sized>(
    net: &mut Network<E>,
    data: &Dataset<E>,
    config: &TrainConfig,
    rng: &mut R,
    mut on_epoch: impl FnMut(&EpochStats, &Network<E>),
) -> Result<TrainReport> {
    let loss_kind = validate(net, data, config)?;
    let mut optimizer = Optimizer::new(config.optimizer)?;
    let lr = E::from_f64(config.learning_rate);
    let n = data.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut tape = Tape::<E>::new();
    let mut history = Vec::with_capacity(config.epochs);
    let mut steps = 0;
    let start = Instant::now();
    for epoch in 1..=config.epochs {
        let epoch_start = Instant::now();
        if config.shuffle {
            order.shuffle(rng);
        }
        let (mut loss_sum, mut hits) = (0.0f64, 0usize);
        for (b, rows) in order.chunks(config.batch_size).enumerate() {
            tape.clear();
            tape.set_check_finite(config.check_finite);
            let xb: Tensor<E> = if rows.len() == n && rows.iter().enumerate().all(|(i, &r)| i == r)
            {
                data.x.clone()
            } else {
                data.x.select_rows(rows)?
            };
            let bound = net.bind(&tape);
            let x = tape.constant(xb);
            let out = net.forward_bound(&bound, x)?;
            let loss = loss_kind.on_batch(&tape, out, data, rows)?;
            let value = loss.item()?.to_f64();
            if config.check_finite && !value.is_finite() {
                return Err(NnError::NonFiniteLoss {
                    epoch,
                    step: b + 1,
                    loss: value,
                });
            }
            if let Some(labels) = data.labels() {
                let predicted = out.logits.with_value(|z| {
                    if z.shape()[1] == 1 {
                        z.as_slice()
                            .iter()
                            .map(|&v| usize::from(v > E::ZERO))
                            .collect()
                    } else {
                        z.argmax_indices(1).unwrap_or_default()
                    }
                });
                hits += rows
                    .iter()
                    .zip(predicted)
                    .filter(|&(&r, p)| labels[r] == p)
                    .count();
            }
            loss_sum += value * rows.len() as f64;
            let grads = tape.backward(loss)?;
            optimizer.step(&mut net.params, |id| bound.var(id).map(|v| &grads[v]), lr)?;
            steps += 1;
        }
        let stats = EpochStats {
            epoch,
            loss: loss_sum / n as f64,
            accuracy: data.labels().map(|_| hits as f64 / n as f64),
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        if config.verbose {
            match stats.accuracy {
                Some(a) => eprintln!("epoch {epoch:>4}  loss {:.5}  accuracy {a:.4}", stats.loss),
                None => eprintln!("epoch {epoch:>4}  loss {:.5}", stats.loss),
            }
        }
        on_epoch(&stats, net);
        history.push(stats);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(TrainReport {
        history,
        steps,
        seconds,
        samples_per_second: (n * config.epochs) as f64 / seconds.max(1e-12),
    })
}
