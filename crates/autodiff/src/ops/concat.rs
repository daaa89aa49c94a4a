//! `concat`: joins vars along an axis; each input's gradient is its slice of the upstream
//! gradient.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// Joins `vars` along `axis` (all other axes must agree); each gradient is the matching
    /// slice of the upstream gradient.
    ///
    /// ```
    /// use tapegrad_autodiff::{Tape, Var};
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::ones(&[2, 1]));
    /// let b = tape.var(Tensor::ones(&[2, 2]));
    /// let c = Var::concat(&[a, b], 1)?;
    /// assert_eq!(c.shape().as_slice(), &[2, 3]);
    /// let w = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?);
    /// let grads = tape.backward(c.mul(w)?.sum())?;
    /// assert_eq!(grads[a].to_vec(), vec![1.0, 4.0]);
    /// assert_eq!(grads[b].to_vec(), vec![2.0, 3.0, 5.0, 6.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an empty list, a bad axis, shapes that disagree off `axis`, or vars of several tapes.
    pub fn concat(vars: &[Var<'t, E>], axis: usize) -> Result<Self> {
        Var::record_nary(vars, "concat", |values| {
            let value = Tensor::concat(values, axis)?;
            Ok((Op::Concat { axis: axis as u32 }, value, None))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, axis: usize) -> Result<()> {
    let g = ctx.grad();
    let mut start = 0;
    for k in 0..ctx.arity() {
        let len = ctx.input(k).shape()[axis];
        if ctx.wants(k) {
            let part = g.narrow(axis, start, len)?;
            ctx.accumulate(k, part)?;
        }
        start += len;
    }
    Ok(())
}
