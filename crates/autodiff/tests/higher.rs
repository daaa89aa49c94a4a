//! Derivatives of derivatives: closed forms to the fourth order, mixed partials, the helpers,
//! and the second-order gradient check of every op that has a second derivative.

// `&[x.clone()]` keeps every check one line; the copies are a few numbers.
#![allow(clippy::cloned_ref_to_slice_refs)]
use tapegrad_autodiff::{AutodiffError, Tape, Var, gradgradcheck, hessian, hvp, jacobian};
use tapegrad_tensor::Tensor;

type F = fn(f64) -> f64;

/// The first four derivatives of each function, in closed form.
fn closed_forms() -> Vec<(&'static str, [f64; 3], [F; 4])> {
    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }
    vec![
        (
            "sin",
            [-1.3, 0.2, 2.5],
            [|x| x.cos(), |x| -x.sin(), |x| -x.cos(), |x| x.sin()],
        ),
        (
            "tanh",
            [-1.1, 0.3, 0.9],
            [
                |x| 1.0 - x.tanh().powi(2),
                |x| {
                    let t = x.tanh();
                    -2.0 * t * (1.0 - t * t)
                },
                |x| {
                    let t = x.tanh();
                    (6.0 * t * t - 2.0) * (1.0 - t * t)
                },
                |x| {
                    let t = x.tanh();
                    8.0 * t * (1.0 - t * t) * (2.0 - 3.0 * t * t)
                },
            ],
        ),
        (
            "sigmoid",
            [-2.0, 0.1, 1.7],
            [
                |x| sig(x) * (1.0 - sig(x)),
                |x| sig(x) * (1.0 - sig(x)) * (1.0 - 2.0 * sig(x)),
                |x| {
                    let s = sig(x);
                    s * (1.0 - s) * (1.0 - 6.0 * s + 6.0 * s * s)
                },
                |x| {
                    let s = sig(x);
                    s * (1.0 - s) * (1.0 - 2.0 * s) * (1.0 - 12.0 * s + 12.0 * s * s)
                },
            ],
        ),
        (
            "exp",
            [-1.0, 0.0, 1.5],
            [|x| x.exp(), |x| x.exp(), |x| x.exp(), |x| x.exp()],
        ),
        (
            "ln",
            [0.3, 1.0, 4.0],
            [
                |x| 1.0 / x,
                |x| -1.0 / (x * x),
                |x| 2.0 / x.powi(3),
                |x| -6.0 / x.powi(4),
            ],
        ),
        (
            "sqrt",
            [0.25, 1.0, 9.0],
            [
                |x| 0.5 * x.powf(-0.5),
                |x| -0.25 * x.powf(-1.5),
                |x| 0.375 * x.powf(-2.5),
                |x| -0.9375 * x.powf(-3.5),
            ],
        ),
    ]
}

fn apply<'t>(name: &str, x: Var<'t, f64>) -> Var<'t, f64> {
    match name {
        "sin" => x.sin(),
        "tanh" => x.tanh(),
        "sigmoid" => x.sigmoid(),
        "exp" => x.exp(),
        "ln" => x.ln(),
        "sqrt" => x.sqrt(),
        _ => unreachable!(),
    }
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn four_derivatives_in_closed_form_on_the_scalar_path() {
    for (name, points, ds) in closed_forms() {
        for x0 in points {
            let tape = Tape::<f64>::new();
            let x = tape.var(Tensor::scalar(x0));
            let mut d = apply(name, x);
            for (k, want) in ds.iter().enumerate() {
                d = tape.grad(d, &[x]).unwrap()[0];
                close(
                    d.item().unwrap(),
                    want(x0),
                    &format!("{name}^({}) at {x0}", k + 1),
                );
            }
        }
    }
}

#[test]
fn four_derivatives_in_closed_form_on_the_tensor_path() {
    for (name, points, ds) in closed_forms() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_vec(points.to_vec(), &[3]).unwrap());
        // Elementwise, so d/dx_i of sum_j f^(k)(x_j) is f^(k+1)(x_i).
        let mut d = apply(name, x).sum();
        for (k, want) in ds.iter().enumerate() {
            let g = tape.grad(d, &[x]).unwrap()[0];
            assert_eq!(g.shape().as_slice(), &[3]);
            for (i, &x0) in points.iter().enumerate() {
                close(
                    g.value().as_slice()[i],
                    want(x0),
                    &format!("{name}^({}) at {x0} (tensor)", k + 1),
                );
            }
            d = g.sum();
        }
    }
}

#[test]
fn mixed_partials_agree_in_both_orders() {
    // f(x, y) = x^2 + 3y + xy.
    let tape = Tape::<f64>::new();
    let (x, y) = (
        tape.var(Tensor::scalar(1.5)),
        tape.var(Tensor::scalar(-2.0)),
    );
    let f = x
        .square()
        .add(y.mul_scalar(3.0))
        .unwrap()
        .add(x.mul(y).unwrap())
        .unwrap();
    let g = tape.grad(f, &[x, y]).unwrap();
    assert_eq!(g[0].item().unwrap(), 2.0 * 1.5 - 2.0); // 2x + y
    assert_eq!(g[1].item().unwrap(), 3.0 + 1.5); // 3 + x
    let dxdy = tape.grad(g[0], &[y]).unwrap()[0].item().unwrap();
    let dydx = tape.grad(g[1], &[x]).unwrap()[0].item().unwrap();
    assert_eq!((dxdy, dydx), (1.0, 1.0));
    let dxdx = tape.grad(g[0], &[x]).unwrap()[0].item().unwrap();
    let dydy = tape.grad(g[1], &[y]).unwrap()[0];
    assert_eq!(dxdx, 2.0);
    // d/dy (3 + x) does not depend on y: a zeros-valued constant.
    assert_eq!(dydy.item().unwrap(), 0.0);
    assert!(!dydy.requires_grad());
}

#[test]
fn grad_takes_intermediate_nodes_and_refuses_bad_calls() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
    let h = x.square(); // intermediate
    let y = h.sum().mul_scalar(3.0);
    let g = tape.grad(y, &[h, x]).unwrap();
    assert_eq!(g[0].value().to_vec(), vec![3.0, 3.0]);
    assert_eq!(g[1].value().to_vec(), vec![6.0, 12.0]);
    // The gradient graph matches backward's numbers.
    let b = tape.backward(y).unwrap();
    assert_eq!(b[x].to_vec(), g[1].value().to_vec());
    // A non-scalar y, and a var of another tape.
    assert!(matches!(
        tape.grad(h, &[x]),
        Err(AutodiffError::NonScalarLoss { .. })
    ));
    let other = Tape::<f64>::new();
    let z = other.var(Tensor::scalar(1.0));
    assert!(matches!(
        tape.grad(y, &[z]),
        Err(AutodiffError::ForeignVar { .. })
    ));
    // The gradient's nodes are on the tape, after y's, and show in the trace.
    assert!(tape.len() > y.index() + 1);
    assert!(tape.trace().contains("mul"));
}

#[test]
fn a_custom_op_without_a_differentiable_backward_is_named() {
    use std::sync::Arc;
    use tapegrad_autodiff::CustomOp;
    struct Cube;
    impl CustomOp<f64> for Cube {
        fn name(&self) -> &str {
            "cube"
        }
        fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>, AutodiffError> {
            Ok(x[0].map(|v| v * v * v))
        }
        fn backward(
            &self,
            x: &[&Tensor<f64>],
            _: &Tensor<f64>,
            g: &Tensor<f64>,
        ) -> Result<Vec<Option<Tensor<f64>>>, AutodiffError> {
            Ok(vec![Some(x[0].map(|v| 3.0 * v * v).mul(g)?)])
        }
    }
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::scalar(2.0));
    let y = Var::custom(&[x], Arc::new(Cube)).unwrap();
    assert_eq!(tape.backward(y).unwrap()[x].item().unwrap(), 12.0); // first order works
    let err = tape.grad(y, &[x]).unwrap_err();
    assert!(
        matches!(&err, AutodiffError::NotTwiceDifferentiable { op } if op == "cube"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("cube has no differentiable backward"),
        "{err}"
    );
}

#[test]
fn helpers_hvp_hessian_and_jacobian() {
    // f(x) = sum(x_i^2 x_{i+1}) over a ring of 3: a Hessian with off-diagonal terms.
    let x = Tensor::<f64>::from_vec(vec![0.5, -1.0, 2.0], &[3]).unwrap();
    fn f<'t>(_: &'t Tape<f64>, v: Var<'t, f64>) -> Result<Var<'t, f64>, AutodiffError> {
        let shifted = Var::concat(&[v.narrow(0, 1, 2)?, v.narrow(0, 0, 1)?], 0)?;
        Ok(v.square().mul(shifted)?.sum())
    }
    let h = hessian(&x, f).unwrap();
    let (a, b, c) = (0.5, -1.0, 2.0);
    // d2/dxi2 = 2 x_{i+1}; d2/dxi dx_{i+1} = 2 x_i.
    let want = [
        2.0 * b,
        2.0 * a,
        2.0 * c,
        2.0 * a,
        2.0 * c,
        2.0 * b,
        2.0 * c,
        2.0 * b,
        2.0 * a,
    ];
    assert_eq!(h.to_vec(), want.to_vec());
    let v = Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3]).unwrap();
    let hv = hvp(&x, &v, f).unwrap();
    let direct = h.matmul(&v.reshape(&[3, 1]).unwrap()).unwrap();
    assert_eq!(hv.to_vec(), direct.to_vec());
    assert!(hvp(&x, &Tensor::zeros(&[2]), f).is_err());
    // The Jacobian of softmax: diag(p) - p p^T.
    let z = Tensor::<f64>::from_vec(vec![0.1, -0.4, 1.2], &[3]).unwrap();
    let j = jacobian(&z, |_, v| v.softmax(0)).unwrap();
    let p = z.softmax(0).unwrap().to_vec();
    for r in 0..3 {
        for c in 0..3 {
            let want = if r == c { p[r] } else { 0.0 } - p[r] * p[c];
            assert!((j.as_slice()[r * 3 + c] - want).abs() < 1e-15);
        }
    }
}

/// The checks of one function of the given inputs: the gradient graph's values equal
/// `backward`'s (the first derivative of every op's differentiable backward is right), and
/// its own derivatives pass the second-order check against finite differences.
fn check(
    name: &str,
    inputs: &[Tensor<f64>],
    f: impl for<'t> Fn(&[Var<'t, f64>]) -> Result<Var<'t, f64>, AutodiffError>,
) {
    let tape = Tape::new();
    let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    let y = f(&vars).unwrap();
    let graph = tape
        .grad(y, &vars)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let grads = tape.backward(y).unwrap();
    for (k, (g, v)) in graph.iter().zip(&vars).enumerate() {
        let (a, b) = (g.value(), grads[*v].clone());
        assert_eq!(a.shape(), b.shape(), "{name}: input {k}");
        for (x, z) in a.as_slice().iter().zip(b.as_slice()) {
            assert!(
                (x - z).abs() <= 1e-12 * z.abs().max(1.0),
                "{name}: input {k}: grad {a:?}, backward {b:?}"
            );
        }
    }
    let report = gradgradcheck(inputs, |_, v| f(v)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.passed(1e-6), "{name}: {report:?}");
}

fn t(shape: &[usize], seed: usize) -> Tensor<f64> {
    Tensor::from_fn(shape, |i| {
        (((i + seed * 13) * 37 % 23) as f64 / 23.0 - 0.45) * 1.7
    })
}

fn pos(shape: &[usize], seed: usize) -> Tensor<f64> {
    t(shape, seed).map(|v| v.abs() + 0.3)
}

#[test]
fn second_order_gradcheck_of_the_elementwise_ops() {
    let x = t(&[2, 3], 1);
    let p = pos(&[2, 3], 2);
    // Elementwise ops, each cubed-and-summed so their second derivatives matter.
    check("sin", &[x.clone()], |v| Ok(v[0].sin().mul(v[0])?.sum()));
    check("cos", &[x.clone()], |v| Ok(v[0].cos().mul(v[0])?.sum()));
    check("tanh", &[x.clone()], |v| Ok(v[0].tanh().square().sum()));
    check("sigmoid", &[x.clone()], |v| {
        Ok(v[0].sigmoid().square().sum())
    });
    check("exp", &[x.clone()], |v| Ok(v[0].exp().mul(v[0])?.sum()));
    check("ln", &[p.clone()], |v| Ok(v[0].ln().mul(v[0])?.sum()));
    check("sqrt", &[p.clone()], |v| Ok(v[0].sqrt().mul(v[0])?.sum()));
    check("recip", &[p.clone()], |v| Ok(v[0].recip().sum()));
    check("powf", &[p.clone()], |v| Ok(v[0].powf(2.5).sum()));
    check("square", &[x.clone()], |v| {
        Ok(v[0].square().mul(v[0])?.sum())
    });
    check("softplus", &[x.clone()], |v| {
        Ok(v[0].softplus().square().sum())
    });
    check("log1p", &[p.clone()], |v| Ok(v[0].log1p().square().sum()));
    check("expm1", &[x.clone()], |v| Ok(v[0].expm1().square().sum()));
    check("erf", &[x.clone()], |v| Ok(v[0].erf().square().sum()));
    check("gelu", &[x.clone()], |v| Ok(v[0].gelu().square().sum()));
    check("gelu_tanh", &[x.clone()], |v| {
        Ok(v[0].gelu_tanh().square().sum())
    });
    check("silu", &[x.clone()], |v| Ok(v[0].silu().square().sum()));
    check("elu", &[x.clone()], |v| Ok(v[0].elu(0.7).square().sum()));
    check("rdiv_scalar", &[p.clone()], |v| {
        Ok(v[0].rdiv_scalar(2.0).sum())
    });
    check("affine", &[x.clone()], |v| {
        Ok(v[0].affine(2.0, 1.0).square().sum())
    });
    check("neg", &[x.clone()], |v| {
        Ok(v[0].neg().square().mul(v[0])?.sum())
    });
    // Piecewise-linear ops: their second derivative is 0 away from the kinks (the points
    // here avoid them), and a product with x makes the check non-trivial.
    check("relu", &[x.clone()], |v| Ok(v[0].relu().mul(v[0])?.sum()));
    check("abs", &[x.clone()], |v| Ok(v[0].abs().mul(v[0])?.sum()));
    check("leaky_relu", &[x.clone()], |v| {
        Ok(v[0].leaky_relu(0.1).mul(v[0])?.sum())
    });
    check("clamp", &[x.clone()], |v| {
        Ok(v[0].clamp(-0.5, 0.5)?.mul(v[0])?.sum())
    });
}

#[test]
fn second_order_gradcheck_of_binary_ops_with_broadcasting() {
    let a = t(&[2, 3], 3);
    let b = t(&[3], 4);
    let pb = pos(&[3], 5);
    check("add", &[a.clone(), b.clone()], |v| {
        Ok(v[0].add(v[1])?.square().sum())
    });
    check("sub", &[a.clone(), b.clone()], |v| {
        Ok(v[0].sub(v[1])?.square().sum())
    });
    check("mul", &[a.clone(), b.clone()], |v| {
        Ok(v[0].mul(v[1])?.square().sum())
    });
    check("div", &[a.clone(), pb.clone()], |v| {
        Ok(v[0].div(v[1])?.square().sum())
    });
    check("pow", &[pos(&[2, 3], 6), b.clone()], |v| {
        Ok(v[0].pow(v[1])?.sum())
    });
    check("maximum", &[a.clone(), b.clone()], |v| {
        Ok(v[0].maximum(v[1])?.square().sum())
    });
    check("minimum", &[a.clone(), b.clone()], |v| {
        Ok(v[0].minimum(v[1])?.square().sum())
    });
    let cond = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3]).unwrap();
    check("where_cond", &[a.clone(), b.clone()], move |v| {
        Ok(Var::where_cond(&cond, v[0], v[1])?.square().sum())
    });
    let mask = Tensor::from_vec(vec![0.0, 1.0, 0.0], &[3]).unwrap();
    check("masked_fill", &[a.clone()], move |v| {
        Ok(v[0].masked_fill(&mask, 2.0)?.square().sum())
    });
}

#[test]
fn second_order_gradcheck_of_products_and_layers() {
    check("matmul", &[t(&[2, 3], 1), t(&[3, 4], 2)], |v| {
        Ok(v[0].matmul(v[1])?.square().sum())
    });
    check("batched matmul", &[t(&[2, 2, 3], 1), t(&[3, 2], 2)], |v| {
        Ok(v[0].matmul(v[1])?.tanh().sum())
    });
    check(
        "matmul of a transpose",
        &[t(&[2, 3], 3), t(&[4, 3], 4)],
        |v| Ok(v[0].matmul(v[1].transpose(0, 1)?)?.square().sum()),
    );
    check("matmul rank 1", &[t(&[3], 5), t(&[3, 2], 6)], |v| {
        Ok(v[0].matmul(v[1])?.square().sum())
    });
    check("matrix-vector", &[t(&[2, 3], 5), t(&[3], 6)], |v| {
        Ok(v[0].matmul(v[1])?.square().sum())
    });
    check("linear", &[t(&[4, 3], 7), t(&[3, 2], 8), t(&[2], 9)], |v| {
        Ok(v[0].linear(v[1], v[2])?.tanh().sum())
    });
    check(
        "linear_sigmoid",
        &[t(&[4, 3], 7), t(&[3, 2], 8), t(&[2], 9)],
        |v| Ok(v[0].linear_sigmoid(v[1], v[2])?.square().sum()),
    );
    check(
        "linear_tanh",
        &[t(&[4, 3], 7), t(&[3, 2], 8), t(&[2], 9)],
        |v| {
            Ok(v[0]
                .linear_tanh(v[1], v[2])?
                .square()
                .mul(v[0].sum())?
                .sum())
        },
    );
    check(
        "linear_relu",
        &[t(&[4, 3], 7), t(&[3, 2], 8), t(&[2], 9)],
        |v| Ok(v[0].linear_relu(v[1], v[2])?.square().sum()),
    );
    check(
        "layer_norm",
        &[t(&[3, 4], 10), pos(&[4], 11), t(&[4], 12)],
        |v| Ok(v[0].layer_norm(v[1], v[2], 1e-5)?.square().mul(v[0])?.sum()),
    );
    check("softmax", &[t(&[2, 3], 13)], |v| {
        Ok(v[0].softmax(1)?.square().sum())
    });
    check("log_softmax", &[t(&[2, 3], 14)], |v| {
        Ok(v[0].log_softmax(1)?.square().sum())
    });
    check("softmax_cross_entropy", &[t(&[3, 4], 15)], |v| {
        v[0].softmax_cross_entropy(&[0, 3, 1])
    });
    let targets = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3, 1]).unwrap();
    check("bce_with_logits", &[t(&[3, 1], 16)], move |v| {
        let tgt = v[0].tape().constant(targets.clone());
        v[0].binary_cross_entropy_with_logits(tgt)
    });
    check("mse", &[t(&[3, 2], 17), t(&[3, 2], 18)], |v| v[0].mse(v[1]));
    check("dropout mask", &[t(&[3, 2], 19)], |v| {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        Ok(v[0].dropout(0.5, &mut rng)?.square().sum())
    });
}

#[test]
fn second_order_gradcheck_of_shape_ops_and_reductions() {
    let x = t(&[2, 3], 20);
    fn cube<'t>(v: Var<'t, f64>) -> Var<'t, f64> {
        v.powf(3.0).sum()
    }
    check("reshape", &[x.clone()], |v| {
        Ok(cube(v[0].reshape(&[3, 2])?))
    });
    check("t", &[x.clone()], |v| Ok(cube(v[0].t())));
    check("permute", &[t(&[2, 3, 2], 21)], |v| {
        Ok(cube(v[0].permute(&[2, 0, 1])?))
    });
    check("transpose", &[t(&[2, 3, 2], 22)], |v| {
        Ok(cube(v[0].transpose(0, 2)?))
    });
    check("broadcast_to", &[t(&[3], 23)], |v| {
        Ok(cube(v[0].broadcast_to(&[2, 3])?))
    });
    check("concat", &[x.clone(), t(&[1, 3], 24)], move |v| {
        Ok(cube(Var::concat(&[v[0], v[1]], 0)?))
    });
    check("stack", &[x.clone(), t(&[2, 3], 25)], move |v| {
        Ok(cube(Var::stack(&[v[0], v[1]], 1)?))
    });
    check("narrow", &[x.clone()], |v| Ok(cube(v[0].narrow(1, 1, 2)?)));
    check("pad", &[x.clone()], |v| {
        Ok(cube(v[0].pad(&[(1, 0), (0, 2)], 0.5)?))
    });
    check("index_select", &[x.clone()], move |v| {
        Ok(cube(v[0].index_select(1, &[2, 0, 2])?))
    });
    check("select_rows", &[x.clone()], |v| {
        Ok(cube(v[0].select_rows(&[1, 1, 0])?))
    });
    check("unsqueeze/squeeze", &[x.clone()], move |v| {
        Ok(cube(v[0].unsqueeze(1)?.squeeze(1)?))
    });
    check("flatten", &[t(&[2, 2, 2], 26)], |v| {
        Ok(cube(v[0].flatten(0, 1)?))
    });
    check("sum", &[x.clone()], |v| Ok(v[0].sum().square()));
    check("mean", &[x.clone()], |v| Ok(v[0].mean().square()));
    check("sum_axis", &[x.clone()], |v| {
        Ok(cube(v[0].sum_axis(1, false)?))
    });
    check("mean_axis", &[x.clone()], |v| {
        Ok(cube(v[0].mean_axis(0, true)?))
    });
    check("max_axis", &[x.clone()], |v| {
        Ok(cube(v[0].max_axis(1, false)?))
    });
    check("min_axis", &[x.clone()], |v| {
        Ok(cube(v[0].min_axis(0, false)?))
    });
    check("max", &[x.clone()], |v| Ok(v[0].max()?.square()));
    check("min", &[x.clone()], |v| Ok(v[0].min()?.square()));
    check("logsumexp", &[x.clone()], |v| {
        Ok(cube(v[0].logsumexp(1, false)?))
    });
    check("var_axis", &[x.clone()], |v| {
        Ok(cube(v[0].var_axis(1, true, 1)?))
    });
    check("std_axis", &[x.clone()], |v| {
        Ok(cube(v[0].std_axis(1, false, 0)?))
    });
    check("cumsum", &[x.clone()], |v| Ok(cube(v[0].cumsum(1)?)));
    check("norm", &[x.clone()], |v| {
        v[0].norm().square().mul(v[0].sum())
    });
}

#[test]
fn the_trace_and_the_drawing_mark_the_gradient_graph() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::scalar(2.0)).named("x");
    let y = x.square().mul(x).unwrap(); // x^3
    let before = tape.len();
    let dy = tape.grad(y, &[x]).unwrap()[0];
    assert_eq!(dy.item().unwrap(), 12.0);
    let trace = tape.trace();
    let rows: Vec<&str> = trace.lines().skip(1).collect();
    assert_eq!(rows.len(), tape.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.contains("grad:"), i >= before, "row {i}: {row}");
    }
    let dot = tape.to_dot();
    assert_eq!(dot.matches("dashed").count(), tape.len() - before);
    assert!(dot.contains(&format!("n{before} [label=")));
}

#[test]
fn second_order_gradcheck_of_convolution_and_pooling() {
    let x = t(&[2, 2, 5, 5], 30);
    let w = t(&[3, 2, 3, 3], 31).map(|v| v * 0.5);
    let b = t(&[3], 32);
    for (stride, pad) in [
        ((1, 1), (1, 1)),
        ((2, 2), (0, 0)),
        ((2, 1), (1, 0)),
        ((3, 2), (1, 1)),
    ] {
        check(
            &format!("conv2d stride {stride:?} padding {pad:?}"),
            &[x.clone(), w.clone(), b.clone()],
            move |v| Ok(v[0].conv2d(v[1], Some(v[2]), stride, pad)?.tanh().sum()),
        );
    }
    check("conv2d without bias", &[x.clone(), w.clone()], |v| {
        Ok(v[0].conv2d(v[1], None, (1, 1), (0, 0))?.square().sum())
    });
    check("conv1d", &[t(&[2, 2, 7], 33), t(&[3, 2, 3], 34)], |v| {
        Ok(v[0].conv1d(v[1], None, 2, 1)?.square().sum())
    });
    for (kernel, stride) in [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((2, 3), (2, 1))] {
        check(
            &format!("max_pool2d kernel {kernel:?} stride {stride:?}"),
            &[x.clone()],
            move |v| {
                Ok(v[0]
                    .max_pool2d(kernel, stride)?
                    .square()
                    .mul_scalar(0.5)
                    .sum())
            },
        );
        check(
            &format!("avg_pool2d kernel {kernel:?} stride {stride:?}"),
            &[x.clone()],
            move |v| Ok(v[0].avg_pool2d(kernel, stride)?.powf(3.0).sum()),
        );
    }
}

#[test]
fn third_order_through_the_internal_gather_and_scatter() {
    // The second derivative of max pooling records a scatter; differentiating that graph once
    // more records its transpose, the gather.
    let x = t(&[1, 2, 4, 4], 40);
    check("max_pool2d, third order", &[x.clone()], |v| {
        let y = v[0].max_pool2d((2, 2), (2, 2))?.powf(4.0).sum();
        let g = v[0].tape().grad(y, &[v[0]])?[0];
        Ok(g.square().sum())
    });
    check("index_select, third order", &[t(&[3, 2], 41)], |v| {
        let y = v[0].index_select(0, &[2, 0, 2])?.powf(4.0).sum();
        let g = v[0].tape().grad(y, &[v[0]])?[0];
        Ok(g.square().sum())
    });
    let tape = Tape::<f64>::new();
    let xv = tape.var(x);
    let y = xv.max_pool2d((2, 2), (2, 2)).unwrap().powf(4.0).sum();
    let g = tape.grad(y, &[xv]).unwrap()[0];
    let g2 = tape.grad(g.square().sum(), &[xv]).unwrap()[0];
    let trace = tape.trace();
    assert!(
        trace.contains("grad:scatter_add") && trace.contains("grad:gather"),
        "{trace}"
    );
    assert_eq!(g2.shape().as_slice(), &[1, 2, 4, 4]);
}
