//! `dropout`: each element kept with probability 1 - p and scaled by 1 / (1 - p), or zeroed;
//! the gradient passes through the same mask.

use rand::Rng;
use tapegrad_tensor::{Float, Tensor, TensorError};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Inverted dropout (PyTorch's `F.dropout` in training): each element is zeroed with
    /// probability `p` and the kept ones scaled by 1 / (1 - p), so the expected value is
    /// unchanged. The mask is drawn from `rng` (the same seed gives the same mask); `p = 0`
    /// returns this var itself, `p = 1` zeros. Do not call it when evaluating.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// use rand::{SeedableRng, rngs::StdRng};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::ones(&[1000]));
    /// let y = x.dropout(0.25, &mut StdRng::seed_from_u64(0))?;
    /// let kept = y.value().as_slice().iter().filter(|&&v| v != 0.0).count();
    /// assert!((700..800).contains(&kept), "{kept}");
    /// assert!(y.value().as_slice().iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-12));
    /// // The gradient flows through the kept elements only, with the same scale.
    /// let g = tape.backward(y.sum())?;
    /// assert_eq!(g[x].as_slice(), y.value().as_slice());
    /// assert_eq!(x.dropout(0.0, &mut StdRng::seed_from_u64(0))?.index(), x.index());
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `p` is not in [0, 1].
    pub fn dropout<R: Rng + ?Sized>(self, p: f64, rng: &mut R) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(TensorError::Invalid {
                op: "dropout",
                reason: format!("the probability p must lie in [0, 1], got {p}"),
            }
            .into());
        }
        if p == 0.0 {
            return Ok(self);
        }
        let scale = if p == 1.0 {
            E::ZERO
        } else {
            E::from_f64(1.0 / (1.0 - p))
        };
        let shape = self.shape();
        let draws = Tensor::<f64>::try_rand_uniform(&shape, 0.0, 1.0, rng)?;
        let d = draws.as_slice();
        let mask = Tensor::from_fn(&shape, |i| if d[i] < p { E::ZERO } else { scale });
        self.try_record_unary(|x| {
            let y = x.mul(&mask)?;
            Ok((Op::Dropout, y, Some(mask.clone())))
        })
    }
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let g = ctx.grad().mul(ctx.saved())?;
    ctx.accumulate(0, g)
}
