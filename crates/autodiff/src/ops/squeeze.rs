//! `squeeze`: an axis of size 1 removed, recorded as a reshape (the gradient is reshaped back).

use tapegrad_tensor::Float;

use super::Op;
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Axis `axis` removed; its size must be 1 (an error otherwise, as NumPy: PyTorch
    /// silently returns the input). Recorded as a `reshape` node.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2, 1])?);
    /// assert_eq!(x.squeeze(1)?.shape().as_slice(), &[2]);
    /// assert_eq!(
    ///     x.squeeze(0).unwrap_err().to_string(),
    ///     "invalid argument in squeeze: axis 0 of shape [2, 1] has size 2, not 1"
    /// );
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an axis past the last, or one whose size is not 1.
    pub fn squeeze(self, axis: usize) -> Result<Self> {
        self.try_record_unary(|x| Ok((Op::Reshape, x.squeeze(axis)?, None)))
    }
}
