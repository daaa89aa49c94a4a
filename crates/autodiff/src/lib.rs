//! Reverse-mode automatic differentiation on a tape (a Wengert list).
//!
//! Every op on a [`Var`] records one node on its [`Tape`]: the op, its input ids, its forward
//! value and what its backward needs. [`Tape::backward`] walks the list once in reverse and
//! accumulates each node's gradient into its inputs' gradients: no topological sort, no
//! reference-counted graph, no boxed closure per node.
//!
//! ```
//! use tapegrad_autodiff::Tape;
//! use tapegrad_tensor::Tensor;
//!
//! let tape = Tape::<f64>::new();
//! let a = tape.var(Tensor::scalar(2.0)).named("a");
//! let b = tape.var(Tensor::scalar(-3.0)).named("b");
//! let c = (a * b + a).tanh();
//! let grads = tape.backward(c)?;
//! // dc/da = (1 - tanh^2(ab + a)) (b + 1)
//! let expect = (1.0 - (-4.0f64).tanh().powi(2)) * -2.0;
//! assert!((grads[a].item()? - expect).abs() < 1e-12);
//! println!("{}", tape.trace_with(&grads));
//! # Ok::<(), tapegrad_autodiff::AutodiffError>(())
//! ```
//!
//! Every op lives in its own file under `ops/`, forward beside backward; [`gradcheck`] checks
//! any function of vars against central differences, so users can check their own ops.
#![deny(missing_docs)]

mod anomaly;
mod custom;
mod error;
mod gradcheck;
mod gradients;
mod higher;
mod ops;
mod profile;
mod replay;
mod steps;
mod tape;
mod trace;
mod var;

pub use custom::CustomOp;
pub use error::{AutodiffError, NonFiniteReport, Result};
pub use gradcheck::{GradcheckReport, InputCheck, gradcheck, gradcheck_with_step};
pub use gradients::Gradients;
pub use higher::{gradgradcheck, hessian, hvp, jacobian};
pub use profile::{Profile, ProfileRow};
pub use steps::{BackwardStep, TraceRow};
pub use tape::Tape;
pub use var::Var;
