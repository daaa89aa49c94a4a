#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod harness;

pub use tapegrad_autodiff as autodiff;
pub use tapegrad_nn as nn;
pub use tapegrad_tensor as tensor;

/// The `rand` version tapegrad is built against, re-exported so seeded generators always fit.
pub use rand;

/// One error type for the whole stack: every member crate's error converts into it with `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed (shapes, axes, indices).
    #[error(transparent)]
    Tensor(#[from] tapegrad_tensor::TensorError),
    /// Recording ops or running backward failed (another tape's var, a non-scalar loss, a NaN).
    #[error(transparent)]
    Autodiff(#[from] tapegrad_autodiff::AutodiffError),
    /// Building, running or training a network, or loading data, failed.
    #[error(transparent)]
    Nn(#[from] tapegrad_nn::NnError),
}

/// The names most programs need: `use tapegrad::prelude::*;`.
pub mod prelude {
    pub use tapegrad_autodiff::{Gradients, Tape, Var, gradcheck};
    pub use tapegrad_nn::{
        Activation, Dataset, Init, Loss, Model, Network, Optimizer, OptimizerKind, Outputs,
        ParamStore, TrainConfig,
    };
    pub use tapegrad_tensor::{Float, Tensor, Transpose};
}
