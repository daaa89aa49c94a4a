//! Neural networks for tapegrad: sigmoid neurons and layers as graph nodes, networks built from
//! them, losses, optimizers, initializers, datasets and training.
//!
//! Logistic regression is literally a one-node network ([`Network::logistic_regression`]); a
//! hidden layer is a node whose outputs you can look at ([`Network::activations`]), the learned
//! feature space in which the output neuron is again a logistic regression.
//!
//! ```
//! use rand::{SeedableRng, rngs::StdRng};
//! use tapegrad_nn::{Model, Network, TrainConfig, data, train};
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! let xor = data::xor::<f32, _>(400, 0.1, &mut rng);
//! let mut logreg = Network::logistic_regression(2, &mut rng);
//! let mut mlp = Network::mlp(&[2, 8, 1], &mut rng);
//! let config = TrainConfig { epochs: 200, learning_rate: 0.5, ..Default::default() };
//! train(&mut logreg, &xor, &config, &mut rng)?;
//! train(&mut mlp, &xor, &config, &mut rng)?;
//! assert!(logreg.accuracy(&xor)? < 0.8); // no line separates XOR
//! assert!(mlp.accuracy(&xor)? > 0.95); // a hidden layer makes it separable
//! # Ok::<(), tapegrad_nn::NnError>(())
//! ```
#![deny(missing_docs)]

mod activation;
pub mod boundary;
pub mod checkpoint;
pub mod data;
mod error;
mod init;
mod loss;
mod metrics;
mod model;
mod network;
mod optim;
mod params;
mod train;

pub use activation::Activation;
pub use data::{Dataset, Standardizer, Targets};
pub use error::{NnError, Result};
pub use init::Init;
pub use loss::{CustomLoss, Loss, LossFn};
pub use metrics::{ConfusionMatrix, accuracy};
pub use model::{EVAL_BATCH, Model, Outputs};
pub use network::{CustomNode, Network, Node, NodeId, NodeKind};
pub use optim::{MAX_STEPS, Optimizer, OptimizerKind, ParamState};
pub use params::{Bound, Param, ParamGrads, ParamId, ParamStore};
pub use train::{EpochStats, TrainConfig, TrainReport, TrainState, train, train_from, train_with};
