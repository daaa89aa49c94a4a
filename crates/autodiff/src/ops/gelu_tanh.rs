//! `gelu_tanh`: Elementwise GELU, tanh approximation (PyTorch's `approximate='tanh'`): y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise GELU, tanh approximation (PyTorch's `approximate='tanh'`): y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.gelu_tanh();
    /// assert!((y.item()? - 0.0).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 0.5).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn gelu_tanh(self) -> Self {
        self.record_elementwise(Op::GeluTanh, forward, |x| x.gelu_tanh())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    x.gelu_tanh()
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, _y: E) -> E {
    g * gelu_tanh_derivative(x)
}

/// d/dx of 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3):
/// 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2), t = tanh(u).
#[inline]
fn gelu_tanh_derivative<E: Float>(x: E) -> E {
    let half = E::from_f64(0.5);
    let t =
        (E::from_f64(0.797_884_560_802_865_4) * (x + E::from_f64(0.044_715) * x * x * x)).tanh();
    let du = E::from_f64(0.797_884_560_802_865_4) * (E::ONE + E::from_f64(3.0 * 0.044_715) * x * x);
    half * (E::ONE + t) + half * x * (E::ONE - t * t) * du
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
