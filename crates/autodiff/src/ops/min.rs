//! `min`: the smallest element of a whole tensor. At ties the gradient is split evenly among
//! the minimal elements (as PyTorch's `min()` and `amin`).

use tapegrad_tensor::Float;

use super::Op;
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The smallest element, as a rank-0 var; the gradient is split evenly among ties.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![3.0, -1.0, 7.0, -1.0], &[4])?);
    /// let m = x.min()?;
    /// assert_eq!(m.item()?, -1.0);
    /// assert_eq!(tape.backward(m)?[x].to_vec(), vec![0.0, 0.5, 0.0, 0.5]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an empty tensor.
    #[doc(alias = "amin")]
    pub fn min(self) -> Result<Self> {
        self.try_record_unary(|x| Ok((Op::Min, x.min()?, None)))
    }
}
