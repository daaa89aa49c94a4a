//! The `Model` trait: anything with parameters and a forward from bound parameters to outputs
//! trains, evaluates and checkpoints like a [`crate::Network`].

use tapegrad_autodiff::{Tape, Var};
use tapegrad_tensor::{Float, Tensor};

use crate::activation::Activation;
use crate::data::{Dataset, Targets};
use crate::error::{Result, data};
use crate::loss::Loss;
use crate::metrics::{ConfusionMatrix, accuracy, class_of_row, hits_in_logits};
use crate::params::{Bound, ParamStore};

/// A model's values on the tape for one batch: what its forward returned (the logits of a
/// classifier, which the cross-entropy losses take, as PyTorch's `BCEWithLogitsLoss` and
/// `CrossEntropyLoss` do; the predictions of a regression model) and the activation that turns
/// them into predictions.
#[derive(Debug, Clone, Copy)]
pub struct Outputs<'t, E: Float> {
    /// What the model's forward returned: `x W + b` of a network's output node.
    pub logits: Var<'t, E>,
    activation: Activation,
}

impl<'t, E: Float> Outputs<'t, E> {
    /// Outputs from a forward's values and the activation that makes predictions of them.
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::{Activation, Outputs};
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let out = Outputs::new(tape.constant(Tensor::zeros(&[2, 1])), Activation::Sigmoid);
    /// assert_eq!(out.output()?.value().to_vec(), vec![0.5, 0.5]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    pub fn new(logits: Var<'t, E>, activation: Activation) -> Self {
        Outputs { logits, activation }
    }

    /// The activation applied by [`Outputs::output`].
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::{Activation, Outputs};
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// let out = Outputs::new(tape.constant(Tensor::zeros(&[1, 3])), Activation::Softmax);
    /// assert_eq!(out.activation(), Activation::Softmax);
    /// ```
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The activation of the logits: the model's prediction. Each call records the activation
    /// on the tape (training with a cross-entropy loss never does).
    ///
    /// ```
    /// use tapegrad_autodiff::Tape;
    /// use tapegrad_nn::{Activation, Outputs};
    /// use tapegrad_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let z = tape.constant(Tensor::from_vec(vec![-1.0, 2.0], &[1, 2])?);
    /// let out = Outputs::new(z, Activation::Relu);
    /// assert_eq!(out.output()?.value().to_vec(), vec![0.0, 2.0]);
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Errors of the activation op (softmax of a rank-0 value).
    pub fn output(&self) -> Result<Var<'t, E>> {
        self.activation.apply_var(self.logits)
    }
}

/// Rows evaluated per forward by [`Model::predict_logits`]: bounds the memory a large
/// dataset takes at once (a convolution's columns grow with the batch).
pub const EVAL_BATCH: usize = 256;

/// Anything with parameters and a forward from bound parameters to outputs. [`crate::Network`]
/// implements it, and so can a user's own struct: [`crate::train`], the metrics below and the
/// [`crate::checkpoint`]s then work on it unchanged.
///
/// `forward` returns the values the loss takes: logits for the cross-entropy losses (one column
/// for two classes, k columns for k classes), predictions for mean squared error. Inputs are
/// the rows of a [`Dataset`]'s `x`, `[batch, features]`; a model that wants another shape (an
/// image) reshapes them.
///
/// ```
/// use rand::{SeedableRng, rngs::StdRng};
/// use tapegrad_autodiff::Var;
/// use tapegrad_nn::{Bound, Init, Model, ParamId, ParamStore, Result, TrainConfig, data, train};
/// use tapegrad_tensor::Tensor;
///
/// /// Two tanh layers with a residual connection around the second.
/// struct Residual { params: ParamStore, w1: ParamId, b1: ParamId, w2: ParamId, out: ParamId }
///
/// impl Model for Residual {
///     fn params(&self) -> &ParamStore { &self.params }
///     fn params_mut(&mut self) -> &mut ParamStore { &mut self.params }
///     fn forward<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>) -> Result<Var<'t, f32>> {
///         let h = x.linear(p[self.w1], p[self.b1])?.tanh();
///         let h = h + h.matmul(p[self.w2])?.tanh(); // residual sum
///         Ok(h.matmul(p[self.out])?) // one logit
///     }
/// }
///
/// let mut rng = StdRng::seed_from_u64(1);
/// let mut params = ParamStore::new();
/// let w1 = params.insert("w1", Init::XavierUniform.tensor(&[2, 16], 2, 16, &mut rng));
/// let b1 = params.insert("b1", Tensor::zeros(&[16]));
/// let w2 = params.insert("w2", Init::XavierUniform.tensor(&[16, 16], 16, 16, &mut rng));
/// let out = params.insert("out", Init::XavierUniform.tensor(&[16, 1], 16, 1, &mut rng));
/// let mut model = Residual { params, w1, b1, w2, out };
/// let xor = data::xor::<f32, _>(200, 0.1, &mut rng);
/// let config = TrainConfig {
///     epochs: 100,
///     learning_rate: 0.01,
///     optimizer: tapegrad_nn::OptimizerKind::adam(),
///     ..Default::default()
/// };
/// train(&mut model, &xor, &config, &mut rng)?;
/// assert!(model.accuracy(&xor)? > 0.95);
/// # Ok::<(), tapegrad_nn::NnError>(())
/// ```
pub trait Model<E: Float = f32> {
    /// The parameters.
    fn params(&self) -> &ParamStore<E>;

    /// The parameters, to update.
    fn params_mut(&mut self) -> &mut ParamStore<E>;

    /// Records the model on `x` (`[batch, features]`) with its parameters bound to the tape
    /// ([`ParamStore::bind`]) and returns the values the loss takes.
    ///
    /// # Errors
    ///
    /// Whatever the model refuses (an input of the wrong width) and any error of the ops.
    fn forward<'t>(&self, bound: &Bound<'t, E>, x: Var<'t, E>) -> Result<Var<'t, E>>;

    /// The activation that turns [`Model::forward`]'s values into predictions (sigmoid for a
    /// binary classifier's logit, softmax for k logits); identity, the default, when forward
    /// returns predictions already. The losses read it for mean squared error of a
    /// classifier.
    fn output_activation(&self) -> Activation {
        Activation::Identity
    }

    /// The number of input features the model takes, when it knows it (a [`crate::Network`]
    /// does); data of another width is then refused by name before any work. `None`, the
    /// default, leaves the check to [`Model::forward`].
    fn input_features(&self) -> Option<usize> {
        None
    }

    /// The number of outputs per row, when the model knows it without running (a
    /// [`crate::Network`] does). `None`, the default, makes the data checks run one row
    /// through [`Model::forward`] to learn it.
    fn output_features(&self) -> Option<usize> {
        None
    }

    /// [`Model::forward`] with [`Model::output_activation`], as the losses take them.
    ///
    /// # Errors
    ///
    /// As [`Model::forward`].
    fn outputs<'t>(&self, bound: &Bound<'t, E>, x: Var<'t, E>) -> Result<Outputs<'t, E>> {
        Ok(Outputs::new(
            self.forward(bound, x)?,
            self.output_activation(),
        ))
    }

    /// The total number of scalar parameters.
    fn num_parameters(&self) -> usize {
        self.params().num_elements()
    }

    /// [`Model::forward`]'s values for `x`, computed without gradients, [`EVAL_BATCH`] rows at
    /// a time.
    ///
    /// # Errors
    ///
    /// As [`Model::forward`], and [`crate::NnError::Data`] when `x` is not `[rows, features]`.
    fn predict_logits(&self, x: &Tensor<E>) -> Result<Tensor<E>> {
        if x.rank() != 2 || self.input_features().is_some_and(|d| d != x.shape()[1]) {
            let want = self
                .input_features()
                .map_or("[rows, features]".into(), |d| format!("[batch, {d}]"));
            return Err(data(
                "predict",
                format!(
                    "the model takes inputs of shape {want}, got {:?}",
                    x.shape()
                ),
            ));
        }
        in_chunks(self, x, |bound, xb| self.forward(bound, xb))
    }

    /// The model's predictions for `x`: [`Model::output_activation`] of
    /// [`Model::predict_logits`].
    ///
    /// # Errors
    ///
    /// As [`Model::predict_logits`].
    fn predict(&self, x: &Tensor<E>) -> Result<Tensor<E>> {
        self.output_activation().apply(&self.predict_logits(x)?)
    }

    /// The predicted class per row: for one output, class 1 where the logit is above 0 (the
    /// sigmoid above 0.5); for several, the first largest.
    ///
    /// # Errors
    ///
    /// As [`Model::predict_logits`], and when the outputs are not `[rows, k]`.
    fn predict_classes(&self, x: &Tensor<E>) -> Result<Vec<usize>> {
        let z = self.predict_logits(x)?;
        if z.rank() != 2 || z.shape()[1] == 0 {
            return Err(data(
                "classes",
                format!("expected outputs [rows, k > 0], got {:?}", z.shape()),
            ));
        }
        Ok(z.as_slice()
            .chunks_exact(z.shape()[1])
            .map(|row| class_of_row(row, E::ZERO))
            .collect())
    }

    /// Classification accuracy on a dataset.
    ///
    /// # Errors
    ///
    /// When the dataset has no class labels or does not fit the model.
    fn accuracy(&self, data_set: &Dataset<E>) -> Result<f64> {
        let labels = data_set.labels().ok_or_else(|| {
            data(
                "accuracy",
                "the dataset has regression targets, not classes",
            )
        })?;
        check_data(self, data_set, "accuracy")?;
        Ok(accuracy(&self.predict_classes(&data_set.x)?, labels))
    }

    /// The confusion matrix on a dataset, over the classes the model predicts.
    ///
    /// # Errors
    ///
    /// As [`Model::accuracy`].
    fn confusion_matrix(&self, data_set: &Dataset<E>) -> Result<ConfusionMatrix> {
        let labels = data_set
            .labels()
            .ok_or_else(|| data("confusion_matrix", "the dataset has regression targets"))?;
        // The classes the model predicts (the labels were checked to lie below them), not the
        // dataset's `num_classes`, which a dataset built by hand can set to anything.
        let width = check_data(self, data_set, "confusion_matrix")?;
        let k = if width == 1 { 2 } else { width };
        ConfusionMatrix::new(&self.predict_classes(&data_set.x)?, labels, k)
    }

    /// The mean loss on a whole dataset ([`Loss::Auto`] chosen from the outputs and targets),
    /// [`EVAL_BATCH`] rows at a time: the per-chunk losses averaged with the chunks' row counts
    /// as weights, which is the whole dataset's loss for every loss that is a mean over rows
    /// (all the built-in ones; a custom loss that is not gets that weighted average).
    ///
    /// # Errors
    ///
    /// When the dataset does not fit the model or the loss.
    fn loss(&self, data_set: &Dataset<E>, loss: Loss) -> Result<f64> {
        self.evaluate(data_set, loss).map(|(l, _)| l)
    }

    /// [`Model::loss`] and, for a dataset with class labels, [`Model::accuracy`], from one
    /// forward pass: the numbers the two give, for half the work (a validation step that wants
    /// both, as an epoch's report).
    ///
    /// ```
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use tapegrad_nn::{Loss, Model, Network, data};
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let xor = data::xor::<f64, _>(40, 0.1, &mut rng);
    /// let net = Network::mlp(&[2, 4, 1], &mut rng);
    /// let (loss, accuracy) = net.evaluate(&xor, Loss::Auto)?;
    /// assert_eq!(loss, net.loss(&xor, Loss::Auto)?);
    /// assert_eq!(accuracy, Some(net.accuracy(&xor)?));
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Model::loss`].
    fn evaluate(&self, data_set: &Dataset<E>, loss: Loss) -> Result<(f64, Option<f64>)> {
        let width = check_data(self, data_set, "loss")?;
        let loss = loss.resolve(width, data_set)?;
        let n = data_set.len();
        let labels = data_set.labels();
        let mut tape = Tape::<E>::new();
        let (mut total, mut hits) = (0.0, 0usize);
        for start in (0..n).step_by(EVAL_BATCH) {
            let rows: Vec<usize> = (start..(start + EVAL_BATCH).min(n)).collect();
            tape.clear();
            let xb = data_set.x.select_rows(&rows)?;
            let l = tape.no_grad(|| {
                let bound = self.params().bind(&tape);
                let out = self.outputs(&bound, tape.constant(xb))?;
                if let Some(labels) = labels {
                    hits += out.logits.with_value(|z| hits_in_logits(z, &rows, labels));
                }
                Ok::<E, crate::NnError>(loss.on_batch(&tape, out, data_set, &rows)?.item()?)
            })?;
            total += l.to_f64() * rows.len() as f64;
        }
        let accuracy = labels.map(|_| hits as f64 / n as f64);
        Ok((total / n as f64, accuracy))
    }
}

/// `f` of the model's bound parameters and the rows of `x`, [`EVAL_BATCH`] rows at a time on
/// one reused tape without gradients, the results stacked along axis 0: evaluation that bounds
/// its memory whatever the dataset's size.
pub(crate) fn in_chunks<E, M, F>(model: &M, x: &Tensor<E>, f: F) -> Result<Tensor<E>>
where
    E: Float,
    M: Model<E> + ?Sized,
    F: for<'t> Fn(&Bound<'t, E>, Var<'t, E>) -> Result<Var<'t, E>>,
{
    let n = x.shape().first().copied().unwrap_or(0);
    let mut tape = Tape::<E>::new();
    let mut parts = Vec::new();
    for start in (0..n.max(1)).step_by(EVAL_BATCH) {
        let end = (start + EVAL_BATCH).min(n);
        let xb = if start == 0 && end == n {
            x.clone()
        } else {
            x.select_rows(&(start..end).collect::<Vec<_>>())?
        };
        tape.clear();
        let part = tape.no_grad(|| {
            let bound = model.params().bind(&tape);
            f(&bound, tape.constant(xb)).map(|v| v.value())
        })?;
        parts.push(part);
    }
    if parts.len() == 1 {
        return Ok(parts.pop().expect("one part"));
    }
    let refs: Vec<&Tensor<E>> = parts.iter().collect();
    Ok(Tensor::concat(&refs, 0)?)
}

/// The one check of a dataset against a model, made by every function that takes both
/// (training, loss, accuracy, the confusion matrix): the dataset agrees with itself
/// ([`Dataset::validate`]), the model accepts its rows ([`Model::input_features`], or one row
/// is run through it, so a wrong input width is reported before any work), its outputs are `[rows, k]`, and its targets are
/// ones the model can output (labels below its class count, or regression targets
/// `[rows, k]`). Returns the output width k.
pub(crate) fn check_data<E: Float, M: Model<E> + ?Sized>(
    model: &M,
    data_set: &Dataset<E>,
    op: &'static str,
) -> Result<usize> {
    data_set.validate()?;
    let n = data_set.len();
    if n == 0 {
        return Err(data(op, "the dataset is empty"));
    }
    if let Some(d) = model.input_features()
        && data_set.num_features() != d
    {
        return Err(data(
            op,
            format!(
                "the model takes {d} input features, the data has shape {:?}",
                data_set.x.shape()
            ),
        ));
    }
    let shape = match model.output_features() {
        Some(k) => vec![1, k],
        None => {
            let first = data_set.x.select_rows(&[0])?;
            let tape = Tape::<E>::new();
            tape.no_grad(|| {
                let bound = model.params().bind(&tape);
                model
                    .forward(&bound, tape.constant(first))
                    .map(|v| v.shape().to_vec())
            })?
        }
    };
    if shape.len() != 2 || shape[0] != 1 || shape[1] == 0 {
        return Err(data(
            op,
            format!(
                "the model's forward must give [rows, outputs] with at least one output: one row \
                 of shape {:?} gave {shape:?}",
                data_set.x.select_rows(&[0])?.shape()
            ),
        ));
    }
    let width = shape[1];
    match &data_set.y {
        Targets::Classes { labels, .. } => {
            let classes = if width == 1 { 2 } else { width };
            if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
                return Err(data(
                    op,
                    format!(
                        "label {l} of row {i} is out of range: the model's {width} output(s) \
                         predict {classes} classes"
                    ),
                ));
            }
        }
        Targets::Values(y) => {
            if y.shape() != [n, width] {
                return Err(data(
                    op,
                    format!(
                        "targets {:?} do not match outputs [{n}, {width}]",
                        y.shape()
                    ),
                ));
            }
        }
    }
    Ok(width)
}
