//! `max_pool2d`: the maximum of each window of an NCHW input; the gradient flows to each
//! window's first maximal pixel (as PyTorch's), accumulating where windows overlap.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// 2-D max pooling of `[n, c, h, w]` over `kernel` windows moved by `stride` (no padding).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(
    ///     vec![1.0, 5.0, 2.0, 0.0, 3.0, 4.0, 9.0, 1.0, 0.0, 0.0, 1.0, 2.0, 7.0, 0.0, 3.0, 3.0],
    ///     &[1, 1, 4, 4],
    /// )?);
    /// let y = x.max_pool2d((2, 2), (2, 2))?;
    /// assert_eq!(y.value().to_vec(), vec![5.0, 9.0, 7.0, 3.0]);
    /// let g = tape.backward(y.sum())?;
    /// assert_eq!(g[x].as_slice().iter().sum::<f64>(), 4.0);
    /// assert_eq!(g[x].get(&[0, 0, 0, 1])?, 1.0);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an input not rank 4, a window that does not fit, or a stride of 0.
    pub fn max_pool2d(self, kernel: (usize, usize), stride: (usize, usize)) -> Result<Self> {
        // The argmax positions only where a gradient will flow back through them: inference
        // (`no_grad`, constants) keeps no index per output (`len` 0 on the tape).
        let keep = self.requires_grad() && self.tape().is_recording();
        let (y, at) = self.with_value(|x| {
            if keep {
                x.max_pool2d_with_indices(kernel, stride)
            } else {
                Ok((x.max_pool2d(kernel, stride)?, Vec::new()))
            }
        })?;
        let (params, _) = self
            .tape()
            .push_indices(&[kernel.0, kernel.1, stride.0, stride.1]);
        let (start, len) = self.tape().push_indices(&at);
        self.try_record_unary(|_| Ok((Op::MaxPool2d { start, len, params }, y, None)))
    }
}

/// Each window's gradient goes to the input element its maximum came from (the argmax
/// positions `at`): the backward of a gather by those positions.
pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, at: &[usize]) -> Result<()> {
    super::flat_index::backward_gather(ctx, at)
}
