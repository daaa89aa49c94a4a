//! `unsqueeze`: a new axis of size 1, recorded as a reshape (the gradient is reshaped back).

use tapegrad_tensor::Float;

use super::Op;
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// A new axis of size 1 at position `axis` (0 to rank inclusive), as PyTorch's
    /// `unsqueeze`; recorded as a `reshape` node.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2])?);
    /// assert_eq!(x.unsqueeze(1)?.shape().as_slice(), &[2, 1]);
    /// assert_eq!(x.unsqueeze(0)?.shape().as_slice(), &[1, 2]);
    /// assert!(x.unsqueeze(2).is_err());
    /// let g = tape.backward(x.unsqueeze(0)?.sum())?;
    /// assert_eq!(g[x].to_vec(), vec![1.0, 1.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis > rank`.
    pub fn unsqueeze(self, axis: usize) -> Result<Self> {
        self.try_record_unary(|x| Ok((Op::Reshape, x.unsqueeze(axis)?, None)))
    }
}
