//! The autodiff crate's error type.

use thiserror::Error;

use tapegrad_tensor::TensorError;

/// Errors raised while recording ops on a tape or running backward.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum AutodiffError {
    /// A tensor operation inside an op failed (shapes, axes, indices); the message names the op.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A `Var` was combined with a `Var` or `Gradients` of a different tape.
    #[error(
        "var from another tape used in {op}: a Var belongs to the Tape that created it \
         (var #{id})"
    )]
    ForeignVar {
        /// The operation.
        op: &'static str,
        /// The foreign var's node id.
        id: usize,
    },
    /// `backward` was called on a loss that does not hold exactly one element.
    #[error("backward needs a loss with exactly one element, got shape {shape:?}")]
    NonScalarLoss {
        /// The loss's shape.
        shape: Vec<usize>,
    },
    /// A NaN or infinity appeared while the tape's finite check was on.
    #[error("{0}")]
    NonFinite(Box<NonFiniteReport>),
}

/// Where a NaN or infinity appeared: the node, its op and label, the phase, the input shapes,
/// the first offending values and the trace rows around the node.
#[derive(Debug, Clone, PartialEq)]
pub struct NonFiniteReport {
    /// `"forward"` or `"backward"`.
    pub phase: &'static str,
    /// The node id.
    pub id: usize,
    /// The op's name.
    pub op: &'static str,
    /// The node's label, if it has one.
    pub label: Option<String>,
    /// The shapes of the node's inputs.
    pub input_shapes: Vec<Vec<usize>>,
    /// The first offending values (up to 4).
    pub values: Vec<f64>,
    /// Their flat indices in the value or gradient.
    pub indices: Vec<usize>,
    /// The trace rows around the node (the node's row is marked with `>`).
    pub context: String,
}

impl std::fmt::Display for NonFiniteReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.phase == "forward" {
            "value"
        } else {
            "gradient"
        };
        write!(
            f,
            "non-finite {} {what} at node #{} ({}",
            self.phase, self.id, self.op
        )?;
        if let Some(l) = &self.label {
            write!(f, " \"{l}\"")?;
        }
        write!(
            f,
            "): input shapes {:?}, first offending values {:?} at flat indices {:?}\n{}",
            self.input_shapes, self.values, self.indices, self.context
        )
    }
}

/// Shorthand for results of autodiff operations.
pub type Result<T, E = AutodiffError> = std::result::Result<T, E>;
