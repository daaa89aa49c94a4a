//! `permute`: the axes reordered; the gradient is the upstream gradient permuted back by the
//! inverse permutation.

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The axes reordered: axis `i` of the result is axis `axes[i]` of this var (PyTorch's
    /// `permute`), for example `[B, T, H, D] -> [B, H, T, D]` for multi-head attention.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_fn(&[2, 3, 4], |i| i as f64));
    /// let y = x.permute(&[2, 0, 1])?;
    /// assert_eq!(y.shape().as_slice(), &[4, 2, 3]);
    /// assert_eq!(y.value().get(&[3, 1, 2])?, 23.0);
    /// let w = tape.constant(Tensor::from_fn(&[4, 2, 3], |i| i as f64));
    /// let g = tape.backward(y.mul(w)?.sum())?;
    /// // The gradient of x[1, 2, 3] is the weight of y[3, 1, 2].
    /// assert_eq!(g[x].get(&[1, 2, 3])?, 3.0 * 6.0 + 1.0 * 3.0 + 2.0);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Unless `axes` is a permutation of the var's axes.
    pub fn permute(self, axes: &[usize]) -> Result<Self> {
        // The index arena is written before recording (the store is borrowed while recording).
        let (start, len) = self.tape().push_indices(axes);
        self.try_record_unary(|x| Ok((Op::Permute { start, len }, x.permute(axes)?, None)))
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, axes: &[usize]) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let mut inverse = vec![0; axes.len()];
    for (i, &a) in axes.iter().enumerate() {
        inverse[a] = i;
    }
    let g = ctx.grad().permute(&inverse)?;
    ctx.accumulate(0, g)
}
