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
    /// A var of the right tape, but recorded after the backward pass that made these
    /// gradients: they know nothing of it.
    #[error(
        "var #{id} used in {op} was recorded after this backward pass, which covers nodes #0 to \
         #{last}: run backward again to get its gradient"
    )]
    VarAfterBackward {
        /// The operation.
        op: &'static str,
        /// The var's node id.
        id: usize,
        /// The last node id the backward pass covered.
        last: usize,
    },
    /// `backward` was called on a loss that does not hold exactly one element.
    #[error("backward needs a loss with exactly one element, got shape {shape:?}")]
    NonScalarLoss {
        /// The loss's shape.
        shape: Vec<usize>,
    },
    /// [`crate::Tape::replay`] was given a value it cannot take.
    #[error("cannot replay with node #{id}: {reason}")]
    Replay {
        /// The node.
        id: usize,
        /// What is wrong.
        reason: String,
    },
    /// [`crate::Tape::grad`] met an op whose backward is not written with `Var` ops, so the
    /// gradient cannot be recorded as a graph (`backward` still differentiates it once).
    #[error(
        "{op} has no differentiable backward: Tape::grad cannot record its gradient as a graph \
         (Tape::backward still computes it)"
    )]
    NotTwiceDifferentiable {
        /// The op's name.
        op: String,
    },
    /// A user-defined op ([`crate::CustomOp`]) failed, or its backward broke its contract (the
    /// wrong number of gradients, a gradient of the wrong shape).
    #[error("custom op {op}: {reason}")]
    Custom {
        /// The op's name.
        op: String,
        /// What went wrong: the op's own error message, or the broken contract.
        reason: String,
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
    /// The node id: in the forward phase the node whose value is not finite; in the backward
    /// phase the node whose op's backward produced the non-finite gradient.
    pub id: usize,
    /// The op's name.
    pub op: String,
    /// The node's label, if it has one.
    pub label: Option<String>,
    /// In the backward phase, the input the gradient was flowing to: its node id, op and label.
    pub flowing_to: Option<(usize, String, Option<String>)>,
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
        let describe = |f: &mut std::fmt::Formatter<'_>, id, op: &str, label: &Option<String>| {
            write!(f, "node #{id} ({op}")?;
            if let Some(l) = label {
                write!(f, " \"{l}\"")?;
            }
            write!(f, ")")
        };
        match &self.flowing_to {
            None => {
                write!(f, "non-finite {} value at ", self.phase)?;
                describe(f, self.id, &self.op, &self.label)?;
            }
            Some((to, to_op, to_label)) => {
                write!(
                    f,
                    "non-finite {} gradient from the backward of ",
                    self.phase
                )?;
                describe(f, self.id, &self.op, &self.label)?;
                write!(f, " flowing to its input ")?;
                describe(f, *to, to_op, to_label)?;
            }
        }
        write!(
            f,
            ": input shapes {:?}, first offending values {:?} at flat indices {:?}\n{}",
            self.input_shapes, self.values, self.indices, self.context
        )
    }
}

/// Shorthand for results of autodiff operations.
pub type Result<T, E = AutodiffError> = std::result::Result<T, E>;
