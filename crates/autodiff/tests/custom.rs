//! User-defined ops (`CustomOp`), written here outside the crate as a user would.

use std::sync::Arc;

use tapegrad_autodiff::{AutodiffError, CustomOp, Tape, Var, gradcheck};
use tapegrad_tensor::{Float, Tensor, TensorError};

/// erf, with its derivative 2/sqrt(pi) e^(-x^2).
struct Erf;

impl<E: Float> CustomOp<E> for Erf {
    fn name(&self) -> &str {
        "erf"
    }
    fn forward(&self, inputs: &[&Tensor<E>]) -> Result<Tensor<E>, AutodiffError> {
        Ok(inputs[0].map(|x| E::from_f64(libm::erf(x.to_f64()))))
    }
    fn backward(
        &self,
        inputs: &[&Tensor<E>],
        _output: &Tensor<E>,
        grad: &Tensor<E>,
    ) -> Result<Vec<Option<Tensor<E>>>, AutodiffError> {
        let slope = inputs[0].map(|x| {
            let x = x.to_f64();
            E::from_f64(2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp())
        });
        Ok(vec![Some(slope.mul(grad)?)])
    }
}

/// a * b with broadcasting, gradient only for `a` (b is treated as a constant).
struct ScaleBy;

impl CustomOp<f64> for ScaleBy {
    fn name(&self) -> &str {
        "scale_by"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>, AutodiffError> {
        if inputs.len() != 2 {
            return Err(AutodiffError::Tensor(TensorError::Invalid {
                op: "scale_by",
                reason: format!("takes 2 inputs, got {}", inputs.len()),
            }));
        }
        Ok(inputs[0].mul(inputs[1])?)
    }
    fn backward(
        &self,
        inputs: &[&Tensor<f64>],
        _output: &Tensor<f64>,
        grad: &Tensor<f64>,
    ) -> Result<Vec<Option<Tensor<f64>>>, AutodiffError> {
        let ga = grad.mul(inputs[1])?.sum_to(inputs[0].shape())?;
        Ok(vec![Some(ga), None])
    }
}

/// A backward that breaks its contract in a chosen way.
struct Broken(&'static str);

impl CustomOp<f64> for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>, AutodiffError> {
        Ok(inputs[0].clone())
    }
    fn backward(
        &self,
        inputs: &[&Tensor<f64>],
        _output: &Tensor<f64>,
        grad: &Tensor<f64>,
    ) -> Result<Vec<Option<Tensor<f64>>>, AutodiffError> {
        match self.0 {
            "count" => Ok(vec![Some(grad.clone()), None]),
            "shape" => Ok(vec![Some(Tensor::ones(&[inputs[0].len() + 1]))]),
            "nan" => Ok(vec![Some(grad.map(|_| f64::NAN))]),
            _ => Err(AutodiffError::Tensor(TensorError::Invalid {
                op: "broken",
                reason: "backward refused".into(),
            })),
        }
    }
}

#[test]
fn a_user_defined_erf_matches_known_values_and_passes_gradcheck() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_vec(vec![-1.0, 0.0, 0.5], &[3]).unwrap());
    let y = Var::custom(&[x], Arc::new(Erf)).unwrap();
    let v = y.value();
    assert!((v.as_slice()[0] + 0.842_700_792_949_714_9).abs() < 1e-12);
    assert_eq!(v.as_slice()[1], 0.0);
    let g = tape.backward(y.sum()).unwrap();
    // d erf / dx at 0 is 2 / sqrt(pi).
    assert!((g[x].as_slice()[1] - std::f64::consts::FRAC_2_SQRT_PI).abs() < 1e-12);
    // One node, named in the trace and the drawing.
    assert_eq!(y.op_name(), "erf");
    assert!(tape.trace().lines().any(|l| l.contains("erf")));
    assert!(tape.to_dot().contains("#1 erf"));
    // gradcheck in f64, composed with built-in ops and broadcasting.
    let xs = Tensor::from_vec(vec![-2.0, -0.3, 0.0, 0.7, 1.9, 3.0], &[2, 3]).unwrap();
    let w = Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3]).unwrap();
    let report = gradcheck(&[xs, w], |_, v| {
        let e = Var::custom(&[v[0]], Arc::new(Erf))?;
        e.mul(v[1])?.tanh().sum_axis(1, false)?.sum_axis(0, false)
    })
    .unwrap();
    assert!(report.passed(1e-7), "{report:?}");
    // The same op in f32, and on the scalar path's rank-0 vars.
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::scalar(0.5));
    let y = Var::custom(&[x], Arc::new(Erf)).unwrap();
    assert!((tape.backward(y).unwrap()[x].item().unwrap() - 0.878_782_6).abs() < 1e-6);
}

#[test]
fn several_inputs_and_no_gradient_for_some() {
    let a = Tensor::from_vec(vec![1.0, -2.0, 3.0, 0.5], &[2, 2]).unwrap();
    let b = Tensor::from_vec(vec![2.0, -1.0], &[2]).unwrap();
    let report = gradcheck(std::slice::from_ref(&a), |tape, v| {
        let b = tape.constant(b.clone());
        Var::custom(&[v[0], b], Arc::new(ScaleBy))?
            .square()
            .sum_axis(0, false)?
            .sum_axis(0, false)
    })
    .unwrap();
    assert!(report.passed(1e-7), "{report:?}");
    // `None` for b: b gets no gradient (zeros), and backward does not fail.
    let tape = Tape::<f64>::new();
    let (va, vb) = (tape.var(a), tape.var(b));
    let y = Var::custom(&[va, vb], Arc::new(ScaleBy)).unwrap();
    let g = tape.backward(y.sum()).unwrap();
    assert_eq!(g[va].to_vec(), vec![2.0, -1.0, 2.0, -1.0]);
    assert!(!g.reaches(vb));
}

#[test]
fn errors_of_user_code_carry_the_ops_name() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::ones(&[3]));
    // The forward refuses: the error names the op and carries its message; nothing is recorded.
    let err = Var::custom(&[x], Arc::new(ScaleBy)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "custom op scale_by: invalid argument in scale_by: takes 2 inputs, got 1"
    );
    assert_eq!(tape.len(), 1);
    // Backward contracts.
    let cases = [
        (
            "count",
            "custom op broken: backward returned 2 gradients for 1 inputs",
        ),
        (
            "shape",
            "custom op broken: backward returned a gradient of shape [4] for input 0 of shape [3]",
        ),
        (
            "refuse",
            "custom op broken: invalid argument in broken: backward refused",
        ),
    ];
    for (how, msg) in cases {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::ones(&[3]));
        let y = Var::custom(&[x], Arc::new(Broken(how))).unwrap();
        let err = tape.backward(y.sum()).unwrap_err();
        assert!(matches!(err, AutodiffError::Custom { .. }), "{err}");
        assert_eq!(err.to_string(), msg);
    }
    // An empty input list, and vars of two tapes.
    assert!(Var::<f64>::custom(&[], Arc::new(Erf)).is_err());
    let other = Tape::<f64>::new();
    let z = other.var(Tensor::ones(&[3]));
    assert!(matches!(
        Var::custom(&[x, z], Arc::new(ScaleBy)),
        Err(AutodiffError::ForeignVar { .. })
    ));
}

#[test]
fn the_finite_check_names_a_custom_op() {
    let tape = Tape::<f64>::new();
    tape.set_check_finite(true);
    let x = tape.var(Tensor::ones(&[3])).named("x");
    let y = Var::custom(&[x], Arc::new(Broken("nan"))).unwrap();
    let err = tape.backward(y.sum()).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "non-finite backward gradient from the backward of node #1 (broken) flowing to its \
             input node #0 (leaf \"x\")"
        ),
        "{err}"
    );
}

#[test]
fn clearing_the_tape_releases_the_ops() {
    let op: Arc<dyn CustomOp<f64>> = Arc::new(Erf);
    let mut tape = Tape::<f64>::new();
    {
        let x = tape.var(Tensor::scalar(1.0));
        let y = Var::custom(&[x], Arc::clone(&op)).unwrap();
        let _ = Var::custom(&[y], Arc::clone(&op)).unwrap();
    }
    assert_eq!(Arc::strong_count(&op), 3);
    tape.clear();
    assert_eq!(Arc::strong_count(&op), 1);
}
