//! Every differentiable op gradient-checked in f64 by central differences, on random inputs,
//! including broadcasting shapes and batched matmul.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tapegrad_autodiff::{Result, Tape, Var, gradcheck};
use tapegrad_tensor::Tensor;

const TOL: f64 = 1e-6;

fn randn(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::randn(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

/// Values in [0.5, 2] (for ln, sqrt, powf and divisors).
fn positive(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, 0.5, 2.0, &mut StdRng::seed_from_u64(seed))
}

/// Values at least 0.1 away from 0 (for the kinks of abs and relu).
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            let m = rng.random_range(0.1..2.0);
            if rng.random::<bool>() { m } else { -m }
        })
        .collect();
    Tensor::from_vec(data, shape).unwrap()
}

/// A fixed random weighting so the checked scalar depends on every output element differently.
fn weigh<'t>(tape: &'t Tape<f64>, y: Var<'t, f64>) -> Result<Var<'t, f64>> {
    let w = tape.constant(randn(&y.shape(), 999));
    Ok(y.mul(w)?.sum())
}

fn check<F>(name: &str, inputs: Vec<Tensor<f64>>, f: F)
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    let report = gradcheck(&inputs, f).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.passed(TOL), "{name}: {report:?}");
}

#[test]
fn elementwise_unary_ops() {
    unary_ops_at(&[3, 4]);
}

/// On rank-0 vars every elementwise op records on the scalar fast path, whose backward uses the
/// op's derivative without building a tensor.
#[test]
fn elementwise_ops_on_the_scalar_path() {
    unary_ops_at(&[]);
    let (a, b, bp) = (randn(&[], 11), randn(&[], 12), positive(&[], 13));
    check("add", vec![a.clone(), b.clone()], |t, v| {
        weigh(t, v[0] + v[1])
    });
    check("sub", vec![a.clone(), b.clone()], |t, v| {
        weigh(t, v[0] - v[1])
    });
    check("mul", vec![a.clone(), b.clone()], |t, v| {
        weigh(t, v[0] * v[1])
    });
    check("div", vec![a.clone(), bp.clone()], |t, v| {
        weigh(t, v[0] / v[1])
    });
    let apart = Tensor::scalar(a.item().unwrap() + 0.3);
    check("maximum", vec![a.clone(), apart.clone()], |t, v| {
        weigh(t, v[0].maximum(v[1])?)
    });
    check("minimum", vec![a.clone(), apart], |t, v| {
        weigh(t, v[0].minimum(v[1])?)
    });
    check("pow", vec![bp, b.clone()], |t, v| weigh(t, v[0].pow(v[1])?));
    check("fan-out", vec![a, b], |t, v| {
        weigh(t, (v[0] * v[0] + v[1]).sigmoid() * v[0])
    });
}

fn unary_ops_at(shape: &[usize]) {
    let x = randn(shape, 1);
    check("neg", vec![x.clone()], |t, v| weigh(t, -v[0]));
    check("square", vec![x.clone()], |t, v| weigh(t, v[0].square()));
    check("exp", vec![x.clone()], |t, v| weigh(t, v[0].exp()));
    check("ln", vec![positive(shape, 2)], |t, v| weigh(t, v[0].ln()));
    check("sqrt", vec![positive(shape, 3)], |t, v| {
        weigh(t, v[0].sqrt())
    });
    check("abs", vec![away_from_zero(shape, 4)], |t, v| {
        weigh(t, v[0].abs())
    });
    check("relu", vec![away_from_zero(shape, 5)], |t, v| {
        weigh(t, v[0].relu())
    });
    check("sigmoid", vec![x.clone()], |t, v| weigh(t, v[0].sigmoid()));
    check("tanh", vec![x.clone()], |t, v| weigh(t, v[0].tanh()));
    check("softplus", vec![x.clone()], |t, v| {
        weigh(t, v[0].softplus())
    });
    check("powf", vec![positive(shape, 6)], |t, v| {
        weigh(t, v[0].powf(2.7))
    });
    check("affine", vec![x.clone()], |t, v| {
        weigh(t, v[0].affine(-1.5, 0.25))
    });
    check("scalar_div", vec![positive(shape, 7)], |t, v| {
        weigh(t, 3.0 / v[0])
    });
    check("operators", vec![x.clone()], |t, v| {
        weigh(t, (2.0 * v[0] + 1.0) / 4.0 - v[0] * 0.5)
    });
    check("recip", vec![away_from_zero(shape, 8)], |t, v| {
        weigh(t, v[0].recip())
    });
    check("sin", vec![x.clone()], |t, v| weigh(t, v[0].sin()));
    check("cos", vec![x.clone()], |t, v| weigh(t, v[0].cos()));
    check("log1p", vec![positive(shape, 9)], |t, v| {
        weigh(t, v[0].log1p())
    });
    check("expm1", vec![x.clone()], |t, v| weigh(t, v[0].expm1()));
    check("erf", vec![x.clone()], |t, v| weigh(t, v[0].erf()));
    check("gelu", vec![x.clone()], |t, v| weigh(t, v[0].gelu()));
    check("gelu_tanh", vec![x.clone()], |t, v| {
        weigh(t, v[0].gelu_tanh())
    });
    check("silu", vec![x.clone()], |t, v| weigh(t, v[0].silu()));
    check("leaky_relu", vec![away_from_zero(shape, 10)], |t, v| {
        weigh(t, v[0].leaky_relu(0.05))
    });
    check("elu", vec![away_from_zero(shape, 11)], |t, v| {
        weigh(t, v[0].elu(1.3))
    });
}

/// The smooth activations at and around their characteristic points: 0, tiny values, and the
/// tails where they saturate or become the identity.
#[test]
fn smooth_activations_at_their_edges() {
    let x = Tensor::from_vec(vec![-8.0, -3.0, -1e-4, 0.0, 1e-4, 3.0, 8.0], &[7]).unwrap();
    check("gelu", vec![x.clone()], |t, v| weigh(t, v[0].gelu()));
    check("gelu_tanh", vec![x.clone()], |t, v| {
        weigh(t, v[0].gelu_tanh())
    });
    check("silu", vec![x.clone()], |t, v| weigh(t, v[0].silu()));
    check("erf", vec![x.clone()], |t, v| weigh(t, v[0].erf()));
    check("expm1", vec![x.clone()], |t, v| weigh(t, v[0].expm1()));
    check("sin", vec![x.clone()], |t, v| weigh(t, v[0].sin()));
    check("cos", vec![x.clone()], |t, v| weigh(t, v[0].cos()));
    let near = Tensor::from_vec(vec![-0.9, -1e-4, 0.0, 1e-4, 50.0], &[5]).unwrap();
    check("log1p", vec![near], |t, v| weigh(t, v[0].log1p()));
}

#[test]
fn broadcasting_binary_ops() {
    let shapes: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[3, 4]),
        (&[3, 4], &[4]),
        (&[3, 1], &[1, 4]),
        (&[2, 3, 4], &[3, 1]),
        (&[], &[2, 3]),
    ];
    for (i, &(sa, sb)) in shapes.iter().enumerate() {
        let (a, b) = (randn(sa, 10 + i as u64), randn(sb, 20 + i as u64));
        let bp = positive(sb, 30 + i as u64);
        check("add", vec![a.clone(), b.clone()], |t, v| {
            weigh(t, v[0].add(v[1])?)
        });
        check("sub", vec![a.clone(), b.clone()], |t, v| {
            weigh(t, v[0].sub(v[1])?)
        });
        check("mul", vec![a.clone(), b.clone()], |t, v| {
            weigh(t, v[0].mul(v[1])?)
        });
        check("div", vec![a.clone(), bp], |t, v| weigh(t, v[0].div(v[1])?));
        // The broadcast operand on the left too.
        check("sub (swapped)", vec![b.clone(), a.clone()], |t, v| {
            weigh(t, v[0].sub(v[1])?)
        });
        // maximum and minimum away from ties (b shifted by 0.05 where they come close).
        let apart = apart_from(&a, &b);
        for (name, sw) in [
            ("maximum", false),
            ("minimum", false),
            ("maximum (swapped)", true),
        ] {
            let inputs = if sw {
                vec![apart.clone(), a.clone()]
            } else {
                vec![a.clone(), apart.clone()]
            };
            check(name, inputs, |t, v| {
                weigh(
                    t,
                    if name.starts_with("minimum") {
                        v[0].minimum(v[1])?
                    } else {
                        v[0].maximum(v[1])?
                    },
                )
            });
        }
        // pow with a positive base and a differentiable exponent, both broadcast.
        let base = positive(sa, 40 + i as u64);
        check("pow", vec![base.clone(), b.clone()], |t, v| {
            weigh(t, v[0].pow(v[1])?)
        });
        check(
            "pow (swapped)",
            vec![positive(sb, 50 + i as u64), a.clone()],
            |t, v| weigh(t, v[0].pow(v[1])?),
        );
        // where_cond with a condition of a's shape choosing between a and b.
        let cond = Tensor::from_fn(sa, |k| (k % 3 == 0) as u8 as f64);
        check("where_cond", vec![a.clone(), b.clone()], |t, v| {
            weigh(t, Var::where_cond(&cond, v[0], v[1])?)
        });
        // masked_fill with a mask of b's shape, where it broadcasts to a's.
        let mask = Tensor::from_fn(sb, |k| (k % 2) as f64);
        if mask.broadcast_to(sa).is_ok() {
            check("masked_fill", vec![a.clone()], |t, v| {
                weigh(t, v[0].masked_fill(&mask, 7.0)?)
            });
        }
    }
}

/// `b` broadcast against `a`, moved at least 0.05 away from `a` wherever they come close, so
/// maximum and minimum are checked away from their kinks (ties are asserted in `edges.rs`).
fn apart_from(a: &Tensor<f64>, b: &Tensor<f64>) -> Tensor<f64> {
    let shape = tapegrad_tensor::broadcast_shape("test", a.shape(), b.shape()).unwrap();
    let (ab, bb) = (
        a.broadcast_to(&shape).unwrap(),
        b.broadcast_to(&shape).unwrap(),
    );
    Tensor::from_fn(&shape, |k| {
        let (x, y) = (ab.as_slice()[k], bb.as_slice()[k]);
        if (x - y).abs() < 0.05 { x + 0.1 } else { y }
    })
}

#[test]
fn clamp_away_from_its_bounds() {
    // Values inside, below and above [-0.5, 0.8], none within 0.05 of a bound.
    let x = Tensor::from_vec(vec![-2.0, -0.6, -0.2, 0.0, 0.3, 0.7, 0.9, 3.0], &[2, 4]).unwrap();
    check("clamp", vec![x.clone()], |t, v| {
        weigh(t, v[0].clamp(-0.5, 0.8)?)
    });
    check("clamp (rank 0)", vec![Tensor::scalar(0.25)], |t, v| {
        weigh(t, v[0].clamp(-0.5, 0.8)?)
    });
    // Bounds that describe no interval are refused.
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::scalar(0.0));
    let err = x.clamp(1.0, 0.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument in clamp: the bounds must satisfy lo <= hi, got lo 1 and hi 0"
    );
    assert!(x.clamp(f64::NAN, 1.0).is_err());
}

/// The fused dense layers (`linear_sigmoid`, `linear_tanh`, `linear_relu`), in f64, with x
/// used as the weight too, a one-output neuron, and relu's kinks kept away from its inputs.
#[test]
fn fused_dense_layers() {
    type Layer = for<'t> fn(Var<'t, f64>, Var<'t, f64>, Var<'t, f64>) -> Result<Var<'t, f64>>;
    let layers: [(&str, Layer); 3] = [
        ("linear_sigmoid", |x, w, b| x.linear_sigmoid(w, b)),
        ("linear_tanh", |x, w, b| x.linear_tanh(w, b)),
        ("linear_relu", |x, w, b| x.linear_relu(w, b)),
    ];
    for (name, layer) in layers {
        check(
            name,
            vec![randn(&[5, 3], 70), randn(&[3, 4], 71), randn(&[4], 72)],
            |t, v| weigh(t, layer(v[0], v[1], v[2])?),
        );
        check(
            &format!("{name} to one output, rank 3"),
            vec![randn(&[2, 3, 2], 73), randn(&[2, 1], 74), randn(&[1], 75)],
            |t, v| weigh(t, layer(v[0], v[1], v[2])?),
        );
        check(
            &format!("{name} of a square input with itself"),
            vec![randn(&[3, 3], 76), randn(&[3], 77)],
            |t, v| weigh(t, layer(v[0], v[0], v[1])?),
        );
    }
    // relu's kink: the pre-activations are kept at least 0.1 from 0 (x W is 1-hot here).
    let eye = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
    check(
        "linear_relu near its kink",
        vec![away_from_zero(&[6, 2], 78), eye, Tensor::zeros(&[2])],
        |t, v| weigh(t, v[0].linear_relu(v[1], v[2])?),
    );
}

#[test]
fn linear_is_matmul_plus_bias_in_one_node() {
    let (x, w, b) = (randn(&[5, 3], 60), randn(&[3, 4], 61), randn(&[4], 62));
    check("linear", vec![x.clone(), w.clone(), b.clone()], |t, v| {
        weigh(t, v[0].linear(v[1], v[2])?)
    });
    // A one-output neuron, and x used twice (its gradient is the sum of both uses).
    check(
        "linear to one output",
        vec![randn(&[6, 2], 63), randn(&[2, 1], 64), randn(&[1], 65)],
        |t, v| weigh(t, v[0].linear(v[1], v[2])?),
    );
    check(
        "linear of a square input with itself",
        vec![randn(&[3, 3], 66), randn(&[3], 67)],
        |t, v| weigh(t, v[0].linear(v[0], v[1])?.sigmoid()),
    );
    // The same values as matmul and add, and one node instead of two.
    let tape = Tape::<f64>::new();
    let (vx, vw, vb) = (
        tape.var(x.clone()),
        tape.var(w.clone()),
        tape.var(b.clone()),
    );
    let fused = vx.linear(vw, vb).unwrap().value();
    let n = tape.len();
    let separate = vx.matmul(vw).unwrap().add(vb).unwrap().value();
    assert_eq!(tape.len() - n, 2);
    for (a, b) in fused.as_slice().iter().zip(separate.as_slice()) {
        assert!((a - b).abs() < 1e-12);
    }
    let err = vx.linear(vb, vw).unwrap_err().to_string();
    assert!(
        err.contains("linear") && err.contains("got x [5, 3], w [4] and b [3, 4]"),
        "{err}"
    );
}

#[test]
fn matmul_2d_and_batched() {
    check(
        "matmul 2d",
        vec![randn(&[3, 5], 40), randn(&[5, 2], 41)],
        |t, v| weigh(t, v[0].matmul(v[1])?),
    );
    check(
        "matmul batched",
        vec![randn(&[2, 3, 4], 42), randn(&[2, 4, 2], 43)],
        |t, v| weigh(t, v[0].matmul(v[1])?),
    );
    check(
        "matmul batch x 2d",
        vec![randn(&[2, 3, 4], 44), randn(&[4, 2], 45)],
        |t, v| weigh(t, v[0].matmul(v[1])?),
    );
    check(
        "matmul batch-1 x batch",
        vec![randn(&[1, 3, 4], 46), randn(&[3, 4, 2], 47)],
        |t, v| weigh(t, v[0].matmul(v[1])?),
    );
    // A var used as both operands, and a product through a transpose.
    check("matmul fan-out", vec![randn(&[3, 3], 48)], |t, v| {
        weigh(t, v[0].matmul(v[0].t())?)
    });
}

#[test]
fn shape_ops() {
    let x = randn(&[3, 4], 50);
    check("t", vec![x.clone()], |t, v| weigh(t, v[0].t()));
    check("t batched", vec![randn(&[2, 3, 4], 51)], |t, v| {
        weigh(t, v[0].t())
    });
    check("reshape", vec![x.clone()], |t, v| {
        weigh(t, v[0].reshape(&[2, 6])?)
    });
    check("broadcast_to", vec![randn(&[3, 1], 52)], |t, v| {
        weigh(t, v[0].broadcast_to(&[2, 3, 4])?)
    });
    check(
        "concat axis 0",
        vec![x.clone(), randn(&[2, 4], 53)],
        |t, v| weigh(t, Var::concat(&[v[0], v[1], v[0]], 0)?),
    );
    check(
        "concat axis 1",
        vec![x.clone(), randn(&[3, 2], 54)],
        |t, v| weigh(t, Var::concat(&[v[1], v[0]], 1)?),
    );
    check("narrow", vec![x.clone()], |t, v| {
        weigh(t, v[0].narrow(1, 1, 2)?)
    });
    check("select_rows", vec![x], |t, v| {
        weigh(t, v[0].select_rows(&[2, 0, 2, 1])?)
    });
}

#[test]
fn reductions() {
    let x = randn(&[2, 3, 4], 60);
    check("sum", vec![x.clone()], |_, v| Ok(v[0].square().sum()));
    check("mean", vec![x.clone()], |_, v| Ok(v[0].square().mean()));
    for axis in 0..3 {
        for keepdim in [false, true] {
            check("sum_axis", vec![x.clone()], |t, v| {
                weigh(t, v[0].sum_axis(axis, keepdim)?)
            });
            check("mean_axis", vec![x.clone()], |t, v| {
                weigh(t, v[0].mean_axis(axis, keepdim)?)
            });
            check("max_axis", vec![x.clone()], |t, v| {
                weigh(t, v[0].max_axis(axis, keepdim)?)
            });
        }
    }
}

#[test]
fn softmax_family_and_losses() {
    let z = randn(&[4, 3], 70);
    for axis in 0..2 {
        check("softmax", vec![z.clone()], |t, v| {
            weigh(t, v[0].softmax(axis)?)
        });
        check("log_softmax", vec![z.clone()], |t, v| {
            weigh(t, v[0].log_softmax(axis)?)
        });
    }
    check("softmax_cross_entropy", vec![z.clone()], |_, v| {
        v[0].softmax_cross_entropy(&[2, 0, 1, 2])
    });
    let targets = Tensor::rand_uniform(&[4, 3], 0.0, 1.0, &mut StdRng::seed_from_u64(71));
    check(
        "bce_with_logits",
        vec![z.clone(), targets.clone()],
        |_, v| v[0].binary_cross_entropy_with_logits(v[1]),
    );
    check("mse", vec![z, targets], |_, v| v[0].mse(v[1]));
}

#[test]
fn a_composed_network_layer() {
    // sigmoid(x W + b) with a softmax head: the shape of everything nn builds.
    let (x, w, b) = (randn(&[5, 3], 80), randn(&[3, 4], 81), randn(&[4], 82));
    let (w2, b2) = (randn(&[4, 3], 83), randn(&[3], 84));
    check("two-layer net", vec![x, w, b, w2, b2], |_, v| {
        let h = v[0].matmul(v[1])?.add(v[2])?.sigmoid();
        let z = h.matmul(v[3])?.add(v[4])?;
        z.softmax_cross_entropy(&[0, 1, 2, 1, 0])
    });
}

#[test]
fn layout_ops() {
    let x = randn(&[2, 3, 4], 60);
    for axes in [[2, 0, 1], [1, 2, 0], [0, 2, 1], [0, 1, 2]] {
        check("permute", vec![x.clone()], |t, v| {
            weigh(t, v[0].permute(&axes)?)
        });
    }
    let x4 = randn(&[2, 3, 2, 2], 61);
    check("permute rank 4 (heads)", vec![x4.clone()], |t, v| {
        weigh(t, v[0].permute(&[0, 2, 1, 3])?)
    });
    check("transpose", vec![x.clone()], |t, v| {
        weigh(t, v[0].transpose(0, 2)?)
    });
    check("unsqueeze/squeeze", vec![x.clone()], |t, v| {
        weigh(t, v[0].unsqueeze(1)?.sigmoid().squeeze(1)?)
    });
    check("flatten", vec![x4.clone()], |t, v| {
        weigh(t, v[0].flatten(1, 3)?)
    });
    let (a, b, c) = (randn(&[2, 3], 62), randn(&[2, 3], 63), randn(&[2, 3], 64));
    for axis in 0..=2 {
        check("stack", vec![a.clone(), b.clone(), c.clone()], |t, v| {
            weigh(t, Var::stack(&[v[0], v[1], v[2], v[0]], axis)?)
        });
    }
    check("pad", vec![x.clone()], |t, v| {
        weigh(t, v[0].pad(&[(1, 0), (0, 2), (1, 1)], 0.5)?)
    });
    check("pad rank 0", vec![Tensor::scalar(0.3)], |t, v| {
        weigh(t, v[0].pad(&[], 1.0)?)
    });
    for axis in 0..3 {
        let n = x.shape()[axis];
        let idx: Vec<usize> = (0..n).rev().chain([0, n - 1]).collect();
        check("index_select", vec![x.clone()], |t, v| {
            weigh(t, v[0].index_select(axis, &idx)?)
        });
    }
}

#[test]
fn more_reductions() {
    let x = randn(&[3, 4, 2], 70);
    for axis in 0..3 {
        for keepdim in [false, true] {
            check("min_axis", vec![x.clone()], |t, v| {
                weigh(t, v[0].min_axis(axis, keepdim)?)
            });
            check("logsumexp", vec![x.clone()], |t, v| {
                weigh(t, v[0].logsumexp(axis, keepdim)?)
            });
            for correction in [0, 1] {
                check("var_axis", vec![x.clone()], |t, v| {
                    weigh(t, v[0].var_axis(axis, keepdim, correction)?)
                });
                check("std_axis", vec![x.clone()], |t, v| {
                    weigh(t, v[0].std_axis(axis, keepdim, correction)?)
                });
            }
        }
        check("cumsum", vec![x.clone()], |t, v| {
            weigh(t, v[0].cumsum(axis)?)
        });
    }
    check("max", vec![x.clone()], |_, v| v[0].max()?.mul(v[0].sum()));
    check("min", vec![x.clone()], |_, v| v[0].min()?.mul(v[0].sum()));
    check("norm", vec![x.clone()], |_, v| Ok(v[0].norm().tanh()));
    // logsumexp at +-1000 (the stable form's reason to exist).
    let big = Tensor::from_vec(vec![1000.0, 999.0, -1000.0, -998.5], &[2, 2]).unwrap();
    check("logsumexp at +-1000", vec![big], |t, v| {
        weigh(t, v[0].logsumexp(1, false)?)
    });
}

#[test]
fn matmul_of_any_rank_and_linear_over_sequences() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4, 5], &[2, 3, 5, 2]),
        (&[2, 1, 4, 5], &[1, 3, 5, 2]),
        (&[2, 3, 4, 5], &[5, 2]),
        (&[3, 4, 5], &[5, 2]),
        (&[4, 5], &[2, 3, 5, 2]),
        (&[5], &[2, 5, 3]),
        (&[2, 4, 5], &[5]),
        (&[5], &[5]),
        (&[5], &[5, 3]),
        (&[4, 5], &[5]),
    ];
    for (i, &(sa, sb)) in cases.iter().enumerate() {
        let (a, b) = (randn(sa, 80 + i as u64), randn(sb, 90 + i as u64));
        check("matmul", vec![a, b], |t, v| weigh(t, v[0].matmul(v[1])?));
    }
    // Multi-head attention's products: [B, H, T, D] x [B, H, D, T] after a permute.
    let q = randn(&[2, 3, 2, 4], 100);
    let k = randn(&[2, 2, 3, 4], 101);
    check("attention scores", vec![q, k], |t, v| {
        let kt = v[1].permute(&[0, 2, 3, 1])?;
        weigh(t, v[0].matmul(kt)?.softmax(3)?)
    });
    // A transpose of the last two axes fed to matmul is read through strides (one node that
    // reads the transpose's input): batched, against a rank-2 weight, and through t().
    let (q, k) = (randn(&[2, 3, 4], 105), randn(&[2, 5, 4], 106));
    check(
        "matmul of a transpose",
        vec![q.clone(), k.clone()],
        |t, v| weigh(t, v[0].matmul(v[1].transpose(1, 2)?)?),
    );
    let w = randn(&[5, 4], 107);
    check(
        "matmul of a transposed weight",
        vec![q.clone(), w.clone()],
        |t, v| weigh(t, v[0].matmul(v[1].t())?),
    );
    check(
        "matmul of a transposed batch",
        vec![w, k.clone()],
        |t, v| weigh(t, v[0].matmul(v[1].transpose(2, 1)?)?),
    );
    // The transpose's value is still there for other uses, and mismatches still name the
    // shapes the user multiplied.
    let tape = Tape::<f64>::new();
    let (vq, vk) = (tape.var(q), tape.var(k));
    let kt = vk.transpose(1, 2).unwrap();
    let s = vq.matmul(kt).unwrap();
    assert!(tape.trace().contains("matmul(rhs transposed)"));
    assert_eq!(s.shape().as_slice(), &[2, 3, 5]);
    let g = tape.backward(s.sum().add(kt.sum()).unwrap()).unwrap();
    assert_eq!(g[vk].shape(), &[2, 5, 4]);
    let err = vq.matmul(vq.transpose(0, 1).unwrap()).unwrap_err();
    assert!(err.to_string().contains("matmul"), "{err}");
    // linear over a sequence: x [B, T, k] with a shared weight.
    let (x, w, b) = (
        randn(&[3, 4, 5], 102),
        randn(&[5, 2], 103),
        randn(&[2], 104),
    );
    check(
        "linear rank 3",
        vec![x.clone(), w.clone(), b.clone()],
        |t, v| weigh(t, v[0].linear(v[1], v[2])?),
    );
    // The same input as x and through another path, so every gradient accumulates.
    check("linear rank 3, accumulating", vec![x, w], |t, v| {
        let bias = t.constant(Tensor::zeros(&[2]));
        let y = v[0].linear(v[1], bias)?;
        let z = v[0].matmul(v[1])?;
        weigh(t, y.mul(z)?)
    });
}

#[test]
fn layer_norm_and_dropout() {
    for shape in [&[4, 5][..], &[2, 3, 5], &[5]] {
        let (x, g, b) = (randn(shape, 110), randn(&[5], 111), randn(&[5], 112));
        check("layer_norm", vec![x, g, b], |t, v| {
            weigh(t, v[0].layer_norm(v[1], v[2], 1e-5)?)
        });
    }
    // The same mask on every evaluation: a fresh generator of one seed each time.
    let x = randn(&[6, 7], 113);
    check("dropout", vec![x], |t, v| {
        let mut rng = StdRng::seed_from_u64(7);
        weigh(t, v[0].dropout(0.3, &mut rng)?.tanh())
    });
}

#[test]
fn convolutions_and_pooling() {
    let x = randn(&[2, 3, 5, 6], 120);
    let w = randn(&[4, 3, 3, 2], 121);
    let b = randn(&[4], 122);
    for (stride, padding) in [((1, 1), (0, 0)), ((2, 1), (1, 0)), ((2, 2), (1, 1))] {
        check("conv2d", vec![x.clone(), w.clone(), b.clone()], |t, v| {
            weigh(t, v[0].conv2d(v[1], Some(v[2]), stride, padding)?)
        });
    }
    check("conv2d without bias", vec![x.clone(), w.clone()], |t, v| {
        weigh(t, v[0].conv2d(v[1], None, (1, 2), (1, 1))?)
    });
    let (x1, w1, b1) = (
        randn(&[2, 3, 9], 123),
        randn(&[2, 3, 4], 124),
        randn(&[2], 125),
    );
    check("conv1d", vec![x1, w1, b1], |t, v| {
        weigh(t, v[0].conv1d(v[1], Some(v[2]), 2, 1)?)
    });
    // Distinct values (a permutation of a grid) so no window has a tie at its maximum.
    let distinct = Tensor::from_fn(&[2, 2, 4, 6], |i| ((i * 37) % 96) as f64 / 10.0);
    check("max_pool2d", vec![distinct.clone()], |t, v| {
        weigh(t, v[0].max_pool2d((2, 3), (2, 3))?)
    });
    check("max_pool2d overlapping", vec![distinct.clone()], |t, v| {
        weigh(t, v[0].max_pool2d((3, 3), (1, 2))?)
    });
    check("avg_pool2d", vec![distinct], |t, v| {
        weigh(t, v[0].avg_pool2d((2, 2), (2, 1))?)
    });
}
