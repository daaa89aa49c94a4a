//! The Hessian of logistic regression's loss from the tape, against its closed form, on real
//! data; and a network's gradient graph differentiated again.

use tapegrad::autodiff::{Tape, Var, hessian, hvp};
use tapegrad::nn::{self, Standardizer};
use tapegrad::tensor::Tensor;

/// Breast cancer, standardized, with a column of ones for the bias: `[569, 31]`, and labels.
fn design() -> (Tensor<f64>, Tensor<f64>) {
    let data = nn::data::breast_cancer::<f64>();
    let x = Standardizer::fit(&data.x)
        .unwrap()
        .transform(&data.x)
        .unwrap();
    let n = x.shape()[0];
    let ones = Tensor::ones(&[n, 1]);
    let x = Tensor::concat(&[&x, &ones], 1).unwrap();
    let labels = data.labels().unwrap();
    let y = Tensor::from_fn(&[n, 1], |i| labels[i] as f64);
    (x, y)
}

fn mean_bce<'t>(
    x: &Tensor<f64>,
    y: &Tensor<f64>,
    tape: &'t Tape<f64>,
    w: Var<'t, f64>,
) -> Var<'t, f64> {
    let d = x.shape()[1];
    tape.constant(x.clone())
        .matmul(w.reshape(&[d, 1]).unwrap())
        .unwrap()
        .binary_cross_entropy_with_logits(tape.constant(y.clone()))
        .unwrap()
}

#[test]
fn the_hessian_of_logistic_regression_is_x_t_diag_p_1_minus_p_x_over_n() {
    let (x, y) = design();
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let w = Tensor::from_fn(&[d], |i| ((i * 7 % 13) as f64 - 6.0) * 0.05);
    let h = hessian(&w, |tape, w| Ok(mean_bce(&x, &y, tape, w))).unwrap();
    // The closed form, in plain loops.
    let xs = x.as_slice();
    let mut want = vec![0.0; d * d];
    for r in 0..n {
        let z: f64 = (0..d).map(|j| xs[r * d + j] * w.as_slice()[j]).sum();
        let p = 1.0 / (1.0 + (-z).exp());
        let s = p * (1.0 - p) / n as f64;
        for a in 0..d {
            for b in 0..d {
                want[a * d + b] += s * xs[r * d + a] * xs[r * d + b];
            }
        }
    }
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    let worst = h
        .as_slice()
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0f64, f64::max);
    assert!(worst < 1e-10, "worst relative difference {worst:e}");
    // A Hessian-vector product agrees with the dense Hessian.
    let v = Tensor::from_fn(&[d], |i| (i as f64 * 0.3).sin());
    let hv = hvp(&w, &v, |tape, w| Ok(mean_bce(&x, &y, tape, w))).unwrap();
    let dense = h.matmul(&v.reshape(&[d, 1]).unwrap()).unwrap();
    for (a, b) in hv.as_slice().iter().zip(dense.as_slice()) {
        assert!((a - b).abs() < 1e-12 * scale.max(1.0), "{a} {b}");
    }
}

#[test]
fn a_networks_input_gradient_is_differentiable_again() {
    // u(x) = tanh-MLP; du/dx from grad, d2u/dx2 from grad of that, checked against finite
    // differences of du/dx.
    let mut rng = <tapegrad::rand::rngs::StdRng as tapegrad::rand::SeedableRng>::seed_from_u64(3);
    let net = nn::Network::<f64>::mlp_with(
        &[1, 8, 8, 1],
        nn::Activation::Tanh,
        nn::Activation::Identity,
        &mut rng,
    )
    .unwrap();
    let du = |x0: f64| -> (f64, f64) {
        let tape = Tape::new();
        let x = tape.var(Tensor::from_vec(vec![x0], &[1, 1]).unwrap());
        let bound = net.bind(&tape);
        let u = nn::Model::forward(&net, &bound, x).unwrap();
        let d1 = tape.grad(u.sum(), &[x]).unwrap()[0];
        let d2 = tape.grad(d1.sum(), &[x]).unwrap()[0];
        (d1.item().unwrap(), d2.item().unwrap())
    };
    for x0 in [-1.0, 0.2, 1.5] {
        let h = 1e-5;
        let numeric = (du(x0 + h).0 - du(x0 - h).0) / (2.0 * h);
        let (_, d2) = du(x0);
        assert!(
            (numeric - d2).abs() < 1e-7 * d2.abs().max(1.0),
            "{numeric} {d2}"
        );
    }
}
