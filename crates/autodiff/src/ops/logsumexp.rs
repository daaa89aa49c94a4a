//! `logsumexp`: ln(sum(exp(x))) along an axis, computed stably; the gradient is the softmax
//! of the input along that axis times the upstream gradient.

use tapegrad_tensor::{Float, Tensor};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// ln(sum(exp(x))) along `axis`, as m + ln(sum(exp(x - m))) with m the maximum: finite for
    /// inputs of +-1000. The gradient is softmax(x) along the axis.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1000.0, 1000.0], &[1, 2])?);
    /// let y = x.logsumexp(1, false)?;
    /// assert!((y.item()? - (1000.0 + 2f64.ln())).abs() < 1e-9);
    /// assert_eq!(tape.backward(y.sum())?[x].to_vec(), vec![0.5, 0.5]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis >= rank`.
    pub fn logsumexp(self, axis: usize, keepdim: bool) -> Result<Self> {
        self.try_record_unary(|x| {
            let value = x.logsumexp(axis, keepdim)?;
            Ok((
                Op::Logsumexp {
                    axis: axis as u32,
                    keepdim,
                },
                value,
                None,
            ))
        })
    }
}

pub(super) fn backward<E: Float>(
    ctx: &mut BackwardCtx<'_, E>,
    axis: usize,
    keepdim: bool,
) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let (x, y, g) = (ctx.input(0), ctx.output(), ctx.grad());
    let (y, g) = if keepdim {
        (y.clone(), g.clone())
    } else {
        (y.unsqueeze(axis)?, g.unsqueeze(axis)?)
    };
    // softmax(x) along the axis, from x itself (exp(x - y) would carry y's rounding); 0 where
    // the whole slice is -inf.
    let p = x.softmax(axis)?.zip_with(&y, "logsumexp", |p, y| {
        if y == E::neg_infinity() { E::ZERO } else { p }
    })?;
    let t: Tensor<E> = p.mul(&g)?;
    ctx.accumulate(0, t)
}
