//! Metrics: accuracy, loss on a dataset, and the confusion matrix.

use std::fmt;

use tapegrad_tensor::{Float, Tensor};

use crate::error::{Result, data};

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

/// How many of `rows` the logits `z` (row `i` of `z` for `rows[i]`) put in their class of
/// `labels`: class 1 above 0 for one output, else the first maximum, as `predict_classes`
/// reads them. Training counts its accuracy this way, and so does `Model::evaluate`.
pub(crate) fn hits_in_logits<E: Float>(z: &Tensor<E>, rows: &[usize], labels: &[usize]) -> usize {
    let k = z.shape().get(1).copied().unwrap_or(1).max(1);
    rows.iter()
        .zip(z.as_slice().chunks_exact(k))
        .filter(|&(&r, row)| labels[r] == class_of_row(row, E::ZERO))
        .count()
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
