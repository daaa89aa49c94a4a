//! Gradient checking: central differences in f64 against `backward`.

use tapegrad_tensor::{Float, Tensor};

use crate::error::AutodiffError;
use crate::tape::Tape;
use crate::var::Var;

/// The worst disagreement between `backward` and central differences for one input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputCheck {
    /// The largest |analytic - numeric| over the input's elements.
    pub max_abs_error: f64,
    /// The largest |analytic - numeric| / max(1, |analytic|, |numeric|): a relative error that
    /// stays meaningful for gradients near zero.
    pub max_rel_error: f64,
}

/// The result of [`gradcheck`]: one [`InputCheck`] per input, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckReport {
    /// Per input, the worst errors found.
    pub inputs: Vec<InputCheck>,
}

impl GradcheckReport {
    /// The largest absolute error over all inputs.
    pub fn max_abs_error(&self) -> f64 {
        self.inputs
            .iter()
            .map(|c| c.max_abs_error)
            .fold(0.0, f64::max)
    }

    /// The largest relative error over all inputs.
    pub fn max_rel_error(&self) -> f64 {
        self.inputs
            .iter()
            .map(|c| c.max_rel_error)
            .fold(0.0, f64::max)
    }

    /// Whether every input's relative error is at most `tol`.
    pub fn passed(&self, tol: f64) -> bool {
        self.max_rel_error() <= tol
    }
}

/// Checks the gradients of `f` at `inputs` against central differences: step `1e-6` in f64
/// (where checks belong), `5e-3` in f32 (about the cube root of its epsilon, so helpers written
/// for `Var<'t, f32>` can be checked as they are, to a looser tolerance).
///
/// `f` receives a fresh tape and one leaf var per input, and returns a var holding one element
/// (the function's value). Each input element is perturbed by +-h, `f` is re-evaluated, and the
/// slope (f(x+h) - f(x-h)) / 2h is compared with the gradient from `backward`.
///
/// `f` may return any error that converts from [`AutodiffError`] (`tapegrad::Error`, a user's
/// own), so `?` works inside it; where inference cannot tell which, name it, as the second
/// example does.
///
/// ```
/// use tapegrad_autodiff::{AutodiffError, gradcheck, Tape, Var};
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3])?;
/// let report =
///     gradcheck::<_, AutodiffError, _>(&[x], |_tape, v| Ok(v[0].sigmoid().mul(v[0])?.sum()))?;
/// assert!(report.passed(1e-7), "{report:?}");
///
/// // A helper written for f32, and an error type of the caller's own.
/// #[derive(Debug)]
/// struct MyError(String);
/// impl std::fmt::Display for MyError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str(&self.0)
///     }
/// }
/// impl std::error::Error for MyError {}
/// impl From<AutodiffError> for MyError {
///     fn from(e: AutodiffError) -> Self {
///         MyError(e.to_string())
///     }
/// }
/// fn swish<'t>(x: Var<'t, f32>) -> Result<Var<'t, f32>, MyError> {
///     Ok(x.mul(x.sigmoid())?)
/// }
/// let x32 = Tensor::<f32>::from_vec(vec![0.3, -1.2, 2.0], &[3])?;
/// let report = gradcheck::<f32, MyError, _>(&[x32], |_, v| Ok(swish(v[0])?.sum()))?;
/// assert!(report.passed(1e-2), "{report:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// Any error `f` or `backward` returns (for example a loss of more than one element).
pub fn gradcheck<E, Err, F>(inputs: &[Tensor<E>], f: F) -> Result<GradcheckReport, Err>
where
    E: Float,
    Err: From<AutodiffError> + std::error::Error,
    F: for<'t> Fn(&'t Tape<E>, &[Var<'t, E>]) -> Result<Var<'t, E>, Err>,
{
    let h = if E::DTYPE == "f32" { 5e-3 } else { 1e-6 };
    gradcheck_with_step(inputs, h, f)
}

/// [`gradcheck`] with a chosen finite-difference step `h`.
///
/// # Errors
///
/// As [`gradcheck`].
pub fn gradcheck_with_step<E, Err, F>(
    inputs: &[Tensor<E>],
    h: f64,
    f: F,
) -> Result<GradcheckReport, Err>
where
    E: Float,
    Err: From<AutodiffError> + std::error::Error,
    F: for<'t> Fn(&'t Tape<E>, &[Var<'t, E>]) -> Result<Var<'t, E>, Err>,
{
    check(inputs, h, false, f)
}

/// The check, with the finite differences evaluated on constants or (`as_vars`, for a function
/// that differentiates its inputs itself, as [`crate::gradgradcheck`]'s does) on vars.
pub(crate) fn check<E, Err, F>(
    inputs: &[Tensor<E>],
    h: f64,
    as_vars: bool,
    f: F,
) -> Result<GradcheckReport, Err>
where
    E: Float,
    Err: From<AutodiffError> + std::error::Error,
    F: for<'t> Fn(&'t Tape<E>, &[Var<'t, E>]) -> Result<Var<'t, E>, Err>,
{
    let eval = |values: &[Tensor<E>]| -> Result<f64, Err> {
        let tape = Tape::new();
        let vars: Vec<Var<'_, E>> = values
            .iter()
            .map(|v| {
                if as_vars {
                    tape.var(v.clone())
                } else {
                    tape.constant(v.clone())
                }
            })
            .collect();
        let out = f(&tape, &vars)?;
        Ok(out.item()?.to_f64())
    };
    let tape = Tape::new();
    let vars: Vec<Var<'_, E>> = inputs.iter().map(|v| tape.var(v.clone())).collect();
    let out = f(&tape, &vars)?;
    if out.with_value(|v| v.len()) != 1 {
        return Err(AutodiffError::NonScalarLoss {
            shape: out.shape().to_vec(),
        }
        .into());
    }
    let grads = tape.backward(out)?;
    let mut report = GradcheckReport { inputs: Vec::new() };
    let mut values: Vec<Tensor<E>> = inputs.to_vec();
    for (k, var) in vars.iter().enumerate() {
        let analytic = grads.get(*var)?.clone();
        let mut check = InputCheck {
            max_abs_error: 0.0,
            max_rel_error: 0.0,
        };
        for e in 0..inputs[k].len() {
            let x0 = inputs[k].as_slice()[e];
            let (xp, xm) = (E::from_f64(x0.to_f64() + h), E::from_f64(x0.to_f64() - h));
            values[k].as_mut_slice()[e] = xp;
            let up = eval(&values)?;
            values[k].as_mut_slice()[e] = xm;
            let down = eval(&values)?;
            values[k].as_mut_slice()[e] = x0;
            // The step actually taken (rounded to E).
            let numeric = (up - down) / (xp.to_f64() - xm.to_f64());
            let a = analytic.as_slice()[e].to_f64();
            let abs = (a - numeric).abs();
            let rel = abs / 1f64.max(a.abs()).max(numeric.abs());
            check.max_abs_error = check.max_abs_error.max(abs);
            check.max_rel_error = check.max_rel_error.max(rel);
        }
        report.inputs.push(check);
    }
    Ok(report)
}
