//! Losses follow the output: one output means binary cross-entropy from logits, k outputs mean
//! softmax cross-entropy, and mean squared error is chosen explicitly (or by regression targets).
//! Any other loss is a closure ([`Loss::custom`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use tapegrad_autodiff::{Tape, Var};
use tapegrad_tensor::{Float, Tensor};

use crate::data::{Dataset, Targets};
use crate::error::{Result, data as data_error};
use crate::model::Outputs;

/// A loss written by the user: from a batch's outputs and its targets to a one-element `Var`.
pub type LossFn<E> =
    dyn for<'t> Fn(Outputs<'t, E>, &Targets<E>) -> Result<Var<'t, E>> + Send + Sync;

/// The training loss.
#[derive(Clone, Default)]
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
    /// A closure of your own: see [`Loss::custom`].
    Custom(CustomLoss),
}

/// A loss closure with its name and element type ([`Loss::custom`]).
#[derive(Clone)]
pub struct CustomLoss {
    name: Arc<str>,
    dtype: &'static str,
    /// An `Arc<LossFn<E>>` for the `E` named by `dtype`.
    f: Arc<dyn Any + Send + Sync>,
}

impl CustomLoss {
    /// The name given to [`Loss::custom`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The closure, if it was written for element type `E`.
    fn get<E: Float>(&self) -> Result<&Arc<LossFn<E>>> {
        self.f.downcast_ref::<Arc<LossFn<E>>>().ok_or_else(|| {
            crate::error::config(
                "loss",
                format!(
                    "the custom loss {:?} was written for {}, the model computes in {}",
                    self.name,
                    self.dtype,
                    E::DTYPE
                ),
            )
        })
    }
}

impl Loss {
    /// A loss of your own: `f` gets the batch's [`Outputs`] and the batch's targets (the
    /// labels of its rows, or their rows of the target tensor) and returns a one-element
    /// `Var`, which training differentiates. Make constants on the outputs' tape
    /// (`out.logits.tape()`).
    ///
    /// ```
    /// use tapegrad_nn::{Loss, Targets};
    /// // Mean absolute error against regression targets.
    /// let l1 = Loss::custom::<f64>("l1", |out, targets| {
    ///     let Targets::Values(y) = targets else {
    ///         return Err(tapegrad_nn::NnError::Config { setting: "loss", reason: "regression only".into() });
    ///     };
    ///     let y = out.logits.tape().constant(y.clone());
    ///     Ok((out.logits - y).abs().mean())
    /// });
    /// assert_eq!(format!("{l1:?}"), "Custom(\"l1\")");
    /// ```
    ///
    /// The element type is the closure's (`custom::<f64>` names it where it is not inferred);
    /// training a model of another element type with it is a [`crate::NnError::Config`].
    pub fn custom<E: Float>(
        name: &str,
        f: impl for<'t> Fn(Outputs<'t, E>, &Targets<E>) -> Result<Var<'t, E>> + Send + Sync + 'static,
    ) -> Self {
        let f: Arc<LossFn<E>> = Arc::new(f);
        Loss::Custom(CustomLoss {
            name: Arc::from(name),
            dtype: E::DTYPE,
            f: Arc::new(f),
        })
    }

    /// Resolves [`Loss::Auto`] for a model with `width` outputs and this data.
    ///
    /// ```
    /// use tapegrad_nn::{Dataset, Loss};
    /// use tapegrad_tensor::Tensor;
    /// let d = Dataset::<f32>::classification(Tensor::zeros(&[2, 3]), vec![0, 1])?;
    /// assert_eq!(Loss::Auto.resolve(1, &d)?, Loss::BinaryCrossEntropy);
    /// assert_eq!(Loss::Auto.resolve(2, &d)?, Loss::SoftmaxCrossEntropy);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`crate::NnError::Config`] for a custom loss written for another element type.
    pub fn resolve<E: Float>(&self, width: usize, data: &Dataset<E>) -> Result<Loss> {
        if let Loss::Custom(c) = self {
            c.get::<E>()?;
        }
        if !matches!(self, Loss::Auto) {
            return Ok(self.clone());
        }
        Ok(match (&data.y, width) {
            (Targets::Values(_), _) => Loss::MeanSquaredError,
            (Targets::Classes { .. }, 1) => Loss::BinaryCrossEntropy,
            (Targets::Classes { .. }, _) => Loss::SoftmaxCrossEntropy,
        })
    }

    /// The loss of a batch: `out` holds the model's outputs for the rows `rows` of `data`.
    ///
    /// # Errors
    ///
    /// When the targets do not fit this loss (regression targets for a cross-entropy, labels
    /// out of range), and any error of a custom loss.
    pub fn on_batch<'t, E: Float>(
        &self,
        tape: &'t Tape<E>,
        out: Outputs<'t, E>,
        data: &Dataset<E>,
        rows: &[usize],
    ) -> Result<Var<'t, E>> {
        let width = out.logits.shape().get(1).copied().unwrap_or(1);
        let in_order = |n: usize| rows.len() == n && rows.iter().enumerate().all(|(i, &r)| i == r);
        match (self, &data.y) {
            (Loss::Custom(c), y) => {
                let (name, f) = (c.name(), c.get::<E>()?);
                let targets = match y {
                    Targets::Classes {
                        labels,
                        num_classes,
                    } => Targets::Classes {
                        labels: rows.iter().map(|&i| labels[i]).collect(),
                        num_classes: *num_classes,
                    },
                    Targets::Values(t) if in_order(t.shape()[0]) => Targets::Values(t.clone()),
                    Targets::Values(t) => Targets::Values(t.select_rows(rows)?),
                };
                let l = f(out, &targets)?;
                if l.shape().iter().product::<usize>() != 1 {
                    return Err(data_error(
                        "loss",
                        format!(
                            "the custom loss {name:?} returned shape {:?}, not one element",
                            l.shape().as_slice()
                        ),
                    ));
                }
                Ok(l)
            }
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
                let t = if in_order(y.shape()[0]) {
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

impl fmt::Debug for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::Auto => f.write_str("Auto"),
            Loss::BinaryCrossEntropy => f.write_str("BinaryCrossEntropy"),
            Loss::SoftmaxCrossEntropy => f.write_str("SoftmaxCrossEntropy"),
            Loss::MeanSquaredError => f.write_str("MeanSquaredError"),
            Loss::Custom(c) => f.debug_tuple("Custom").field(&c.name).finish(),
        }
    }
}

impl PartialEq for Loss {
    /// Built-in losses by kind; custom losses by identity (the same closure).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Loss::Custom(a), Loss::Custom(b)) => Arc::ptr_eq(&a.f, &b.f),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}
