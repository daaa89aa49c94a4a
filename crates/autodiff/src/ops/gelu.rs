//! `gelu`: Elementwise GELU, exact (PyTorch's default `approximate='none'`): y = x Phi(x), Phi the standard normal distribution function; dy/dx = Phi(x) + x phi(x). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise GELU, exact (PyTorch's default `approximate='none'`): y = x Phi(x), Phi the standard normal distribution function; dy/dx = Phi(x) + x phi(x).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.gelu();
    /// assert!((y.item()? - 0.0).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 0.5).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn gelu(self) -> Self {
        self.record_elementwise(Op::Gelu, forward, |x| x.gelu())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    x.gelu()
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, _y: E) -> E {
    g * gelu_derivative(x)
}

/// d/dx x Phi(x) = Phi(x) + x phi(x).
#[inline]
fn gelu_derivative<E: Float>(x: E) -> E {
    let half = E::from_f64(0.5);
    let cdf = half * (E::ONE + (x * E::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf());
    let pdf = E::from_f64(0.398_942_280_401_432_7) * (-half * x * x).exp();
    cdf + x * pdf
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
