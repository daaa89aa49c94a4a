//! tapegrad's playground: a local web page where a learner trains a network of sigmoid neurons
//! and steps through the very Wengert list that computes its gradients.
//!
//! `cargo run --release -p tapegrad-playground` serves <http://127.0.0.1:8080>. Training runs
//! in tapegrad on the server ([`session`]); the page gets a stream of server-sent events with
//! the decision boundary, every neuron's picture over the input plane, and the loss curves.
//! The tape tab records an expression on a real [`tapegrad_autodiff::Tape`] ([`expr`]) and
//! steps through [`tapegrad_autodiff::Tape::backward_steps`].
//!
//! ```no_run
//! use tapegrad_playground::{Server, ServerLimits};
//! let server = Server::start("127.0.0.1", 0, ServerLimits::default())?;
//! println!("http://{}", server.addr());
//! server.stop();
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]

mod assets;
pub mod expr;
mod server;
pub mod session;

pub use server::{Server, ServerLimits};
