//! Gradient checking: central differences in f64 against `backward`.

use tapegrad_tensor::Tensor;

use crate::error::{AutodiffError, Result};
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

/// Checks the gradients of `f` at `inputs` against central differences with step `1e-6`.
///
/// `f` receives a fresh tape and one leaf var per input, and returns a var holding one element
/// (the function's value). Each input element is perturbed by +-h, `f` is re-evaluated, and the
/// slope (f(x+h) - f(x-h)) / 2h is compared with the gradient from `backward`.
///
/// ```
/// use tapegrad_autodiff::{gradcheck, Tape, Var};
/// use tapegrad_tensor::Tensor;
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3])?;
/// let report = gradcheck(&[x], |_tape, v| Ok(v[0].sigmoid().mul(v[0])?.sum()))?;
/// assert!(report.passed(1e-7), "{report:?}");
/// # Ok::<(), tapegrad_autodiff::AutodiffError>(())
/// ```
///
/// # Errors
///
/// Any error `f` or `backward` returns (for example a loss of more than one element).
pub fn gradcheck<F>(inputs: &[Tensor<f64>], f: F) -> Result<GradcheckReport>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    gradcheck_with_step(inputs, 1e-6, f)
}

/// [`gradcheck`] with a chosen finite-difference step `h`.
///
/// # Errors
///
/// As [`gradcheck`].
pub fn gradcheck_with_step<F>(inputs: &[Tensor<f64>], h: f64, f: F) -> Result<GradcheckReport>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    let eval = |values: &[Tensor<f64>]| -> Result<f64> {
        let tape = Tape::new();
        let vars: Vec<Var<'_, f64>> = values.iter().map(|v| tape.constant(v.clone())).collect();
        let out = f(&tape, &vars)?;
        out.item()
    };
    let tape = Tape::new();
    let vars: Vec<Var<'_, f64>> = inputs.iter().map(|v| tape.var(v.clone())).collect();
    let out = f(&tape, &vars)?;
    if out.with_value(|v| v.len()) != 1 {
        return Err(AutodiffError::NonScalarLoss {
            shape: out.shape().to_vec(),
        });
    }
    let grads = tape.backward(out)?;
    let mut report = GradcheckReport { inputs: Vec::new() };
    let mut values: Vec<Tensor<f64>> = inputs.to_vec();
    for (k, var) in vars.iter().enumerate() {
        let analytic = grads.get(*var)?.clone();
        let mut check = InputCheck {
            max_abs_error: 0.0,
            max_rel_error: 0.0,
        };
        for e in 0..inputs[k].len() {
            let x0 = inputs[k].as_slice()[e];
            values[k].as_mut_slice()[e] = x0 + h;
            let up = eval(&values)?;
            values[k].as_mut_slice()[e] = x0 - h;
            let down = eval(&values)?;
            values[k].as_mut_slice()[e] = x0;
            let numeric = (up - down) / (2.0 * h);
            let a = analytic.as_slice()[e];
            let abs = (a - numeric).abs();
            let rel = abs / 1f64.max(a.abs()).max(numeric.abs());
            check.max_abs_error = check.max_abs_error.max(abs);
            check.max_rel_error = check.max_rel_error.max(rel);
        }
        report.inputs.push(check);
    }
    Ok(report)
}
