//! User-defined ops: a [`CustomOp`] is a forward and a backward written outside the crate,
//! recorded as one node by [`Var::custom`].

use std::sync::Arc;

use tapegrad_tensor::{Float, Tensor};

use crate::error::{AutodiffError, Result};
use crate::ops::{BackwardCtx, Op};
use crate::var::Var;

/// An op of your own: its forward and its backward, recorded as one node by [`Var::custom`].
///
/// The node shows in [`crate::Tape::trace`] and [`crate::Tape::to_dot`] under [`CustomOp::name`],
/// the finite check names it, and [`crate::gradcheck`] checks it like any built-in op. An error
/// from `forward` or `backward` comes back as [`AutodiffError::Custom`] carrying the op's name
/// and the message; a backward that returns the wrong number of gradients, or a gradient whose
/// shape is not its input's, is such an error too (never a panic, never a silent broadcast).
///
/// `erf`, the error function, with its derivative 2/sqrt(pi) e^(-x^2):
///
/// ```
/// use std::sync::Arc;
/// use tapegrad_autodiff::{AutodiffError, CustomOp, Tape, Var, gradcheck};
/// use tapegrad_tensor::{Float, Tensor};
///
/// struct Erf;
///
/// impl<E: Float> CustomOp<E> for Erf {
///     fn name(&self) -> &str {
///         "erf"
///     }
///     fn forward(&self, inputs: &[&Tensor<E>]) -> Result<Tensor<E>, AutodiffError> {
///         Ok(inputs[0].map(|x| E::from_f64(libm::erf(x.to_f64()))))
///     }
///     fn backward(
///         &self,
///         inputs: &[&Tensor<E>],
///         _output: &Tensor<E>,
///         grad_output: &Tensor<E>,
///     ) -> Result<Vec<Option<Tensor<E>>>, AutodiffError> {
///         let slope = inputs[0].map(|x| {
///             let x = x.to_f64();
///             E::from_f64(2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp())
///         });
///         Ok(vec![Some(slope.mul(grad_output)?)])
///     }
/// }
///
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::scalar(0.5));
/// let y = Var::custom(&[x], Arc::new(Erf))?;
/// assert!((y.item()? - 0.520_499_877_813_046_5).abs() < 1e-12);
/// let g = tape.backward(y)?;
/// assert!((g[x].item()? - 0.878_782_578_935_444_6).abs() < 1e-12);
/// assert!(tape.trace().contains("erf"));
///
/// // Checked against central differences like any built-in op.
/// let xs = Tensor::from_vec(vec![-1.5, 0.0, 0.3, 2.0], &[4])?;
/// let report = gradcheck(&[xs], |_, v| Var::custom(&[v[0]], Arc::new(Erf))?.sum_axis(0, false))?;
/// assert!(report.passed(1e-7), "{report:?}");
/// # Ok::<(), AutodiffError>(())
/// ```
pub trait CustomOp<E: Float>: Send + Sync {
    /// The op's name, as traces, drawings and errors show it.
    fn name(&self) -> &str;

    /// The forward value from the inputs' values.
    ///
    /// # Errors
    ///
    /// Whatever is wrong with the inputs; it reaches the caller of [`Var::custom`] as
    /// [`AutodiffError::Custom`].
    fn forward(&self, inputs: &[&Tensor<E>]) -> Result<Tensor<E>>;

    /// The gradient of the loss with respect to each input, given the inputs, the forward
    /// value and the gradient with respect to the output: one entry per input, each of its
    /// input's shape, or `None` where no gradient flows.
    ///
    /// # Errors
    ///
    /// Whatever goes wrong; it reaches the caller of `backward` as [`AutodiffError::Custom`].
    fn backward(
        &self,
        inputs: &[&Tensor<E>],
        output: &Tensor<E>,
        grad_output: &Tensor<E>,
    ) -> Result<Vec<Option<Tensor<E>>>>;

    /// The backward written with `Var` ops, for derivatives of derivatives
    /// ([`crate::Tape::grad`]): given the inputs, the output and the upstream gradient as vars
    /// of the tape, one contribution per input (its shape) or `None`. The default, `None`, says
    /// the op has none; `grad` then stops with [`AutodiffError::NotTwiceDifferentiable`]
    /// naming it, while `backward` keeps working.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tapegrad_autodiff::{AutodiffError, CustomOp, Tape, Var};
    /// use tapegrad_tensor::{Float, Tensor};
    ///
    /// /// x^3, with its backward 3 x^2 g written both ways.
    /// struct Cube;
    /// impl<E: Float> CustomOp<E> for Cube {
    ///     fn name(&self) -> &str { "cube" }
    ///     fn forward(&self, x: &[&Tensor<E>]) -> Result<Tensor<E>, AutodiffError> {
    ///         Ok(x[0].map(|v| v * v * v))
    ///     }
    ///     fn backward(&self, x: &[&Tensor<E>], _: &Tensor<E>, g: &Tensor<E>)
    ///         -> Result<Vec<Option<Tensor<E>>>, AutodiffError> {
    ///         Ok(vec![Some(x[0].map(|v| E::from_f64(3.0) * v * v).mul(g)?)])
    ///     }
    ///     fn vjp<'t>(&self, x: &[Var<'t, E>], _: Var<'t, E>, g: Var<'t, E>)
    ///         -> Option<Result<Vec<Option<Var<'t, E>>>, AutodiffError>> {
    ///         Some(x[0].square().mul_scalar(E::from_f64(3.0)).mul(g).map(|d| vec![Some(d)]))
    ///     }
    /// }
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let y = Var::custom(&[x], Arc::new(Cube))?;
    /// let dy = tape.grad(y, &[x])?[0]; // 3 x^2 = 12
    /// let d2y = tape.grad(dy, &[x])?[0]; // 6 x = 12
    /// assert_eq!((dy.item()?, d2y.item()?), (12.0, 12.0));
    /// # Ok::<(), AutodiffError>(())
    /// ```
    #[allow(clippy::type_complexity)]
    fn vjp<'t>(
        &self,
        inputs: &[Var<'t, E>],
        output: Var<'t, E>,
        grad_output: Var<'t, E>,
    ) -> Option<Result<Vec<Option<Var<'t, E>>>>> {
        let _ = (inputs, output, grad_output);
        None
    }
}

/// An error of `op`'s user code, carrying its name and message (an error that already names
/// a custom op is passed on as it is).
fn wrap<E: Float>(op: &dyn CustomOp<E>, e: AutodiffError) -> AutodiffError {
    match e {
        e @ AutodiffError::Custom { .. } => e,
        e => AutodiffError::Custom {
            op: op.name().to_string(),
            reason: e.to_string(),
        },
    }
}

impl<'t, E: Float> Var<'t, E> {
    /// Records a user-defined op over `inputs` as one node (see [`CustomOp`] for an example).
    ///
    /// # Errors
    ///
    /// [`AutodiffError::ForeignVar`] when the inputs belong to different tapes, an error for
    /// an empty input list, and [`AutodiffError::Custom`] when the op's forward fails.
    pub fn custom(inputs: &[Var<'t, E>], op: Arc<dyn CustomOp<E>>) -> Result<Self> {
        let tape = inputs
            .first()
            .ok_or_else(|| AutodiffError::Custom {
                op: op.name().to_string(),
                reason: "a custom op needs at least one input".into(),
            })?
            .tape();
        let index = {
            let customs = &mut tape.store.borrow_mut().customs;
            customs.push(Arc::clone(&op));
            customs.len() - 1
        };
        let recorded = Var::record_nary(inputs, "custom", |values| {
            let value = op.forward(values).map_err(|e| wrap(&*op, e))?;
            Ok((
                Op::Custom {
                    index: index as u32,
                },
                value,
                None,
            ))
        });
        if recorded.is_err() {
            // Nothing was recorded: drop the op again (it is the last one pushed).
            let customs = &mut tape.store.borrow_mut().customs;
            if customs.len() == index + 1 {
                customs.pop();
            }
        }
        recorded
    }
}

/// The backward of a custom node: the user's gradients, checked, then accumulated.
pub(crate) fn backward<E: Float>(ctx: &mut BackwardCtx<'_, E>, op: &dyn CustomOp<E>) -> Result<()> {
    let n = ctx.arity();
    let inputs: Vec<&Tensor<E>> = (0..n).map(|k| ctx.input(k)).collect();
    let grads = op
        .backward(&inputs, ctx.output(), ctx.grad())
        .map_err(|e| wrap(op, e))?;
    if grads.len() != n {
        return Err(AutodiffError::Custom {
            op: op.name().to_string(),
            reason: format!("backward returned {} gradients for {n} inputs", grads.len()),
        });
    }
    for (k, g) in grads.into_iter().enumerate() {
        let Some(g) = g else { continue };
        if g.shape() != inputs[k].shape() {
            return Err(AutodiffError::Custom {
                op: op.name().to_string(),
                reason: format!(
                    "backward returned a gradient of shape {:?} for input {k} of shape {:?}",
                    g.shape(),
                    inputs[k].shape()
                ),
            });
        }
        ctx.accumulate(k, g)?;
    }
    Ok(())
}
