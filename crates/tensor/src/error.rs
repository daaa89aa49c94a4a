//! The tensor crate's error type: every message names the op and the shapes involved.

use thiserror::Error;

/// Errors raised by tensor operations on user input.
///
/// Every variant names the operation (`op`) and the shapes or values that were wrong, so that a
/// message such as `shape mismatch in matmul: lhs [2, 3], rhs [4, 5]` can be acted on directly.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TensorError {
    /// Two operands whose shapes do not fit the operation (matmul, concat, ...).
    #[error("shape mismatch in {op}: lhs {lhs:?}, rhs {rhs:?}")]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// The left operand's shape.
        lhs: Vec<usize>,
        /// The right operand's shape.
        rhs: Vec<usize>,
    },
    /// Two shapes that cannot be broadcast together under NumPy rules.
    #[error("cannot broadcast in {op}: lhs {lhs:?}, rhs {rhs:?}")]
    Broadcast {
        /// The operation.
        op: &'static str,
        /// The left operand's shape.
        lhs: Vec<usize>,
        /// The right operand's shape (or the broadcast target).
        rhs: Vec<usize>,
    },
    /// A data buffer whose length does not match the element count of the requested shape.
    #[error("data length {len} does not match shape {shape:?} ({expected} elements) in {op}")]
    DataLength {
        /// The operation.
        op: &'static str,
        /// The buffer length given.
        len: usize,
        /// The shape requested.
        shape: Vec<usize>,
        /// The element count that shape needs.
        expected: usize,
    },
    /// An axis that does not exist for a tensor of this rank.
    #[error("axis {axis} out of range in {op} for shape {shape:?}")]
    Axis {
        /// The operation.
        op: &'static str,
        /// The axis given.
        axis: usize,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// An index (element, row, class or range) outside the tensor.
    #[error("index {index:?} out of range in {op} for shape {shape:?}")]
    Index {
        /// The operation.
        op: &'static str,
        /// The offending index.
        index: Vec<usize>,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// A tensor of the wrong rank for the operation.
    #[error("{op} expects {expected}, got shape {shape:?}")]
    Rank {
        /// The operation.
        op: &'static str,
        /// What the operation expects, in words (for example `a rank-2 tensor`).
        expected: &'static str,
        /// The shape given.
        shape: Vec<usize>,
    },
    /// A tensor that must hold exactly one element but does not.
    #[error("{op} needs exactly one element, got shape {shape:?}")]
    NotScalar {
        /// The operation.
        op: &'static str,
        /// The shape given.
        shape: Vec<usize>,
    },
    /// A shape whose element count does not fit the address space: the product of its sizes
    /// (zero sizes aside) overflows, or exceeds `isize::MAX`.
    #[error("shape {shape:?} in {op} is too large: the product of its sizes overflows")]
    TooLarge {
        /// The operation.
        op: &'static str,
        /// The shape requested.
        shape: Vec<usize>,
    },
    /// The memory for a result could not be allocated (the allocator refused it).
    #[error("cannot allocate {bytes} bytes for shape {shape:?} in {op}")]
    Alloc {
        /// The operation.
        op: &'static str,
        /// The shape of the result.
        shape: Vec<usize>,
        /// The bytes requested.
        bytes: u128,
    },
    /// Any other invalid argument, described in words.
    #[error("invalid argument in {op}: {reason}")]
    Invalid {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// Shorthand for results of tensor operations.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;
