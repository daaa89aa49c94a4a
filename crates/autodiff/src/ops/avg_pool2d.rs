//! `avg_pool2d`: the mean of each window of an NCHW input; each window's upstream gradient is
//! spread evenly over its pixels.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// 2-D average pooling of `[n, c, h, w]` over `kernel` windows moved by `stride` (no
    /// padding).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_fn(&[1, 1, 2, 4], |i| i as f64));
    /// let y = x.avg_pool2d((2, 2), (2, 2))?;
    /// assert_eq!(y.value().to_vec(), vec![2.5, 4.5]);
    /// assert_eq!(tape.backward(y.sum())?[x].to_vec(), vec![0.25; 8]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an input not rank 4, a window that does not fit, or a stride of 0.
    pub fn avg_pool2d(self, kernel: (usize, usize), stride: (usize, usize)) -> Result<Self> {
        let (start, _) = self
            .tape()
            .push_indices(&[kernel.0, kernel.1, stride.0, stride.1]);
        self.try_record_unary(|x| {
            Ok((Op::AvgPool2d { start }, x.avg_pool2d(kernel, stride)?, None))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, params: &[usize]) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let dx = ctx.grad().avg_pool2d_backward(
        ctx.input(0).shape(),
        (params[0], params[1]),
        (params[2], params[3]),
    )?;
    ctx.accumulate(0, dx)
}
