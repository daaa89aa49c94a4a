//! Losses follow the output: one output means binary cross-entropy from logits, k outputs mean
//! softmax cross-entropy, and mean squared error is chosen explicitly (or by regression targets).

use tapegrad_autodiff::{Tape, Var};
use tapegrad_tensor::{Float, Tensor};

use crate::data::{Dataset, Targets};
use crate::error::{Result, data as data_error};
use crate::network::{Network, Outputs};

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loss {
    /// Chosen from the output and the targets: class labels with one output give
    /// [`Loss::BinaryCrossEntropy`], with k outputs [`Loss::SoftmaxCrossEntropy`]; regression
    /// targets give [`Loss::MeanSquaredError`].
    #[default]
    Auto,
    /// Binary cross-entropy of the output node's logits against 0/1 labels.
    BinaryCrossEntropy,
    /// Softmax cross-entropy of the output node's logits against class labels.
    SoftmaxCrossEntropy,
    /// Mean squared error of the output (after its activation) against the targets (one-hot
    /// rows for class labels with k outputs).
    MeanSquaredError,
}

impl Loss {
    /// Resolves [`Loss::Auto`] for this network and data.
    ///
    /// # Errors
    ///
    /// When the network has no output.
    pub fn resolve<E: Float>(self, net: &Network<E>, data: &Dataset<E>) -> Result<Loss> {
        if self != Loss::Auto {
            return Ok(self);
        }
        Ok(match (&data.y, net.output_width()?) {
            (Targets::Values(_), _) => Loss::MeanSquaredError,
            (Targets::Classes { .. }, 1) => Loss::BinaryCrossEntropy,
            (Targets::Classes { .. }, _) => Loss::SoftmaxCrossEntropy,
        })
    }

    /// The loss of a batch: `out` holds the network's outputs for the rows `rows` of `data`.
    ///
    /// # Errors
    ///
    /// When the targets do not fit this loss (regression targets for a cross-entropy, labels
    /// out of range).
    pub fn on_batch<'t, E: Float>(
        self,
        tape: &'t Tape<E>,
        out: Outputs<'t, E>,
        data: &Dataset<E>,
        rows: &[usize],
    ) -> Result<Var<'t, E>> {
        let width = out.logits.shape()[1];
        match (self, &data.y) {
            (Loss::BinaryCrossEntropy, Targets::Classes { labels, .. }) => {
                let t = Tensor::from_fn(&[rows.len(), 1], |r| E::from_usize(labels[rows[r]]));
                let t = tape.constant(t);
                Ok(out.logits.binary_cross_entropy_with_logits(t)?)
            }
            (Loss::SoftmaxCrossEntropy, Targets::Classes { labels, .. }) => {
                let picked: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
                Ok(out.logits.softmax_cross_entropy(&picked)?)
            }
            (Loss::MeanSquaredError, Targets::Classes { labels, .. }) => {
                let picked: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
                let t = if width == 1 {
                    let v = picked.iter().map(|&c| E::from_usize(c)).collect();
                    Tensor::from_vec(v, &[rows.len(), 1])?
                } else {
                    Tensor::one_hot(&picked, width)?
                };
                Ok(out.output()?.mse(tape.constant(t))?)
            }
            (Loss::MeanSquaredError, Targets::Values(y)) => {
                let in_order =
                    rows.len() == y.shape()[0] && rows.iter().enumerate().all(|(i, &r)| i == r);
                let t = if in_order {
                    y.clone()
                } else {
                    y.select_rows(rows)?
                };
                Ok(out.output()?.mse(tape.constant(t))?)
            }
            (Loss::Auto, _) => Err(data_error("loss", "resolve Loss::Auto before computing it")),
            (_, Targets::Values(_)) => Err(data_error(
                "loss",
                "cross-entropy needs class labels, the dataset has regression targets",
            )),
        }
    }
}
