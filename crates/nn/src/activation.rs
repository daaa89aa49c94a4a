//! Activations a neuron or layer applies after its affine map.

use std::fmt;

use tapegrad_autodiff::Var;
use tapegrad_tensor::{Float, Tensor};

use crate::error::Result;

/// The nonlinearity after a node's `x W + b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// 1 / (1 + e^-z): the classic neuron, and logistic regression's output.
    Sigmoid,
    /// tanh z.
    Tanh,
    /// max(z, 0).
    Relu,
    /// z unchanged (regression outputs, linear layers).
    Identity,
    /// Softmax across the node's outputs: multinomial logistic regression's output.
    Softmax,
}

impl Activation {
    /// Applies the activation to a tensor of shape `[batch, width]`.
    ///
    /// # Errors
    ///
    /// Softmax on a tensor of rank below 2.
    pub fn apply<E: Float>(self, z: &Tensor<E>) -> Result<Tensor<E>> {
        Ok(match self {
            Activation::Sigmoid => z.sigmoid(),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.relu(),
            Activation::Identity => z.clone(),
            Activation::Softmax => z.softmax(z.rank().saturating_sub(1))?,
        })
    }

    /// Applies the activation to a var of shape `[batch, width]`, recording it on the tape.
    ///
    /// # Errors
    ///
    /// Softmax on a var of rank 0.
    pub fn apply_var<'t, E: Float>(self, z: Var<'t, E>) -> Result<Var<'t, E>> {
        Ok(match self {
            Activation::Sigmoid => z.sigmoid(),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.relu(),
            Activation::Identity => z,
            Activation::Softmax => z.softmax(z.shape().len().saturating_sub(1))?,
        })
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Identity => "identity",
            Activation::Softmax => "softmax",
        })
    }
}
