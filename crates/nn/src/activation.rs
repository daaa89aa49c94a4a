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

    /// The dense layer `activation(x W + b)` as one fused node (`linear_sigmoid`,
    /// `linear_tanh`, `linear_relu`), with the same values and gradients as
    /// [`Var::linear`] then [`Activation::apply_var`]; `None` for an activation without a fused
    /// form (identity, softmax), which the caller records as two nodes.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::Activation;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, -2.0], &[1, 2])?);
    /// let w = tape.var(Tensor::from_vec(vec![0.5, -1.0, 0.25, 2.0], &[2, 2])?);
    /// let b = tape.var(Tensor::from_vec(vec![0.0, 1.0], &[2])?);
    /// let y = Activation::Relu.dense_var(x, w, b)?.expect("relu fuses");
    /// assert_eq!(y.value().to_vec(), vec![0.0, 0.0]); // relu([0, -4])
    /// assert_eq!(y.op_name(), "linear_relu");
    /// assert!(Activation::Softmax.dense_var(x, w, b)?.is_none());
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Var::linear`].
    pub fn dense_var<'t, E: Float>(
        self,
        x: Var<'t, E>,
        w: Var<'t, E>,
        b: Var<'t, E>,
    ) -> Result<Option<Var<'t, E>>> {
        Ok(match self {
            Activation::Sigmoid => Some(x.linear_sigmoid(w, b)?),
            Activation::Tanh => Some(x.linear_tanh(w, b)?),
            Activation::Relu => Some(x.linear_relu(w, b)?),
            Activation::Identity | Activation::Softmax => None,
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
