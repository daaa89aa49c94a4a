//! `silu`: Elementwise SiLU (swish): y = x sigmoid(x); dy/dx = s (1 + x (1 - s)) with s = sigmoid(x). Shapes: any; the output has the input's shape.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Elementwise SiLU (swish): y = x sigmoid(x); dy/dx = s (1 + x (1 - s)) with s = sigmoid(x).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.silu();
    /// assert!((y.item()? - 0.0).abs() < 1e-12);
    /// assert!((tape.backward(y)?[x].item()? - 0.5).abs() < 1e-12);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[doc(alias = "swish")]
    #[inline]
    pub fn silu(self) -> Self {
        self.record_elementwise(Op::Silu, forward, |x| x.silu())
    }
}

/// y for one element.
#[inline]
pub(super) fn forward<E: Float>(x: E) -> E {
    x.silu()
}

/// The gradient contribution g dy/dx for one element (x the input, y the output).
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, _y: E) -> E {
    {
        let s = x.sigmoid();
        g * s * (E::ONE + x * (E::ONE - s))
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
