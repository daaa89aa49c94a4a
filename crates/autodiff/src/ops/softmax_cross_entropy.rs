//! `softmax_cross_entropy`: L = mean_i(-log_softmax(z)[i, y_i]) over logits `[n, k]` and class
//! labels `y`, finite for logits of +-1000. dL/dz = (softmax(z) - onehot(y)) / n; the softmax
//! is saved by the forward.

use tapegrad_tensor::{Float, Tensor, TensorError};

use super::{BackwardCtx, Op};
use crate::error::Result;
use crate::var::Var;

impl<E: Float> Var<'_, E> {
    /// Softmax cross-entropy of logits `[n, k]` against `n` class labels in `0..k`, averaged
    /// over the rows: the loss of multinomial logistic regression.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let z = tape.var(Tensor::from_vec(vec![0.0, 0.0, 1000.0, -1000.0], &[2, 2])?);
    /// let loss = z.softmax_cross_entropy(&[0, 1])?;
    /// assert!((loss.item()? - (std::f64::consts::LN_2 + 2000.0) / 2.0).abs() < 1e-9);
    /// assert_eq!(tape.backward(loss)?[z].to_vec(), vec![-0.25, 0.25, 0.5, -0.5]);
    /// assert!(z.softmax_cross_entropy(&[0, 2]).is_err());
    /// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the logits are not rank 2, the label count is not the row count, or a label is not
    /// below the class count.
    pub fn softmax_cross_entropy(self, labels: &[usize]) -> Result<Self> {
        let (start, len) = self.tape().push_indices(labels);
        self.try_record_unary(|z| {
            let (loss, probs) = compute(z, labels)?;
            Ok((Op::SoftmaxCrossEntropy { start, len }, loss, Some(probs)))
        })
    }
}

/// The loss and the softmax probabilities (which the backward reads); recording and replay
/// share it. One pass per row ([`Tensor::softmax_rows`]) computes `exp(z - max)` once per
/// element: the probabilities, and the row's log-sum-exp from their sum (as
/// [`Tensor::log_softmax`] does, so the same loss to the bit).
pub(super) fn compute<E: Float>(z: &Tensor<E>, labels: &[usize]) -> Result<(Tensor<E>, Tensor<E>)> {
    let &[rows, k] = z.shape() else {
        return Err(TensorError::Rank {
            op: "softmax_cross_entropy",
            expected: "logits of rank 2 ([samples, classes])",
            shape: z.shape().to_vec(),
        }
        .into());
    };
    if labels.len() != rows {
        return Err(TensorError::ShapeMismatch {
            op: "softmax_cross_entropy (logits, labels)",
            lhs: z.shape().to_vec(),
            rhs: vec![labels.len()],
        }
        .into());
    }
    if let Some((row, &c)) = labels.iter().enumerate().find(|&(_, &c)| c >= k) {
        return Err(TensorError::Index {
            op: "softmax_cross_entropy (label of row, class)",
            index: vec![row, c],
            shape: z.shape().to_vec(),
        }
        .into());
    }
    // The picked log-probabilities summed in row order (-0 + x is x, for the first one).
    let (zs, mut picked) = (z.as_slice(), -E::ZERO);
    let probs = z.softmax_rows(|i, m, s| {
        // (x - max) - ln s, as log_softmax: exact where x is the maximum.
        picked += (zs[i * k + labels[i]] - m) - s.ln();
    })?;
    let n = E::from_usize(labels.len());
    let loss = -picked / n;
    Ok((Tensor::scalar(loss), probs))
}

pub(super) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, labels: &[usize]) -> Result<()> {
    if !ctx.wants(0) {
        return Ok(());
    }
    let probs = ctx.saved();
    let k = probs.shape()[1];
    let scale = ctx.grad().item()? / E::from_usize(labels.len());
    let mut dz = probs.clone();
    for (row, &c) in labels.iter().enumerate() {
        dz.as_mut_slice()[row * k + c] -= E::ONE;
    }
    dz.map_inplace(|v| v * scale);
    ctx.accumulate(0, dz)
}
