//! Derivatives at the edges of their domains: at 0, at +-infinity, and where a function has a
//! kink or a pole. Each value is the one PyTorch's backward formulas give (its
//! `tools/autograd/derivatives.yaml`: `abs: grad * self.sgn()`, `relu: threshold_backward`,
//! `sqrt: grad / (2 * result)`, `log: grad / self`, `pow: exponent == 0 ? 0 : grad * exponent *
//! self.pow(exponent - 1)`, `sigmoid`/`tanh` from the result, `softplus` (threshold 20) 1 for
//! large inputs, `div: -grad * self / (other * other)` for the divisor), checked on both of
//! tapegrad's paths: rank-0 vars (the scalar fast path) and tensors (the tensor path).

use tapegrad_autodiff::{Tape, Var};
use tapegrad_tensor::Tensor;

const INF: f64 = f64::INFINITY;

/// d op(x) / dx at `x`, on the scalar path and on the tensor path; both must agree.
fn derivative(op: impl for<'t> Fn(Var<'t, f64>) -> Var<'t, f64>, x: f64) -> f64 {
    let tape = Tape::<f64>::new();
    let v = tape.var(Tensor::scalar(x));
    let scalar = tape.backward(op(v)).unwrap()[v].item().unwrap();
    let tape = Tape::<f64>::new();
    let v = tape.var(Tensor::from_vec(vec![x, 1.0], &[2]).unwrap());
    let grads = tape.backward(op(v).narrow(0, 0, 1).unwrap().sum()).unwrap();
    let tensor = grads[v].as_slice()[0];
    assert!(
        scalar.to_bits() == tensor.to_bits() || (scalar.is_nan() && tensor.is_nan()),
        "the paths disagree at x = {x}: scalar {scalar}, tensor {tensor}"
    );
    scalar
}

/// Asserts `got` is `want` (NaN equal to NaN; the sign of zero ignored).
fn same(what: &str, got: f64, want: f64) {
    assert!(
        got == want || (got.is_nan() && want.is_nan()),
        "{what}: got {got}, PyTorch gives {want}"
    );
}

#[test]
fn unary_derivatives_at_their_edges_match_pytorch() {
    type Case = (
        &'static str,
        fn(Var<'_, f64>) -> Var<'_, f64>,
        &'static [(f64, f64)],
    );
    let cases: [Case; 25] = [
        (
            "abs",
            |x| x.abs(),
            &[(0.0, 0.0), (-0.0, 0.0), (INF, 1.0), (-INF, -1.0)],
        ),
        ("relu", |x| x.relu(), &[(0.0, 0.0), (INF, 1.0), (-INF, 0.0)]),
        (
            "sqrt",
            |x| x.sqrt(),
            &[(0.0, INF), (INF, 0.0), (-1.0, f64::NAN)],
        ),
        ("ln", |x| x.ln(), &[(0.0, INF), (INF, 0.0), (-1.0, -1.0)]),
        ("exp", |x| x.exp(), &[(-INF, 0.0), (0.0, 1.0), (INF, INF)]),
        (
            "sigmoid",
            |x| x.sigmoid(),
            &[(-INF, 0.0), (0.0, 0.25), (INF, 0.0)],
        ),
        ("tanh", |x| x.tanh(), &[(-INF, 0.0), (0.0, 1.0), (INF, 0.0)]),
        (
            "softplus",
            |x| x.softplus(),
            &[(-INF, 0.0), (0.0, 0.5), (INF, 1.0)],
        ),
        (
            "square",
            |x| x.square(),
            &[(0.0, 0.0), (INF, INF), (-INF, -INF)],
        ),
        // x^0 is constant: 0 everywhere, also at 0 (p x^(p-1) would be 0 * inf = NaN).
        (
            "powf 0",
            |x| x.powf(0.0),
            &[(0.0, 0.0), (2.0, 0.0), (INF, 0.0), (-INF, 0.0)],
        ),
        ("powf 1", |x| x.powf(1.0), &[(0.0, 1.0), (INF, 1.0)]),
        ("powf 2", |x| x.powf(2.0), &[(0.0, 0.0), (-INF, -INF)]),
        ("powf 0.5", |x| x.powf(0.5), &[(0.0, INF), (INF, 0.0)]),
        ("powf -1", |x| x.powf(-1.0), &[(0.0, -INF), (INF, -0.0)]),
        // 1 / x: -1 / x^2.
        (
            "1 / x",
            |x| x.rdiv_scalar(1.0),
            &[(0.0, -INF), (INF, -0.0), (-INF, -0.0)],
        ),
        (
            "recip",
            |x| x.recip(),
            &[(0.0, -INF), (INF, -0.0), (-2.0, -0.25)],
        ),
        // leaky_relu_backward: self > 0 ? grad : grad * slope; elu_backward: alpha e^x for
        // x <= 0.
        (
            "leaky_relu",
            |x| x.leaky_relu(0.1),
            &[(0.0, 0.1), (INF, 1.0), (-INF, 0.1)],
        ),
        (
            "elu",
            |x| x.elu(2.0),
            &[(0.0, 2.0), (INF, 1.0), (-INF, 0.0)],
        ),
        (
            "log1p",
            |x| x.log1p(),
            &[(-1.0, INF), (0.0, 1.0), (INF, 0.0)],
        ),
        (
            "expm1",
            |x| x.expm1(),
            &[(-INF, 0.0), (0.0, 1.0), (INF, INF)],
        ),
        (
            "erf",
            |x| x.erf(),
            &[
                (0.0, std::f64::consts::FRAC_2_SQRT_PI),
                (INF, 0.0),
                (-INF, 0.0),
            ],
        ),
        (
            "gelu",
            |x| x.gelu(),
            &[(0.0, 0.5), (-40.0, 0.0), (40.0, 1.0)],
        ),
        (
            "gelu_tanh",
            |x| x.gelu_tanh(),
            &[(0.0, 0.5), (-40.0, 0.0), (40.0, 1.0)],
        ),
        (
            "silu",
            |x| x.silu(),
            &[(0.0, 0.5), (-800.0, 0.0), (800.0, 1.0)],
        ),
        (
            "sin",
            |x| x.sin(),
            &[(0.0, 1.0), (std::f64::consts::PI, -1.0)],
        ),
    ];
    for (name, op, points) in cases {
        for &(x, want) in points {
            same(&format!("d {name} / dx at {x}"), derivative(op, x), want);
        }
    }
}

#[test]
fn binary_derivatives_at_their_edges_match_pytorch() {
    // (a, b) -> (d/da, d/db) for a * b and a / b.
    let grads = |a: f64, b: f64, div: bool| {
        let tape = Tape::<f64>::new();
        let (va, vb) = (tape.var(Tensor::scalar(a)), tape.var(Tensor::scalar(b)));
        let y = if div { va / vb } else { va * vb };
        let g = tape.backward(y).unwrap();
        (g[va].item().unwrap(), g[vb].item().unwrap())
    };
    // mul: grad * other, grad * self; 0 * inf gives inf and 0.
    let (da, db) = grads(0.0, INF, false);
    same("d(a b)/da at (0, inf)", da, INF);
    same("d(a b)/db at (0, inf)", db, 0.0);
    // div: 1 / b and -a / b^2.
    let (da, db) = grads(1.0, 0.0, true);
    same("d(a/b)/da at (1, 0)", da, INF);
    same("d(a/b)/db at (1, 0)", db, -INF);
    let (da, db) = grads(0.0, 0.0, true);
    same("d(a/b)/da at (0, 0)", da, INF);
    same("d(a/b)/db at (0, 0)", db, f64::NAN);
    let (da, db) = grads(1.0, INF, true);
    same("d(a/b)/da at (1, inf)", da, 0.0);
    same("d(a/b)/db at (1, inf)", db, -0.0);
}

#[test]
fn reductions_at_ties_and_infinities() {
    // max_axis: as torch.max(x, dim), the gradient goes to the index the max returns (here the
    // first maximum), not split among ties.
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_vec(vec![2.0, 5.0, 5.0, 1.0], &[1, 4]).unwrap());
    let g = tape.backward(x.max_axis(1, false).unwrap().sum()).unwrap();
    assert_eq!(g[x].to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
    // softmax and log-softmax with a -inf logit: finite gradients, 0 for the -inf entry of
    // softmax's.
    let tape = Tape::<f64>::new();
    let z = tape.var(Tensor::from_vec(vec![-INF, 0.0, 1.0], &[1, 3]).unwrap());
    let w = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]).unwrap());
    let s = z.softmax(1).unwrap();
    let g = tape.backward((s * w).sum()).unwrap();
    assert!(g[z].all_finite(), "{:?}", g[z].to_vec());
    assert_eq!(g[z].as_slice()[0], 0.0);
    let ls = z.log_softmax(1).unwrap();
    let g = tape.backward(ls.narrow(1, 1, 2).unwrap().sum()).unwrap();
    assert!(g[z].all_finite(), "{:?}", g[z].to_vec());
    // BCE from logits at +-inf: sigmoid(z) - t, finite.
    let tape = Tape::<f64>::new();
    let z = tape.var(Tensor::from_vec(vec![INF, -INF], &[2, 1]).unwrap());
    let t = tape.constant(Tensor::from_vec(vec![0.0, 1.0], &[2, 1]).unwrap());
    let g = tape
        .backward(z.binary_cross_entropy_with_logits(t).unwrap())
        .unwrap();
    assert_eq!(g[z].to_vec(), vec![0.5, -0.5]);
}

#[test]
fn binary_elementwise_ops_at_ties_zeros_and_bounds() {
    // Both paths: rank 0 (scalar) and a [2] tensor whose first element is the point.
    fn grads(a: f64, b: f64, op: &str) -> [(f64, f64); 2] {
        let run = |shape: &[usize]| {
            let tape = Tape::<f64>::new();
            let fill = |v: f64| match shape {
                [] => Tensor::scalar(v),
                _ => Tensor::from_vec(vec![v, 1.5], shape).unwrap(),
            };
            let (va, vb) = (tape.var(fill(a)), tape.var(fill(b)));
            let y = match op {
                "maximum" => va.maximum(vb).unwrap(),
                "minimum" => va.minimum(vb).unwrap(),
                _ => va.pow(vb).unwrap(),
            };
            let g = tape.backward(y.sum()).unwrap();
            (g[va].as_slice()[0], g[vb].as_slice()[0])
        };
        [run(&[]), run(&[2])]
    }
    for path in grads(2.0, 2.0, "maximum") {
        assert_eq!(path, (0.5, 0.5), "maximum at a tie splits the gradient");
    }
    for path in grads(-1.0, -1.0, "minimum") {
        assert_eq!(path, (0.5, 0.5), "minimum at a tie splits the gradient");
    }
    // pow at base 0: d/db is 0 for b >= 0 (PyTorch masks it), d/da is 0 for b = 0.
    for path in grads(0.0, 2.0, "pow") {
        assert_eq!(path, (0.0, 0.0));
    }
    for path in grads(0.0, 0.0, "pow") {
        assert_eq!(path, (0.0, 0.0));
    }
    // clamp: 0 at the bounds and outside, 1 strictly inside, on both paths.
    for (x, want) in [(-1.0, 0.0), (0.0, 0.0), (0.5, 1.0), (1.0, 0.0), (2.0, 0.0)] {
        same(
            &format!("clamp at {x}"),
            derivative(|v| v.clamp(0.0, 1.0).unwrap(), x),
            want,
        );
    }
}

#[test]
fn reductions_at_their_edges() {
    // norm at 0: gradient 0, not NaN; max()/min() split ties evenly (as PyTorch's full
    // reductions, unlike max(dim)).
    let tape = Tape::<f64>::new();
    let z = tape.var(Tensor::zeros(&[3]));
    assert_eq!(tape.backward(z.norm()).unwrap()[z].to_vec(), vec![0.0; 3]);
    let x = tape.var(Tensor::from_vec(vec![2.0, 2.0, 2.0, 1.0], &[4]).unwrap());
    let g = tape.backward(x.max().unwrap()).unwrap();
    assert_eq!(g[x].to_vec(), vec![1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]);
    // logsumexp: finite at +-1000, -inf for a slice of -inf with a zero gradient there.
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_vec(vec![1000.0, -1000.0, -INF, -INF], &[2, 2]).unwrap());
    let y = x.logsumexp(1, false).unwrap();
    assert_eq!(y.value().to_vec(), vec![1000.0, -INF]);
    let w = tape.constant(Tensor::from_vec(vec![1.0, 0.0], &[2]).unwrap());
    let g = tape.backward(y.mul(w).unwrap().sum()).unwrap();
    assert_eq!(g[x].to_vec(), vec![1.0, 0.0, 0.0, 0.0]);
    // Errors: variance with too few elements, extremes of an empty tensor.
    let e = tape.var(Tensor::zeros(&[1, 0]));
    assert!(e.max().is_err() && e.min().is_err());
    let one = tape.var(Tensor::ones(&[1, 3]));
    assert_eq!(
        one.var_axis(0, false, 1).unwrap_err().to_string(),
        "invalid argument in var_axis: axis 0 of shape [1, 3] has 1 elements, correction 1 needs more"
    );
}

#[test]
fn layer_norm_and_dropout_at_their_edges() {
    use rand::{SeedableRng, rngs::StdRng};
    // A constant row with eps > 0: finite values and gradients (x̂ = 0).
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::full(&[2, 4], 3.0));
    let (g, b) = (tape.var(Tensor::ones(&[4])), tape.var(Tensor::zeros(&[4])));
    let y = x.layer_norm(g, b, 1e-5).unwrap();
    assert_eq!(y.value().to_vec(), vec![0.0; 8]);
    let grads = tape.backward(y.square().sum()).unwrap();
    assert!(grads[x].all_finite() && grads[g].all_finite());
    // Bad shapes and eps.
    assert!(x.layer_norm(b, g, -1.0).is_err());
    assert!(x.layer_norm(tape.var(Tensor::ones(&[3])), b, 1e-5).is_err());
    // Dropout: p = 1 zeros everything (and its gradient); p outside [0, 1] is an error; the
    // same seed gives the same mask.
    let mut rng = StdRng::seed_from_u64(3);
    let z = x.dropout(1.0, &mut rng).unwrap();
    assert_eq!(z.value().to_vec(), vec![0.0; 8]);
    assert_eq!(tape.backward(z.sum()).unwrap()[x].to_vec(), vec![0.0; 8]);
    assert!(x.dropout(1.5, &mut rng).is_err() && x.dropout(-0.1, &mut rng).is_err());
    let a = x
        .dropout(0.5, &mut StdRng::seed_from_u64(9))
        .unwrap()
        .value();
    let b2 = x
        .dropout(0.5, &mut StdRng::seed_from_u64(9))
        .unwrap()
        .value();
    assert_eq!(a, b2);
}
