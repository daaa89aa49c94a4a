//! One learner's network: its settings, data, training state and the pictures the page draws.

use base64::Engine as _;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tapegrad_nn::{
    Activation, Dataset, Loss, Model, Network, OptimizerKind, TrainConfig, TrainState, data,
    train_from,
};
use tapegrad_tensor::Tensor;

/// The most a request may ask of a session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Points in a dataset (train and test together).
    pub max_points: usize,
    /// Hidden layers.
    pub max_layers: usize,
    /// Neurons in one hidden layer.
    pub max_width: usize,
    /// Epochs per second a running session trains at most.
    pub max_speed: u32,
    /// Grid points along each side of the input plane in the pictures.
    pub grid: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_points: 2000,
            max_layers: 6,
            max_width: 12,
            max_speed: 1000,
            grid: 40,
        }
    }
}

/// A session's settings, as the page sends them. Every field has a default, so `{}` is a
/// valid configuration (XOR with one hidden layer of four sigmoid neurons).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `xor`, `circles`, `moons` or `spirals`.
    pub dataset: String,
    /// The standard deviation of the noise added to each point (an angle for spirals).
    pub noise: f64,
    /// Points in all, train and test.
    pub points: usize,
    /// The share of the points held out for the test loss.
    pub test_fraction: f64,
    /// Hidden layer widths; empty for logistic regression (one neuron).
    pub hidden: Vec<usize>,
    /// The hidden layers' activation: `sigmoid`, `tanh` or `relu`.
    pub activation: String,
    /// The step size.
    pub learning_rate: f64,
    /// Samples per step.
    pub batch_size: usize,
    /// `sgd`, `momentum` (SGD with momentum 0.9) or `adam`.
    pub optimizer: String,
    /// L2 regularization as weight decay: `lambda` added times each weight to its gradient.
    pub l2: f64,
    /// Epochs per second while running.
    pub speed: u32,
    /// The seed of the data, the initial weights and the shuffles.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dataset: "xor".into(),
            noise: 0.2,
            points: 300,
            test_fraction: 0.3,
            hidden: vec![4],
            activation: "sigmoid".into(),
            learning_rate: 0.3,
            batch_size: 10,
            optimizer: "momentum".into(),
            l2: 0.0,
            speed: 30,
            seed: 1,
        }
    }
}

/// A setting out of range, named.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// Checks every setting against `limits`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting out of range, its value and the range.
    pub fn validate(&self, limits: &Limits) -> Result<(), ConfigError> {
        let bad = |field: &str, msg: String| Err(ConfigError(format!("{field}: {msg}")));
        if !["xor", "circles", "moons", "spirals"].contains(&self.dataset.as_str()) {
            return bad(
                "dataset",
                format!(
                    "`{}` is not one of xor, circles, moons, spirals",
                    self.dataset
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.noise) {
            return bad("noise", format!("{} is outside 0..=1", self.noise));
        }
        if !(10..=limits.max_points).contains(&self.points) {
            return bad(
                "points",
                format!("{} is outside 10..={}", self.points, limits.max_points),
            );
        }
        if !(0.05..=0.9).contains(&self.test_fraction) {
            return bad(
                "test_fraction",
                format!("{} is outside 0.05..=0.9", self.test_fraction),
            );
        }
        if self.hidden.len() > limits.max_layers {
            return bad(
                "hidden",
                format!(
                    "{} layers; at most {}",
                    self.hidden.len(),
                    limits.max_layers
                ),
            );
        }
        if let Some(w) = self
            .hidden
            .iter()
            .find(|&&w| w == 0 || w > limits.max_width)
        {
            return bad(
                "hidden",
                format!(
                    "a layer of {w} neurons; each needs 1..={}",
                    limits.max_width
                ),
            );
        }
        self.activation()?;
        if !(self.learning_rate > 0.0 && self.learning_rate <= 10.0) {
            return bad(
                "learning_rate",
                format!("{} is outside (0, 10]", self.learning_rate),
            );
        }
        if !(1..=self.points).contains(&self.batch_size) {
            return bad(
                "batch_size",
                format!(
                    "{} is outside 1..={} (the points)",
                    self.batch_size, self.points
                ),
            );
        }
        self.optimizer_kind()?;
        if !(0.0..=1.0).contains(&self.l2) {
            return bad("l2", format!("{} is outside 0..=1", self.l2));
        }
        if !(1..=limits.max_speed).contains(&self.speed) {
            return bad(
                "speed",
                format!(
                    "{} epochs per second is outside 1..={}",
                    self.speed, limits.max_speed
                ),
            );
        }
        Ok(())
    }

    fn activation(&self) -> Result<Activation, ConfigError> {
        match self.activation.as_str() {
            "sigmoid" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            "relu" => Ok(Activation::Relu),
            other => Err(ConfigError(format!(
                "activation: `{other}` is not one of sigmoid, tanh, relu"
            ))),
        }
    }

    fn optimizer_kind(&self) -> Result<OptimizerKind, ConfigError> {
        let mut kind = match self.optimizer.as_str() {
            "sgd" => OptimizerKind::sgd(),
            "momentum" => OptimizerKind::sgd_momentum(0.9),
            "adam" => OptimizerKind::adam(),
            other => {
                return Err(ConfigError(format!(
                    "optimizer: `{other}` is not one of sgd, momentum, adam"
                )));
            }
        };
        match &mut kind {
            OptimizerKind::Sgd { weight_decay, .. } | OptimizerKind::Adam { weight_decay, .. } => {
                *weight_decay = self.l2;
            }
        }
        Ok(kind)
    }
}

/// One epoch's losses and accuracies, on the whole train and test sets after the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EpochPoint {
    /// The 1-based epoch (0 before training).
    pub epoch: usize,
    /// Mean binary cross-entropy on the training points.
    pub train_loss: f64,
    /// Mean binary cross-entropy on the held-out points.
    pub test_loss: f64,
    /// The share of training points on the right side of the boundary.
    pub train_accuracy: f64,
    /// The share of held-out points on the right side of the boundary.
    pub test_accuracy: f64,
}

/// The most epochs a session's loss curve keeps; older points are thinned out, every other
/// one dropped, so the curve keeps its shape.
const HISTORY: usize = 1000;

/// A network being trained, with its data.
pub struct Session {
    config: Config,
    net: Network<f64>,
    train: Dataset<f64>,
    test: Dataset<f64>,
    train_config: TrainConfig,
    state: TrainState<f64>,
    history: Vec<EpochPoint>,
    /// The square of the input plane the pictures cover: (x0, x1, y0, y1).
    domain: (f64, f64, f64, f64),
    grid: usize,
}

impl Session {
    /// A fresh network and dataset for `config` (checked against `limits`).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming a setting out of range.
    pub fn new(config: Config, limits: &Limits) -> Result<Self, ConfigError> {
        config.validate(limits)?;
        let internal = |e: tapegrad_nn::NnError| ConfigError(e.to_string());
        let mut rng = StdRng::seed_from_u64(config.seed);
        let all: Dataset<f64> = match config.dataset.as_str() {
            "xor" => data::xor(config.points, config.noise, &mut rng),
            "circles" => data::circles(config.points, config.noise, &mut rng),
            "moons" => data::moons(config.points, config.noise, &mut rng),
            _ => data::spirals(config.points, config.noise, &mut rng),
        };
        let (train, test) =
            data::train_test_split(&all, config.test_fraction, &mut rng).map_err(internal)?;
        let mut sizes = vec![2];
        sizes.extend(&config.hidden);
        sizes.push(1);
        let net = Network::mlp_with(&sizes, config.activation()?, Activation::Sigmoid, &mut rng)
            .map_err(internal)?;
        let train_config = TrainConfig {
            epochs: 0,
            batch_size: config.batch_size,
            learning_rate: config.learning_rate,
            optimizer: config.optimizer_kind()?,
            ..TrainConfig::default()
        };
        let state = TrainState::new(&train_config, &mut rng).map_err(internal)?;
        let domain = square_around(all.x.as_slice());
        let mut session = Session {
            config,
            net,
            train,
            test,
            train_config,
            state,
            history: Vec::new(),
            domain,
            grid: limits.grid,
        };
        let first = session.measure().map_err(internal)?;
        session.history.push(first);
        Ok(session)
    }

    /// Applies new settings, checked against `limits` before anything changes. The training
    /// settings (learning rate, batch size, optimizer, L2, speed) take effect from the next
    /// epoch and keep the network, its epoch and its loss curve, as in TensorFlow Playground;
    /// choosing another optimizer starts its state afresh. Any other change (data, layers,
    /// activation, seed) starts a new network. Returns whether it started over.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming a setting out of range; the session is then unchanged.
    pub fn apply(&mut self, config: Config, limits: &Limits) -> Result<bool, ConfigError> {
        config.validate(limits)?;
        let same_model = Config {
            learning_rate: self.config.learning_rate,
            batch_size: self.config.batch_size,
            optimizer: self.config.optimizer.clone(),
            l2: self.config.l2,
            speed: self.config.speed,
            ..config.clone()
        } == self.config;
        if !same_model {
            *self = Session::new(config, limits)?;
            return Ok(true);
        }
        let kind = config.optimizer_kind()?;
        if config.optimizer != self.config.optimizer {
            let fresh =
                tapegrad_nn::Optimizer::new(kind).map_err(|e| ConfigError(e.to_string()))?;
            self.state.optimizer = fresh;
        } else {
            self.state.optimizer.kind = kind;
        }
        self.train_config.optimizer = kind;
        self.train_config.learning_rate = config.learning_rate;
        self.train_config.batch_size = config.batch_size;
        self.config = config;
        Ok(false)
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Epochs trained.
    pub fn epoch(&self) -> usize {
        self.state.epoch
    }

    /// The loss curve so far.
    pub fn history(&self) -> &[EpochPoint] {
        &self.history
    }

    /// The network.
    pub fn network(&self) -> &Network<f64> {
        &self.net
    }

    /// Trains one epoch (one pass over the training points in mini-batches, shuffled) and
    /// measures both losses after it.
    ///
    /// # Errors
    ///
    /// Any error of training (a non-finite loss with a learning rate far too large).
    pub fn step_epoch(&mut self) -> Result<EpochPoint, tapegrad_nn::NnError> {
        self.train_config.epochs = self.state.epoch + 1;
        train_from(
            &mut self.net,
            &self.train,
            &self.train_config,
            &mut self.state,
            |_, _| {},
        )?;
        let point = self.measure()?;
        if !(point.train_loss.is_finite()) {
            return Err(tapegrad_nn::NnError::Config {
                setting: "learning_rate",
                reason: format!(
                    "the training loss became {} at epoch {}: lower the learning rate and reset",
                    point.train_loss, point.epoch
                ),
            });
        }
        self.history.push(point);
        if self.history.len() > HISTORY {
            // Keep the first and last points; drop every other one in between.
            let last = *self.history.last().expect("not empty");
            let mut kept: Vec<EpochPoint> = self.history.iter().step_by(2).copied().collect();
            if kept.last() != Some(&last) {
                kept.push(last);
            }
            self.history = kept;
        }
        Ok(point)
    }

    fn measure(&self) -> Result<EpochPoint, tapegrad_nn::NnError> {
        // One forward pass per set gives both its loss and its accuracy.
        let (train_loss, train_accuracy) = self.net.evaluate(&self.train, Loss::Auto)?;
        let (test_loss, test_accuracy) = self.net.evaluate(&self.test, Loss::Auto)?;
        Ok(EpochPoint {
            epoch: self.state.epoch,
            train_loss,
            test_loss,
            train_accuracy: train_accuracy.unwrap_or(f64::NAN),
            test_accuracy: test_accuracy.unwrap_or(f64::NAN),
        })
    }

    /// The points as `[x, y, label]` rows: (train, test).
    pub fn points(&self) -> Value {
        let rows = |d: &Dataset<f64>| -> Vec<[f64; 3]> {
            let labels = d.labels().unwrap_or(&[]);
            d.x.as_slice()
                .chunks_exact(2)
                .zip(labels)
                .map(|(p, &l)| [p[0], p[1], l as f64])
                .collect()
        };
        json!({ "train": rows(&self.train), "test": rows(&self.test) })
    }

    /// The grid of the input plane the pictures are drawn on, row by row from the top (largest
    /// y) so it maps onto a canvas: `grid * grid` rows of `[x, y]`.
    fn grid_points(&self) -> Tensor<f64> {
        let (x0, x1, y0, y1) = self.domain;
        let n = self.grid;
        let step = |a: f64, b: f64, i: usize| a + (b - a) * (i as f64 + 0.5) / n as f64;
        Tensor::from_fn(&[n * n, 2], |k| {
            let (row, col, coord) = (k / 2 / n, k / 2 % n, k % 2);
            if coord == 0 {
                step(x0, x1, col)
            } else {
                step(y1, y0, row)
            }
        })
    }

    /// Every neuron of every layer (hidden and output): its weights, bias, activation and its
    /// output over the input plane as a picture (`grid * grid` bytes, base64, scaled from
    /// `lo..hi` to 0..255).
    ///
    /// # Errors
    ///
    /// Any error of the forward pass (none for a network this module built).
    pub fn layers(&self) -> Result<Value, tapegrad_nn::NnError> {
        let grid = self.grid_points();
        let mut layers = Vec::new();
        for &id in self.net.node_ids() {
            let node = self.net.node(id).expect("the network's own node");
            let Some(act) = node.activation() else {
                continue; // the input
            };
            let out = self.net.activations(&grid, id)?;
            let width = node.width;
            let weight = self
                .net
                .param(&format!("{}.weight", node.name))
                .cloned()
                .unwrap_or_else(|| Tensor::zeros(&[0, width]));
            let bias = self
                .net
                .param(&format!("{}.bias", node.name))
                .cloned()
                .unwrap_or_else(|| Tensor::zeros(&[width]));
            let fan_in = weight.shape()[0];
            let w = weight.as_slice();
            let values = out.as_slice();
            let mut neurons = Vec::new();
            for j in 0..width {
                let column: Vec<f64> = (0..values.len() / width)
                    .map(|r| values[r * width + j])
                    .collect();
                let (lo, hi) = match act {
                    Activation::Sigmoid => (0.0, 1.0),
                    Activation::Tanh => (-1.0, 1.0),
                    _ => (0.0, column.iter().copied().fold(1e-9, f64::max)),
                };
                let bytes: Vec<u8> = column
                    .iter()
                    .map(|&v| (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8)
                    .collect();
                neurons.push(json!({
                    "weights": (0..fan_in).map(|i| w[i * width + j]).collect::<Vec<f64>>(),
                    "bias": bias.as_slice()[j],
                    "lo": lo,
                    "hi": hi,
                    "picture": base64::engine::general_purpose::STANDARD.encode(&bytes),
                }));
            }
            layers.push(json!({
                "name": node.name,
                "activation": format!("{act:?}").to_lowercase(),
                "neurons": neurons,
            }));
        }
        Ok(Value::Array(layers))
    }

    /// Everything the page draws, as JSON: settings, epoch, losses, the loss curve, the plane's
    /// square and grid size, and every neuron ([`Session::layers`]).
    ///
    /// # Errors
    ///
    /// As [`Session::layers`].
    pub fn snapshot(&self) -> Result<Value, tapegrad_nn::NnError> {
        let (x0, x1, y0, y1) = self.domain;
        Ok(json!({
            "config": self.config,
            "epoch": self.state.epoch,
            "last": self.history.last(),
            "history": self.history,
            "domain": { "x": [x0, x1], "y": [y0, y1] },
            "grid": self.grid,
            "layers": self.layers()?,
            "parameters": self.net.num_parameters(),
        }))
    }
}

/// A square around the points (interleaved x, y), with a margin, so circles look round.
fn square_around(xy: &[f64]) -> (f64, f64, f64, f64) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in xy.chunks_exact(2) {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    if x0 > x1 {
        return (-1.0, 1.0, -1.0, 1.0);
    }
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let half = ((x1 - x0).max(y1 - y0) / 2.0 * 1.1).max(0.5);
    (cx - half, cx + half, cy - half, cy + half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_needs_the_hidden_layer() {
        let limits = Limits::default();
        let config = Config {
            speed: 1000,
            ..Config::default()
        };
        let mut s = Session::new(config.clone(), &limits).unwrap();
        for _ in 0..150 {
            s.step_epoch().unwrap();
        }
        let last = *s.history().last().unwrap();
        assert!(last.test_accuracy >= 0.95, "{last:?}");
        assert!(last.train_loss < s.history()[0].train_loss / 3.0);
        // One neuron is logistic regression: no line separates XOR.
        let mut one = Session::new(
            Config {
                hidden: vec![],
                ..config
            },
            &limits,
        )
        .unwrap();
        for _ in 0..150 {
            one.step_epoch().unwrap();
        }
        assert!(one.history().last().unwrap().test_accuracy < 0.8);
    }

    #[test]
    fn pictures_and_weights_match_the_network() {
        let s = Session::new(Config::default(), &Limits::default()).unwrap();
        let layers = s.layers().unwrap();
        let layers = layers.as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0]["neurons"].as_array().unwrap().len(), 4);
        let n0 = &layers[0]["neurons"][0];
        let w = s.network().param("h1.weight").unwrap();
        assert_eq!(n0["weights"].as_array().unwrap().len(), 2);
        // A first-layer neuron is sigmoid(w . p + b): check one grid corner against its
        // picture byte.
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(n0["picture"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 40 * 40);
        let p = s.grid_points();
        let (px, py) = (p.as_slice()[0], p.as_slice()[1]);
        let wx = n0["weights"][0].as_f64().unwrap();
        let wy = n0["weights"][1].as_f64().unwrap();
        let b = n0["bias"].as_f64().unwrap();
        assert!(w.as_slice().contains(&wx) && w.as_slice().contains(&wy));
        let v = 1.0 / (1.0 + (-(wx * px + wy * py + b)).exp());
        assert!((bytes[0] as f64 - (v * 255.0).round()).abs() <= 1.0);
        // The top-left grid point is the smallest x and the largest y.
        assert!(px < 0.0 && py > 0.0);
    }

    #[test]
    fn training_settings_apply_without_starting_over() {
        let limits = Limits::default();
        let mut s = Session::new(Config::default(), &limits).unwrap();
        for _ in 0..5 {
            s.step_epoch().unwrap();
        }
        let w = s.network().param("h1.weight").unwrap().clone();
        let faster = Config {
            learning_rate: 0.05,
            optimizer: "adam".into(),
            l2: 0.01,
            speed: 100,
            batch_size: 20,
            ..Config::default()
        };
        assert!(!s.apply(faster.clone(), &limits).unwrap());
        assert_eq!((s.epoch(), s.history().len()), (5, 6));
        assert_eq!(s.network().param("h1.weight").unwrap(), &w);
        assert_eq!(s.config(), &faster);
        s.step_epoch().unwrap();
        assert_eq!(s.epoch(), 6);
        // A refused setting changes nothing; a new layer starts over.
        assert!(
            s.apply(
                Config {
                    batch_size: 0,
                    ..faster.clone()
                },
                &limits
            )
            .is_err()
        );
        assert_eq!(s.config(), &faster);
        assert!(
            s.apply(
                Config {
                    hidden: vec![3, 3],
                    ..faster
                },
                &limits
            )
            .unwrap()
        );
        assert_eq!((s.epoch(), s.history().len()), (0, 1));
        assert!(s.network().param("h2.weight").is_some());
    }

    #[test]
    fn settings_out_of_range_are_named() {
        let limits = Limits::default();
        for (config, field) in [
            (
                Config {
                    dataset: "mnist".into(),
                    ..Config::default()
                },
                "dataset",
            ),
            (
                Config {
                    points: 1_000_000,
                    ..Config::default()
                },
                "points",
            ),
            (
                Config {
                    hidden: vec![4; 50],
                    ..Config::default()
                },
                "hidden",
            ),
            (
                Config {
                    hidden: vec![0],
                    ..Config::default()
                },
                "hidden",
            ),
            (
                Config {
                    learning_rate: f64::NAN,
                    ..Config::default()
                },
                "learning_rate",
            ),
            (
                Config {
                    batch_size: 0,
                    ..Config::default()
                },
                "batch_size",
            ),
            (
                Config {
                    optimizer: "lbfgs".into(),
                    ..Config::default()
                },
                "optimizer",
            ),
            (
                Config {
                    activation: "softmax".into(),
                    ..Config::default()
                },
                "activation",
            ),
            (
                Config {
                    speed: 0,
                    ..Config::default()
                },
                "speed",
            ),
        ] {
            let e = Session::new(config, &limits).err().expect("refused");
            assert!(e.0.starts_with(field), "{field}: {}", e.0);
        }
    }
}
