//! Training: shuffled mini-batches on one reused tape, an optimizer, and a per-epoch history.

use std::path::PathBuf;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngExt, SeedableRng};
use tapegrad_autodiff::{AutodiffError, Tape};
use tapegrad_tensor::{Float, Tensor};

use crate::data::Dataset;
use crate::error::{NnError, Result, config, config as config_error};
use crate::loss::Loss;
use crate::metrics::hits_in_logits;
use crate::model::{Model, check_data};
use crate::optim::{Optimizer, OptimizerKind};
use crate::params::ParamGrads;

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
    /// The loss; [`Loss::Auto`] follows the output width and targets; [`Loss::custom`] is a
    /// closure of your own.
    pub loss: Loss,
    /// Reshuffle the rows every epoch.
    pub shuffle: bool,
    /// Print one line per epoch to standard error.
    pub verbose: bool,
    /// Check every value and gradient for NaN and infinity, and stop on a non-finite loss.
    pub check_finite: bool,
    /// Save a checkpoint (parameters, optimizer state, epoch) every this many epochs; 0 never.
    pub checkpoint_every: usize,
    /// Where checkpoints go (a safetensors file, replaced atomically each time).
    pub checkpoint_path: Option<PathBuf>,
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
            checkpoint_every: 0,
            checkpoint_path: None,
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

/// Checks the settings and the data against the model before any training starts; returns the
/// loss with [`Loss::Auto`] resolved.
fn validate<E: Float, M: Model<E> + ?Sized>(
    model: &M,
    data_set: &Dataset<E>,
    cfg: &TrainConfig,
) -> Result<Loss> {
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
    if !E::from_f64(cfg.learning_rate).is_finite() {
        return Err(config(
            "learning_rate",
            format!(
                "{:e} overflows {} (the model's element type) to infinity",
                cfg.learning_rate,
                E::DTYPE
            ),
        ));
    }
    cfg.optimizer.validate_for::<E>()?;
    if data_set.is_empty() {
        return Err(data("train", "the dataset is empty"));
    }
    let width = check_data(model, data_set, "train")?;
    cfg.loss.resolve(width, data_set)
}

/// Everything training needs to continue exactly where it stopped: the optimizer with its
/// state, the epochs done, and the seed the per-epoch shuffles derive from. Saved and restored
/// by [`crate::checkpoint`].
#[derive(Debug, Clone)]
pub struct TrainState<E: Float = f32> {
    /// The optimizer and its per-parameter state.
    pub optimizer: Optimizer<E>,
    /// Epochs completed.
    pub epoch: usize,
    /// Epoch `e` shuffles with a generator seeded from this seed and `e`, so a resumed run
    /// shuffles exactly as an uninterrupted one.
    pub shuffle_seed: u64,
}

impl<E: Float> TrainState<E> {
    /// A fresh state for `config`, drawing the shuffle seed from `rng`.
    ///
    /// # Errors
    ///
    /// When the optimizer settings are out of range.
    pub fn new<R: Rng + ?Sized>(config: &TrainConfig, rng: &mut R) -> Result<Self> {
        Ok(TrainState {
            optimizer: Optimizer::new(config.optimizer)?,
            epoch: 0,
            shuffle_seed: rng.random(),
        })
    }
}

/// Trains `model` (a [`crate::Network`] or any [`Model`]) on `data` with mini-batch gradient
/// descent; see [`train_with`] to watch progress.
///
/// Each step binds the parameters to one reused tape (shared, not copied), records the
/// forward and the loss, takes the parameters' gradients, clears the tape and updates the
/// parameters in place ([`crate::ParamStore`] describes the lifecycle).
///
/// # Errors
///
/// [`NnError::Config`] or [`NnError::Data`] before any step when a setting or the data does not
/// fit (batch size 0, a NaN or negative learning rate, an empty dataset, a label out of range,
/// the wrong input width); [`NnError::NonFiniteAt`] with the finite check on; any error of the
/// ops.
pub fn train<E: Float, M: Model<E> + ?Sized, R: Rng + ?Sized>(
    model: &mut M,
    data: &Dataset<E>,
    config: &TrainConfig,
    rng: &mut R,
) -> Result<TrainReport> {
    train_with(model, data, config, rng, |_, _| {})
}

/// [`train`], calling `on_epoch` with the epoch's statistics and the model after every epoch
/// (for progress bars, logging, looking at weights as they move).
///
/// # Errors
///
/// As [`train`].
pub fn train_with<E: Float, M: Model<E> + ?Sized, R: Rng + ?Sized>(
    model: &mut M,
    data: &Dataset<E>,
    config: &TrainConfig,
    rng: &mut R,
    on_epoch: impl FnMut(&EpochStats, &M),
) -> Result<TrainReport> {
    // `train_from` checks the settings and the data (once).
    let mut state = TrainState::new(config, rng)?;
    train_from(model, data, config, &mut state, on_epoch)
}

/// Continues training from `state` (for example one loaded from a checkpoint) up to
/// `config.epochs` epochs in all. Given the same state, it produces bit for bit the parameters
/// an uninterrupted run would.
///
/// # Errors
///
/// As [`train`].
pub fn train_from<E: Float, M: Model<E> + ?Sized>(
    model: &mut M,
    data: &Dataset<E>,
    config: &TrainConfig,
    state: &mut TrainState<E>,
    mut on_epoch: impl FnMut(&EpochStats, &M),
) -> Result<TrainReport> {
    let loss_kind = validate(model, data, config)?;
    if config.checkpoint_every > 0 && config.checkpoint_path.is_none() {
        return Err(config_error(
            "checkpoint_path",
            "checkpoint_every is set but no checkpoint_path is given",
        ));
    }
    let n = data.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut tape = Tape::<E>::new();
    // Grown epoch by epoch: `epochs` is a bound, not a size to allocate up front.
    let mut history = Vec::new();
    let (mut steps, mut samples) = (0, 0);
    let start = Instant::now();
    for epoch in state.epoch + 1..=config.epochs {
        let epoch_start = Instant::now();
        if config.shuffle {
            order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
            let seed = state
                .shuffle_seed
                .wrapping_add((epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            order.shuffle(&mut StdRng::seed_from_u64(seed));
        }
        let (mut loss_sum, mut hits) = (0.0f64, 0usize);
        for (b, rows) in order.chunks(config.batch_size).enumerate() {
            tape.clear();
            tape.set_check_finite(config.check_finite);
            let in_order = rows.len() == n && rows.iter().enumerate().all(|(i, &r)| i == r);
            let xb: Tensor<E> = if in_order {
                data.x.clone()
            } else {
                data.x.select_rows(rows)?
            };
            let step = (|| -> Result<ParamGrads<E>> {
                let bound = model.params().bind(&tape);
                let x = tape.constant(xb);
                let out = model.outputs(&bound, x)?;
                let loss = loss_kind.on_batch(&tape, out, data, rows)?;
                let value = loss.item()?.to_f64();
                if let Some(labels) = data.labels() {
                    hits += out.logits.with_value(|z| hits_in_logits(z, rows, labels));
                }
                loss_sum += value * rows.len() as f64;
                bound.backward(loss)
            })();
            let grads = step.map_err(|e| match e {
                NnError::Autodiff(source @ AutodiffError::NonFinite(_)) => NnError::NonFiniteAt {
                    epoch,
                    step: b + 1,
                    source,
                },
                other => other,
            })?;
            // The tape lets go of the parameters, so the step updates them in place.
            tape.clear();
            state
                .optimizer
                .step(model.params_mut(), &grads, config.learning_rate)?;
            steps += 1;
            samples += rows.len();
        }
        state.epoch = epoch;
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
        if config.checkpoint_every > 0 && epoch % config.checkpoint_every == 0 {
            let path = config.checkpoint_path.as_ref().expect("checked above");
            crate::checkpoint::save_checkpoint(path, model, state)?;
        }
        on_epoch(&stats, model);
        history.push(stats);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(TrainReport {
        history,
        steps,
        seconds,
        samples_per_second: samples as f64 / seconds.max(1e-12),
    })
}
