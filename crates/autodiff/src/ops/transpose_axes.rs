//! `transpose`: two axes swapped; the gradient is the upstream gradient with the same two axes
//! swapped back.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Axes `a` and `b` swapped, any two (PyTorch's `transpose`; [`Var::t`] swaps the last
    /// two).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_fn(&[2, 3, 1], |i| i as f64));
    /// let y = x.transpose(0, 1)?;
    /// assert_eq!(y.shape().as_slice(), &[3, 2, 1]);
    /// assert_eq!(y.value().to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    /// assert_eq!(tape.backward(y.sum())?[x].to_vec(), vec![1.0; 6]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// For an axis past the last.
    #[doc(alias = "swapaxes")]
    pub fn transpose(self, a: usize, b: usize) -> Result<Self> {
        self.try_record_unary(|x| {
            let value = x.transpose(a, b)?;
            Ok((
                Op::TransposeAxes {
                    a: a as u32,
                    b: b as u32,
                },
                value,
                None,
            ))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, a: usize, b: usize) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let g = ctx.grad().transpose(a, b)?;
    ctx.accumulate(0, g)
}
