//! Metrics: accuracy, loss on a dataset, and the confusion matrix.

use std::fmt;

use tapegrad_autodiff::Tape;
use tapegrad_tensor::{Float, Tensor};

use crate::data::Dataset;
use crate::error::{Result, data};
use crate::loss::Loss;
use crate::network::Network;

/// The predicted class of each row of a `[batch, k]` output: above 0.5 when `k == 1`, else the
/// argmax.
pub(crate) fn classes_of<E: Float>(p: &Tensor<E>) -> Result<Vec<usize>> {
    if p.rank() != 2 || p.shape()[1] == 0 {
        return Err(data(
            "classes",
            format!("expected outputs [batch, k > 0], got {:?}", p.shape()),
        ));
    }
    let half = E::from_f64(0.5);
    Ok(p.as_slice()
        .chunks_exact(p.shape()[1])
        .map(|row| class_of_row(row, half))
        .collect())
}

/// The predicted class of one output row: above `threshold` for a single output (0.5 for a
/// probability, 0 for a logit), the first maximum otherwise.
pub(crate) fn class_of_row<E: Float>(row: &[E], threshold: E) -> usize {
    if let [v] = row {
        return usize::from(*v > threshold);
    }
    let mut best = 0;
    for (j, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] {
            best = j;
        }
    }
    best
}

/// The fraction of `predicted` equal to `labels` (NaN for empty inputs).
pub fn accuracy(predicted: &[usize], labels: &[usize]) -> f64 {
    let hits = predicted.iter().zip(labels).filter(|(a, b)| a == b).count();
    hits as f64 / labels.len() as f64
}

/// Counts of (true class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    /// `counts[t][p]`: samples of true class `t` predicted as `p`.
    pub counts: Vec<Vec<usize>>,
}

impl ConfusionMatrix {
    /// Builds the matrix for `num_classes` classes.
    ///
    /// # Errors
    ///
    /// [`crate::NnError::Data`] when a label or prediction is not below `num_classes`, or the
    /// lengths differ.
    pub fn new(predicted: &[usize], labels: &[usize], num_classes: usize) -> Result<Self> {
        if predicted.len() != labels.len() {
            return Err(data(
                "confusion_matrix",
                format!(
                    "{} predictions for {} labels",
                    predicted.len(),
                    labels.len()
                ),
            ));
        }
        let too_many = || {
            data(
                "confusion_matrix",
                format!("cannot allocate a {num_classes} x {num_classes} matrix of counts"),
            )
        };
        num_classes
            .checked_mul(num_classes)
            .and_then(|n| n.checked_mul(size_of::<usize>()))
            .filter(|&b| b <= isize::MAX as usize)
            .ok_or_else(too_many)?;
        let mut counts: Vec<Vec<usize>> = Vec::new();
        counts
            .try_reserve_exact(num_classes)
            .map_err(|_| too_many())?;
        for _ in 0..num_classes {
            let mut row = Vec::new();
            row.try_reserve_exact(num_classes).map_err(|_| too_many())?;
            row.resize(num_classes, 0);
            counts.push(row);
        }
        for (&p, &t) in predicted.iter().zip(labels) {
            if p >= num_classes || t >= num_classes {
                return Err(data(
                    "confusion_matrix",
                    format!("class {} is not below {num_classes}", p.max(t)),
                ));
            }
            counts[t][p] += 1;
        }
        Ok(ConfusionMatrix { counts })
    }

    /// The fraction on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let total: usize = self.counts.iter().flatten().sum();
        let hits: usize = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        hits as f64 / total as f64
    }
}

impl fmt::Display for ConfusionMatrix {
    /// Rows are true classes, columns predicted classes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .counts
            .iter()
            .flatten()
            .map(|c| c.to_string().len())
            .max()
            .unwrap_or(1)
            .max(3);
        write!(f, "{:>6}", "t\\p")?;
        for p in 0..self.counts.len() {
            write!(f, " {p:>w$}")?;
        }
        for (t, row) in self.counts.iter().enumerate() {
            write!(f, "\n{t:>6}")?;
            for c in row {
                write!(f, " {c:>w$}")?;
            }
        }
        Ok(())
    }
}

impl<E: Float> Network<E> {
    /// Classification accuracy on a dataset.
    ///
    /// # Errors
    ///
    /// When the dataset has no class labels or does not fit the network.
    pub fn accuracy(&self, data: &Dataset<E>) -> Result<f64> {
        let labels = data.labels().ok_or_else(|| {
            crate::error::data(
                "accuracy",
                "the dataset has regression targets, not classes",
            )
        })?;
        crate::train::check_data(self, data, "accuracy")?;
        Ok(accuracy(&self.predict_classes(&data.x)?, labels))
    }

    /// The confusion matrix on a dataset.
    ///
    /// # Errors
    ///
    /// As [`Network::accuracy`].
    pub fn confusion_matrix(&self, data: &Dataset<E>) -> Result<ConfusionMatrix> {
        let labels = data.labels().ok_or_else(|| {
            crate::error::data("confusion_matrix", "the dataset has regression targets")
        })?;
        crate::train::check_data(self, data, "confusion_matrix")?;
        // The classes the network predicts (the labels were checked to lie below them), not the
        // dataset's `num_classes`, which a dataset built by hand can set to anything.
        let width = self.output_width()?;
        let k = if width == 1 { 2 } else { width };
        ConfusionMatrix::new(&self.predict_classes(&data.x)?, labels, k)
    }

    /// The mean loss on a whole dataset (with [`Loss::Auto`] chosen from the output and targets).
    ///
    /// # Errors
    ///
    /// When the dataset does not fit the network or the loss.
    pub fn loss(&self, data: &Dataset<E>, loss: Loss) -> Result<f64> {
        crate::train::check_data(self, data, "loss")?;
        let tape = Tape::<E>::new();
        let x = tape.constant(data.x.clone());
        let out = tape.no_grad(|| {
            let bound = self.bind(&tape);
            self.forward_bound(&bound, x)
        })?;
        let all: Vec<usize> = (0..data.len()).collect();
        let l = loss.resolve(self, data)?.on_batch(&tape, out, data, &all)?;
        Ok(l.item()?.to_f64())
    }
}
