//! `scalar_div`: y = c / x for a constant c; dy/dx = -c / x^2 = -y / x.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// y = c / x elementwise; dy/dx = -c / x^2. Also reached as `c / x` with the operator.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let y = x.rdiv_scalar(10.0);
    /// assert_eq!(y.item()?, 5.0);
    /// assert_eq!(tape.backward(y)?[x].item()?, -2.5);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    #[inline]
    pub fn rdiv_scalar(self, c: E) -> Self {
        self.record_elementwise(Op::ScalarDiv(c), |v| c / v, |x| x.map(|v| c / v))
    }
}

/// The gradient contribution g dy/dx = -g c / x^2 = -g y / x for one element.
#[inline]
pub(super) fn derivative<E: Float>(g: E, x: E, y: E) -> E {
    -g * y / x
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    ctx.accumulate_elementwise(0, derivative)
}
