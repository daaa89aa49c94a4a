//! `log_softmax`: y = (x - max) - ln(sum(exp(x - max))) along an axis (finite at +-1000).
//! dx = g - exp(y) * sum(g) along the axis.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Log-softmax along `axis`; dx = g - softmax(x) sum(g) along the axis.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![0.0, 0.0], &[1, 2])?);
    /// let y = x.log_softmax(1)?;
    /// assert!((y.value().to_vec()[0] + std::f64::consts::LN_2).abs() < 1e-15);
    /// let first = y.narrow(1, 0, 1)?.sum();
    /// assert_eq!(tape.backward(first)?[x].to_vec(), vec![0.5, -0.5]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis >= rank`.
    pub fn log_softmax(self, axis: usize) -> Result<Self> {
        self.try_record_unary(|x| {
            let value = x.log_softmax(axis)?;
            Ok((Op::LogSoftmax { axis: axis as u32 }, value, None))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, axis: usize) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let (g, y) = (ctx.grad(), ctx.output());
    let total = g.sum_axis(axis, true)?;
    let dx = g.sub(&y.exp().mul(&total)?)?;
    ctx.accumulate(0, dx)
}
