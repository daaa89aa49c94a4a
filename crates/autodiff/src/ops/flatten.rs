//! `flatten`: a run of axes merged into one, recorded as a reshape (the gradient is reshaped
//! back).

use tapegrad_tensor::Float;

use super::Op;
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Axes `start` to `end`, inclusive (as `torch.flatten`), merged into one; recorded as a
    /// `reshape` node. `x.flatten(1, rank - 1)` turns a batch of images into rows.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::zeros(&[8, 3, 4, 5]));
    /// assert_eq!(x.flatten(1, 3)?.shape().as_slice(), &[8, 60]);
    /// assert_eq!(x.flatten(0, 1)?.shape().as_slice(), &[24, 4, 5]);
    /// assert!(x.flatten(2, 1).is_err());
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an axis past the last, or `start > end`.
    pub fn flatten(self, start: usize, end: usize) -> Result<Self> {
        self.try_record_unary(|x| Ok((Op::Reshape, x.flatten(start, end)?, None)))
    }
}
