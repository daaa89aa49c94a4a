//! Training: shuffled mini-batches on one reused tape, an optimizer, and a per-epoch history.

use std::path::PathBuf;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngExt, SeedableRng};
use tapegrad_autodiff::{AutodiffError, Tape};
use tapegrad_tensor::{Float, Tensor};

use crate::data::{Dataset, Targets};
use crate::error::{NnError, Result, config, config as config_error};
use crate::loss::Loss;
use crate::metrics::class_of_row;
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
    if !E::from_f64(cfg.learning_rate).is_finite() {
        return Err(config(
            "learning_rate",
            format!(
                "{:e} overflows {} (the network's element type) to infinity",
                cfg.learning_rate,
                E::DTYPE
            ),
        ));
    }
    cfg.optimizer.validate_for::<E>()?;
    if data_set.is_empty() {
        return Err(data("train", "the dataset is empty"));
    }
    check_data(net, data_set, "train")?;
    cfg.loss.resolve(net, data_set)
}

/// The one check of a dataset against a network, made by every function that takes both
/// (training, loss, accuracy, the confusion matrix): the dataset agrees with itself
/// ([`Dataset::validate`]), its rows have the network's input width, and its targets are ones
/// the network can output (labels below its class count, or regression targets `[n, outputs]`).
pub(crate) fn check_data<E: Float>(
    net: &Network<E>,
    data_set: &Dataset<E>,
    op: &'static str,
) -> Result<()> {
    use crate::error::data;
    data_set.validate()?;
    let (n, d) = (data_set.len(), net.input_width());
    if data_set.num_features() != d {
        return Err(data(
            op,
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
                    op,
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
                    op,
                    format!(
                        "targets {:?} do not match outputs [{n}, {width}]",
                        y.shape()
                    ),
                ));
            }
        }
    }
    Ok(())
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

/// Trains `net` on `data` with mini-batch gradient descent; see [`train_with`] to watch
/// progress.
///
/// # Errors
///
/// [`NnError::Config`] or [`NnError::Data`] before any step when a setting or the data does not
/// fit (batch size 0, a NaN or negative learning rate, an empty dataset, a label out of range,
/// the wrong input width); [`NnError::NonFiniteAt`] with the finite check on; any error of the
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
    on_epoch: impl FnMut(&EpochStats, &Network<E>),
) -> Result<TrainReport> {
    validate(net, data, config)?;
    let mut state = TrainState::new(config, rng)?;
    train_from(net, data, config, &mut state, on_epoch)
}

/// Continues training from `state` (for example one loaded from a checkpoint) up to
/// `config.epochs` epochs in all. Given the same state, it produces bit for bit the parameters
/// an uninterrupted run would.
///
/// # Errors
///
/// As [`train`].
pub fn train_from<E: Float>(
    net: &mut Network<E>,
    data: &Dataset<E>,
    config: &TrainConfig,
    state: &mut TrainState<E>,
    mut on_epoch: impl FnMut(&EpochStats, &Network<E>),
) -> Result<TrainReport> {
    let loss_kind = validate(net, data, config)?;
    if config.checkpoint_every > 0 && config.checkpoint_path.is_none() {
        return Err(config_error(
            "checkpoint_path",
            "checkpoint_every is set but no checkpoint_path is given",
        ));
    }
    let lr = E::from_f64(config.learning_rate);
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
            let step = (|| -> Result<()> {
                let bound = net.bind(&tape);
                let x = tape.constant(xb);
                let out = net.forward_bound(&bound, x)?;
                let loss = loss_kind.on_batch(&tape, out, data, rows)?;
                let value = loss.item()?.to_f64();
                if let Some(labels) = data.labels() {
                    // From the logits: class 1 above 0 for one output, else the argmax.
                    hits += out.logits.with_value(|z| {
                        let k = z.shape()[1].max(1);
                        rows.iter()
                            .zip(z.as_slice().chunks_exact(k))
                            .filter(|&(&r, row)| labels[r] == class_of_row(row, E::ZERO))
                            .count()
                    });
                }
                loss_sum += value * rows.len() as f64;
                let grads = tape.backward(loss)?;
                state
                    .optimizer
                    .step(&mut net.params, |id| bound.var(id).map(|v| &grads[v]), lr)?;
                Ok(())
            })();
            step.map_err(|e| match e {
                NnError::Autodiff(source @ AutodiffError::NonFinite(_)) => NnError::NonFiniteAt {
                    epoch,
                    step: b + 1,
                    source,
                },
                other => other,
            })?;
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
            crate::checkpoint::save_checkpoint(path, net, state)?;
        }
        on_epoch(&stats, net);
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
