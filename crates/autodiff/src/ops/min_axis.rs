//! `min_axis`: minima along one axis. The gradient flows to the first minimal element of each
//! slice only (as in PyTorch's `min(dim)`).

use tapegrad_tensor::Float;

use super::Op;
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Minima along `axis`; the gradient goes to the first minimal element of each slice.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![4.0, 1.0, 1.0, 0.0, 2.0, 9.0], &[2, 3])?);
    /// let m = x.min_axis(1, false)?;
    /// assert_eq!(m.value().to_vec(), vec![1.0, 0.0]);
    /// assert_eq!(tape.backward(m.sum())?[x].to_vec(), vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `axis >= rank` or the axis is empty.
    pub fn min_axis(self, axis: usize, keepdim: bool) -> Result<Self> {
        let argmin = self.with_value(|x| x.argmin_indices(axis))?;
        let (start, len) = self.tape().push_indices(&argmin);
        self.try_record_unary(|x| {
            let value = x.min_axis(axis, keepdim)?;
            Ok((
                Op::MinAxis {
                    axis: axis as u32,
                    keepdim,
                    start,
                    len,
                },
                value,
                None,
            ))
        })
    }
}
