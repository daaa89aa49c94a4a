//! `conv2d`: 2-D convolution of NCHW images with `[out, in, kh, kw]` weights (PyTorch's layout)
//! and an optional bias, as one node, by im2col and one product per image. The im2col columns
//! are kept for the backward: dW = sum over images of G X_cols^T, dX = col2im(W^T G), db = the
//! sum of G over images and positions.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// 2-D convolution (cross-correlation, as PyTorch's `conv2d`) of `[n, c, h, w]` with
    /// weights `[out, c, kh, kw]` and an optional bias `[out]`, moved by `stride` over the input
    /// padded by `padding` zeros: `[n, out, ho, wo]` with `ho = (h + 2 ph - kh) / sh + 1`.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_fn(&[1, 1, 3, 3], |i| i as f64));
    /// let w = tape.var(Tensor::ones(&[1, 1, 2, 2]));
    /// let b = tape.var(Tensor::from_vec(vec![0.5], &[1])?);
    /// let y = x.conv2d(w, Some(b), (1, 1), (0, 0))?;
    /// assert_eq!(y.value().to_vec(), vec![8.5, 12.5, 20.5, 24.5]);
    /// let g = tape.backward(y.sum())?;
    /// // The centre pixel is in all four windows, a corner in one.
    /// assert_eq!(g[x].to_vec(), vec![1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
    /// assert_eq!(g[b].to_vec(), vec![4.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an input not rank 4, weights whose channels do not match, a bias not `[out]`, a
    /// window that does not fit, a stride of 0, or vars of several tapes.
    pub fn conv2d(
        self,
        weight: Var<'t, E>,
        bias: Option<Var<'t, E>>,
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Self> {
        let (start, _) = self
            .tape()
            .push_indices(&[stride.0, stride.1, padding.0, padding.1]);
        let record = |v: &[&tapegrad_tensor::Tensor<E>]| {
            let (y, cols) = v[0].conv2d_with_columns(v[1], v.get(2).copied(), stride, padding)?;
            Ok((Op::Conv2d { start }, y, Some(cols)))
        };
        match bias {
            Some(b) => Var::record_nary(&[self, weight, b], "conv2d", record),
            None => Var::record_nary(&[self, weight], "conv2d", record),
        }
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, params: &[usize]) -> Result<()> {
    let (stride, padding) = ((params[0], params[1]), (params[2], params[3]));
    let (g, x, w) = (ctx.grad(), ctx.input(0), ctx.input(1));
    let want_b = ctx.arity() == 3 && ctx.wants(2);
    let (dx, dw, db) = g.conv2d_backward(
        x.shape(),
        ctx.saved(),
        w,
        (stride, padding),
        (ctx.wants(0), ctx.wants(1), want_b),
    )?;
    if let Some(db) = db {
        ctx.accumulate(2, db)?;
    }
    if let Some(dw) = dw {
        ctx.accumulate(1, dw)?;
    }
    if let Some(dx) = dx {
        ctx.accumulate(0, dx)?;
    }
    Ok(())
}
