//! `std_axis`: the standard deviation along an axis, recorded as `var_axis` then `sqrt`.

use tapegrad_tensor::Float;

use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The standard deviation along `axis`: the square root of [`Var::var_axis`] with the
    /// same `correction` (two nodes). Its gradient is infinite where the deviation is 0, as
    /// the square root's.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 3.0], &[2])?);
    /// let s = x.std_axis(0, false, 0)?;
    /// assert_eq!(s.item()?, 1.0);
    /// assert_eq!(tape.backward(s)?[x].to_vec(), vec![-0.5, 0.5]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Var::var_axis`].
    pub fn std_axis(self, axis: usize, keepdim: bool, correction: usize) -> Result<Self> {
        Ok(self.var_axis(axis, keepdim, correction)?.sqrt())
    }
}
