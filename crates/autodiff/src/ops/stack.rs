//! `stack`: vars of one shape joined along a new axis; input k's gradient is slice k of the
//! upstream gradient along that axis.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// Vars of one shape joined along a new axis `axis` (0 to rank inclusive), as one node
    /// (PyTorch's `torch.stack`); for example the hidden states of an RNN, step by step.
    ///
    /// ```
    /// use tapegrad_autodiff::{Tape, Var};
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// let b = tape.var(Tensor::from_vec(vec![3.0, 4.0], &[2])?);
    /// let s = Var::stack(&[a, b], 1)?;
    /// assert_eq!(s.shape().as_slice(), &[2, 2]);
    /// assert_eq!(s.value().to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
    /// let w = tape.constant(Tensor::from_vec(vec![1.0, 10.0, 100.0, 1000.0], &[2, 2])?);
    /// let g = tape.backward(s.mul(w)?.sum())?;
    /// assert_eq!((g[a].to_vec(), g[b].to_vec()), (vec![1.0, 100.0], vec![10.0, 1000.0]));
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an empty list, vars of different shapes or tapes, or `axis > rank`.
    pub fn stack(vars: &[Var<'t, E>], axis: usize) -> Result<Self> {
        Var::record_nary(vars, "stack", |values| {
            let value = Tensor::stack(values, axis)?;
            Ok((Op::Stack { axis: axis as u32 }, value, None))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, axis: usize) -> Result<()> {
    let g = ctx.grad();
    for k in 0..ctx.arity() {
        if ctx.wants(k) {
            let part = g.narrow(axis, k, 1)?.squeeze(axis)?;
            ctx.accumulate(k, part)?;
        }
    }
    Ok(())
}
