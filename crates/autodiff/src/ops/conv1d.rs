//! `conv1d`: 1-D convolution of `[n, c, l]` with `[out, c, k]` weights, recorded as a 2-D
//! convolution over a height of 1 (reshapes around one `conv2d` node).

use tapegrad_tensor::Float;

use crate::error::Result;
use crate::var::Var;

impl<'t, E: Float> Var<'t, E> {
    /// 1-D convolution (as PyTorch's `conv1d`) of `[n, c, l]` with weights `[out, c, k]` and an
    /// optional bias `[out]`: `[n, out, (l + 2 padding - k) / stride + 1]`.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 4])?);
    /// let w = tape.var(Tensor::from_vec(vec![1.0, -1.0], &[1, 1, 2])?);
    /// let y = x.conv1d(w, None, 1, 1)?;
    /// assert_eq!(y.value().to_vec(), vec![-1.0, -1.0, -1.0, -1.0, 4.0]);
    /// assert_eq!(tape.backward(y.sum())?[w].to_vec(), vec![10.0, 10.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Var::conv2d`], for an input not rank 3 or weights not rank 3.
    pub fn conv1d(
        self,
        weight: Var<'t, E>,
        bias: Option<Var<'t, E>>,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let x = self.unsqueeze(2)?;
        let w = weight.unsqueeze(2)?;
        x.conv2d(w, bias, (1, stride), (0, padding))?.squeeze(2)
    }
}
