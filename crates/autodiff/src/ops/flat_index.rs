//! Gather and scatter by flat index: the two linear maps that the differentiable backwards of
//! max pooling (and any op that routes elements by stored positions) are written with. Each
//! is the other's transpose, so each one's backward is the other: derivatives of any order go
//! through them. Internal: recorded by [`crate::Tape::grad`], never by user code.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// `y[i] = x.flat[indices[i]]` for the tape's index arena `start..start + len`; shape
    /// `[len]`.
    pub(crate) fn gather_flat(self, start: u32, len: u32) -> Result<Self> {
        let at = self.tape().store().indices[start as usize..(start + len) as usize].to_vec();
        self.try_record_unary(|x| {
            let xs = x.as_slice();
            let y = Tensor::from_vec(at.iter().map(|&i| xs[i]).collect(), &[at.len()])?;
            Ok((Op::GatherFlat { start, len }, y, None))
        })
    }

    /// `y = zeros([n]); y[indices[i]] += x.flat[i]` for the tape's index arena
    /// `start..start + len`.
    pub(crate) fn scatter_flat(self, start: u32, len: u32, n: usize) -> Result<Self> {
        let at = self.tape().store().indices[start as usize..(start + len) as usize].to_vec();
        self.try_record_unary(|x| {
            let mut y = Tensor::zeros(&[n]);
            let ys = y.as_mut_slice();
            for (&i, &v) in at.iter().zip(x.as_slice()) {
                ys[i] += v;
            }
            Ok((Op::ScatterFlat { start, len }, y, None))
        })
    }
}

/// The backward of a gather: the upstream gradient scattered back.
pub(super) fn backward_gather<E: Float>(ctx: &mut BackwardCtx<'_, E>, at: &[usize]) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let mut dx = Tensor::zeros(ctx.input(0).shape());
    let d = dx.as_mut_slice();
    for (&i, &g) in at.iter().zip(ctx.grad().as_slice()) {
        d[i] += g;
    }
    ctx.accumulate(0, dx)
}

/// The backward of a scatter: the upstream gradient gathered.
pub(super) fn backward_scatter<E: Float>(ctx: &mut BackwardCtx<'_, E>, at: &[usize]) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let g = ctx.grad().as_slice();
    let dx = Tensor::from_vec(at.iter().map(|&i| g[i]).collect(), ctx.input(0).shape())?;
    ctx.accumulate(0, dx)
}
