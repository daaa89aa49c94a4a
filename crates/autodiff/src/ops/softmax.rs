//! `softmax`: y = exp(x - max) / sum(exp(x - max)) along an axis (stable at +-1000).
//! dx = y * (g - sum(g * y)) along the axis (the saved output is reused).

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Softmax along `axis`; dx = y (g - sum(g y)) along the axis.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![0.0, 0.0], &[1, 2])?);
    /// let y = x.softmax(1)?;
    /// assert_eq!(y.value().to_vec(), vec![0.5, 0.5]);
    /// let first = y.narrow(1, 0, 1)?.sum();
    /// assert_eq!(tape.backward(first)?[x].to_vec(), vec![0.25, -0.25]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis >= rank`.
    pub fn softmax(self, axis: usize) -> Result<Self> {
        self.try_record_unary(|x| {
            let value = x.softmax(axis)?;
            Ok((Op::Softmax { axis: axis as u32 }, value, None))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, axis: usize) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let (g, y) = (ctx.grad(), ctx.output());
    if axis + 1 == y.rank() {
        // The last axis: one pass per row for the dot product, one for the result.
        let n = y.shape()[axis].max(1);
        let mut dx = y.clone();
        for (out, grow) in dx
            .as_mut_slice()
            .chunks_exact_mut(n)
            .zip(g.as_slice().chunks_exact(n))
        {
            let dot = out
                .iter()
                .zip(grow)
                .fold(E::ZERO, |a, (&yv, &gv)| a + yv * gv);
            out.iter_mut()
                .zip(grow)
                .for_each(|(yv, &gv)| *yv *= gv - dot);
        }
        return ctx.accumulate(0, dx);
    }
    let dot = g.mul(y)?.sum_axis(axis, true)?;
    let dx = y.mul(&g.sub(&dot)?)?;
    ctx.accumulate(0, dx)
}
