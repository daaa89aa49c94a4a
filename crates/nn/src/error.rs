//! The nn crate's error type.

use std::path::PathBuf;

use thiserror::Error;

use tapegrad_autodiff::AutodiffError;
use tapegrad_tensor::TensorError;

/// Errors raised while building, running or training networks, and while loading data.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NnError {
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// Recording on the tape or running backward failed.
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    /// A training or model setting that cannot work, found before any training starts.
    #[error("invalid setting {setting}: {reason}")]
    Config {
        /// The setting's name (for example `batch_size`).
        setting: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// Data that does not fit the network or the task.
    #[error("invalid data for {op}: {reason}")]
    Data {
        /// What was being done.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A node id that does not belong to this network, or a node used in the wrong role.
    #[error("invalid node in {op}: {reason}")]
    Node {
        /// What was being done.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A parameter that cannot be used as asked: a value of the wrong shape, a name no
    /// parameter has, or an in-place update while a tape still shares the parameter.
    #[error("parameter {name} in {op}: {reason}")]
    Param {
        /// What was being done.
        op: &'static str,
        /// The parameter's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A malformed CSV file: names the file, the 1-based line and column.
    #[error("{file}:{line}:{column}: {reason}")]
    Csv {
        /// The file (or the name given to in-memory text).
        file: String,
        /// The 1-based line.
        line: usize,
        /// The 1-based column (field) number.
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// A malformed IDX file (the MNIST format): names the file and what is wrong.
    #[error("{file}: {reason}")]
    Idx {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The finite check found a NaN or infinity during training: where in training, and the
    /// tape's report naming the node, op, phase and values.
    #[error("non-finite value at epoch {epoch}, step {step}: {source}")]
    NonFiniteAt {
        /// The 1-based epoch.
        epoch: usize,
        /// The 1-based step within the epoch.
        step: usize,
        /// The tape's report.
        source: AutodiffError,
    },
    /// A checkpoint that does not fit the network, or is not a valid safetensors file.
    #[error("checkpoint {file}: {reason}")]
    Checkpoint {
        /// The file.
        file: String,
        /// Every mismatch, or what is wrong with the file.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Shorthand for results of nn operations.
pub type Result<T, E = NnError> = std::result::Result<T, E>;

pub(crate) fn config(setting: &'static str, reason: impl Into<String>) -> NnError {
    NnError::Config {
        setting,
        reason: reason.into(),
    }
}

pub(crate) fn data(op: &'static str, reason: impl Into<String>) -> NnError {
    NnError::Data {
        op,
        reason: reason.into(),
    }
}

pub(crate) fn param(
    op: &'static str,
    name: impl Into<String>,
    reason: impl Into<String>,
) -> NnError {
    NnError::Param {
        op,
        name: name.into(),
        reason: reason.into(),
    }
}
