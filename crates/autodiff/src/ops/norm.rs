//! `norm`: the Euclidean (L2) norm of all elements; dy/dx = x / y, and 0 at y = 0 (where the
//! norm has no derivative, the subgradient 0, not NaN).

use tapegrad_tensor::Float;

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// The Euclidean norm of all elements, as a rank-0 var; its gradient x / |x| is 0 at
    /// x = 0 (not NaN).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![3.0, 4.0], &[2])?);
    /// let n = x.norm();
    /// assert_eq!(n.item()?, 5.0);
    /// assert_eq!(tape.backward(n)?[x].to_vec(), vec![0.6, 0.8]);
    /// let z = tape.var(Tensor::zeros(&[2]));
    /// assert_eq!(tape.backward(z.norm())?[z].to_vec(), vec![0.0, 0.0]);
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    pub fn norm(self) -> Self {
        self.record_unary(Op::Norm, |x| x.norm())
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let (x, y, g) = (
        ctx.input(0),
        ctx.output().as_slice()[0],
        ctx.grad().as_slice()[0],
    );
    let t = if y == E::ZERO {
        tapegrad_tensor::Tensor::zeros(x.shape())
    } else {
        x.map(|v| v * g / y)
    };
    ctx.accumulate(0, t)
}
