//! Weight initializers, all seeded: the same generator state gives the same weights.

use rand::Rng;
use tapegrad_tensor::{Float, Tensor};

use crate::activation::Activation;

/// How a weight matrix (or bias) is filled before training.
///
/// `fan_in` and `fan_out` are the layer's input and output widths. Xavier/Glorot keeps the
/// variance of activations and gradients roughly constant through sigmoid and tanh layers;
/// He does the same for ReLU layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All zeros. For weights this makes every unit of a layer identical forever (the symmetry
    /// problem); it is here to show that.
    Zeros,
    /// Every element the same value.
    Constant(f64),
    /// Uniform on `[low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Glorot & Bengio (2010): uniform on +-sqrt(6 / (fan_in + fan_out)).
    XavierUniform,
    /// Glorot & Bengio (2010): normal with std sqrt(2 / (fan_in + fan_out)).
    XavierNormal,
    /// He et al. (2015): uniform on +-sqrt(6 / fan_in).
    HeUniform,
    /// He et al. (2015): normal with std sqrt(2 / fan_in).
    HeNormal,
}

impl Init {
    /// The default for weights feeding an activation: He for ReLU, Xavier (uniform) otherwise.
    pub fn default_for(activation: Activation) -> Init {
        match activation {
            Activation::Relu => Init::HeUniform,
            _ => Init::XavierUniform,
        }
    }

    /// A tensor of `shape` filled by this rule for a layer with the given fan-in and fan-out.
    ///
    /// # Panics
    ///
    /// Where [`Init::try_tensor`] returns an error.
    #[track_caller]
    pub fn tensor<E: Float, R: Rng + ?Sized>(
        &self,
        shape: &[usize],
        fan_in: usize,
        fan_out: usize,
        rng: &mut R,
    ) -> Tensor<E> {
        self.try_tensor(shape, fan_in, fan_out, rng)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Init::tensor`], with an error instead of a panic.
    ///
    /// # Errors
    ///
    /// [`tapegrad_tensor::TensorError::TooLarge`] when the shape's element count overflows and
    /// [`tapegrad_tensor::TensorError::Alloc`] naming the shape and bytes when the memory cannot
    /// be had.
    pub fn try_tensor<E: Float, R: Rng + ?Sized>(
        &self,
        shape: &[usize],
        fan_in: usize,
        fan_out: usize,
        rng: &mut R,
    ) -> tapegrad_tensor::Result<Tensor<E>> {
        let f = |v: f64| E::from_f64(v);
        let (fi, fo) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        match *self {
            Init::Zeros => Tensor::try_zeros(shape),
            Init::Constant(c) => Tensor::try_full(shape, f(c)),
            Init::Uniform { low, high } => Tensor::try_rand_uniform(shape, f(low), f(high), rng),
            Init::Normal { mean, std } => Tensor::try_randn(shape, f(mean), f(std), rng),
            Init::XavierUniform => {
                let a = (6.0 / (fi + fo)).sqrt();
                Tensor::try_rand_uniform(shape, f(-a), f(a), rng)
            }
            Init::XavierNormal => {
                Tensor::try_randn(shape, E::ZERO, f((2.0 / (fi + fo)).sqrt()), rng)
            }
            Init::HeUniform => {
                let a = (6.0 / fi).sqrt();
                Tensor::try_rand_uniform(shape, f(-a), f(a), rng)
            }
            Init::HeNormal => Tensor::try_randn(shape, E::ZERO, f((2.0 / fi).sqrt()), rng),
        }
    }
}
