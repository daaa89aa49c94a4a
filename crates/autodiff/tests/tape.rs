//! The tape's behaviour: fan-out, repeated backward, reachability, errors and their messages,
//! stability at extreme logits, traces, drawings and the finite check.

use tapegrad_autodiff::{AutodiffError, Tape, Var, gradcheck};
use tapegrad_tensor::Tensor;

#[test]
fn readme_example_values() {
    let tape = Tape::<f64>::new();
    let a = tape.var(Tensor::scalar(2.0));
    let b = tape.var(Tensor::scalar(-3.0));
    let c = (a * b + a).tanh();
    let grads = tape.backward(c).unwrap();
    let sech2 = 1.0 - (-4.0f64).tanh().powi(2);
    assert!((grads[a].item().unwrap() - sech2 * -2.0).abs() < 1e-15);
    assert!((grads[b].item().unwrap() - sech2 * 2.0).abs() < 1e-15);
    assert_eq!(tape.len(), 5);
}

#[test]
fn fan_out_sums_gradients_and_backward_twice_agrees() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_vec(vec![1.0, -2.0], &[2]).unwrap());
    // y = sum(x * x + 3x + x^3): dy/dx = 2x + 3 + 3x^2
    let y = (x * x + 3.0 * x + x.powf(3.0)).sum();
    let g1 = tape.backward(y).unwrap();
    let g2 = tape.backward(y).unwrap();
    assert_eq!(g1[x].to_vec(), vec![8.0, 11.0]);
    assert_eq!(g1[x], g2[x]);
}

#[test]
fn unreached_vars_get_zeros_and_reaches_says_so() {
    let tape = Tape::<f32>::new();
    let used = tape.var(Tensor::ones(&[2]));
    let unused = tape.var(Tensor::ones(&[3, 2]));
    let data = tape.constant(Tensor::ones(&[2]));
    let loss = used.mul(data).unwrap().sum();
    let grads = tape.backward(loss).unwrap();
    assert!(grads.reaches(used));
    assert!(!grads.reaches(unused));
    assert!(!grads.reaches(data));
    assert_eq!(grads[unused], Tensor::zeros(&[3, 2]));
    assert_eq!(grads[data].shape(), &[2]);
}

#[test]
fn detach_and_no_grad_stop_gradients() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::scalar(3.0));
    let y = x.detach() * x; // only the right factor carries a gradient
    assert_eq!(tape.backward(y).unwrap()[x].item().unwrap(), 3.0);
    let z = tape.no_grad(|| x.exp());
    assert!(!z.requires_grad());
    assert!(tape.is_recording());
    let g = tape.backward(z * x).unwrap();
    assert_eq!(g[x].item().unwrap(), 3f64.exp());
}

#[test]
fn gradcheck_catches_a_wrong_gradient() {
    // Detaching one factor makes backward disagree with the numeric slope (x vs 2x).
    let x = Tensor::from_vec(vec![1.5, -0.5], &[2]).unwrap();
    let report =
        gradcheck::<_, AutodiffError, _>(&[x], |_, v| Ok((v[0].detach() * v[0]).sum())).unwrap();
    assert!(!report.passed(1e-3));
    assert!((report.max_abs_error() - 1.5).abs() < 1e-6);
}

#[test]
fn errors_name_what_was_wrong() {
    let tape = Tape::<f32>::new();
    let m = tape.var(Tensor::ones(&[2, 3]));
    assert_eq!(
        tape.backward(m).unwrap_err().to_string(),
        "backward needs a loss with exactly one element, got shape [2, 3]"
    );
    let other = Tape::<f32>::new();
    let foreign = other.var(Tensor::ones(&[2, 3]));
    let err = m.add(foreign).unwrap_err();
    assert!(matches!(err, AutodiffError::ForeignVar { op: "add", .. }));
    assert_eq!(
        err.to_string(),
        "var from another tape used in add: a Var belongs to the Tape that created it (var #0)"
    );
    assert!(tape.backward(foreign.sum()).is_err());
    let v = tape.var(Tensor::ones(&[4, 5]));
    assert_eq!(
        m.matmul(v).unwrap_err().to_string(),
        "shape mismatch in matmul: lhs [2, 3], rhs [4, 5]"
    );
    assert_eq!(
        m.add(v).unwrap_err().to_string(),
        "cannot broadcast in add: lhs [2, 3], rhs [4, 5]"
    );
    assert_eq!(
        m.mse(v).unwrap_err().to_string(),
        "shape mismatch in mse: lhs [2, 3], rhs [4, 5]"
    );
    assert_eq!(
        m.softmax_cross_entropy(&[0, 3]).unwrap_err().to_string(),
        "index [1, 3] out of range in softmax_cross_entropy (label of row, class) for shape [2, 3]"
    );
    assert_eq!(
        m.softmax_cross_entropy(&[0]).unwrap_err().to_string(),
        "shape mismatch in softmax_cross_entropy (logits, labels): lhs [2, 3], rhs [1]"
    );
    // Gradients refuse vars of another tape.
    let grads = tape.backward(m.sum()).unwrap();
    assert!(grads.get(foreign).is_err());
}

#[test]
#[should_panic(expected = "cannot broadcast in mul: lhs [2], rhs [3]")]
fn operators_panic_with_the_same_message() {
    let tape = Tape::<f32>::new();
    let _ = tape.var(Tensor::ones(&[2])) * tape.var(Tensor::ones(&[3]));
}

#[test]
fn finite_gradients_at_extreme_logits() {
    for &z in &[-1000.0f32, -100.0, 100.0, 1000.0] {
        let tape = Tape::<f32>::new();
        let x = tape.var(Tensor::from_vec(vec![z, -z], &[1, 2]).unwrap());
        let s = x.sigmoid().sum();
        let sp = x.softplus().sum();
        let t = tape.constant(Tensor::from_vec(vec![1.0, 0.0], &[1, 2]).unwrap());
        let bce = x.binary_cross_entropy_with_logits(t).unwrap();
        let ce = x.softmax_cross_entropy(&[0]).unwrap();
        for loss in [s, sp, bce, ce] {
            assert!(loss.value().all_finite(), "{z}: {:?}", loss.value());
            let g = tape.backward(loss).unwrap();
            assert!(g[x].all_finite(), "{z}: {}", g[x]);
        }
        // Softmax cross-entropy at z = 1000 for the right class is 0 with gradient 0; for the
        // wrong class it is 2000 with gradient -1 / +1.
        let g = tape.backward(ce).unwrap();
        let expect = if z > 0.0 {
            vec![0.0, 0.0]
        } else {
            vec![-1.0, 1.0]
        };
        if z.abs() == 1000.0 {
            assert_eq!(g[x].to_vec(), expect);
            assert_eq!(ce.item().unwrap(), if z > 0.0 { 0.0 } else { 2000.0 });
        }
    }
}

#[test]
fn clear_keeps_the_buffer_and_gradients_reuse_theirs() {
    let mut tape = Tape::<f32>::with_capacity(16);
    for step in 0..3 {
        tape.clear();
        assert!(tape.is_empty());
        let x = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
        let unused = tape.var(Tensor::ones(&[3]));
        let grads = tape.backward((x * (step as f32 + 1.0)).sum()).unwrap();
        assert_eq!(grads[x].to_vec(), vec![step as f32 + 1.0; 2]);
        assert!(!grads.reaches(unused));
        assert_eq!(grads[unused].to_vec(), vec![0.0; 3]);
    }
}

#[test]
fn trace_and_dot_show_the_graph() {
    let tape = Tape::<f64>::new();
    let a = tape.var(Tensor::scalar(2.0)).named("a");
    let b = tape.var(Tensor::scalar(-3.0)).named("b");
    let c = (a * b + a).tanh().named("c");
    let grads = tape.backward(c).unwrap();
    let trace = tape.trace_with(&grads);
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(lines[0].starts_with("id  op"), "{trace}");
    assert!(lines[0].ends_with("grad"));
    assert!(
        lines[3].contains("mul") && lines[3].contains("#0, #1") && lines[3].contains("-6.0000")
    );
    assert!(lines[5].contains("tanh") && lines[5].contains(" c ") && lines[5].contains("1.0000"));
    let dot = tape.to_dot_with(&grads);
    assert!(dot.starts_with("digraph tape {"));
    assert!(dot.contains("n0 -> n2;") && dot.contains("n1 -> n2;") && dot.contains("n3 -> n4;"));
    assert!(dot.contains("#4 tanh \\\"c\\\""), "{dot}");
    assert!(dot.contains("grad 1.0000"));
    assert_eq!(dot.matches(" [label=").count(), 5);
}

#[test]
fn finite_check_names_the_node() {
    let tape = Tape::<f64>::new();
    tape.set_check_finite(true);
    let x = tape
        .var(Tensor::from_vec(vec![1.0, -1.0, 4.0], &[3]).unwrap())
        .named("x");
    let y = x.ln().named("log_x"); // ln(-1) = NaN
    let err = y.sum_axis(0, false).unwrap_err();
    match &err {
        AutodiffError::NonFinite(r) => {
            assert_eq!((r.phase, r.id, r.op.as_str()), ("forward", 1, "ln"));
            assert_eq!(r.label.as_deref(), Some("log_x"));
            assert_eq!(r.input_shapes, vec![vec![3]]);
            assert_eq!(r.indices, vec![1]);
            assert!(r.values[0].is_nan());
        }
        other => panic!("unexpected {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with("non-finite forward value at node #1 (ln \"log_x\")"),
        "{msg}"
    );
    assert!(msg.contains(">1"), "the context marks the node: {msg}");

    // Backward: sqrt at 0 has an infinite derivative.
    let tape = Tape::<f64>::new();
    tape.set_check_finite(true);
    let x = tape.var(Tensor::from_vec(vec![0.0, 4.0], &[2]).unwrap());
    let s = x.sqrt().named("root");
    let err = tape.backward(s.sum()).unwrap_err();
    match &err {
        AutodiffError::NonFinite(r) => {
            assert_eq!(
                (r.phase, r.id, r.op.as_str()),
                ("backward", 1, "sqrt"),
                "{err}"
            );
            assert_eq!(r.flowing_to, Some((0, "leaf".to_string(), None)));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        err.to_string().starts_with(
            "non-finite backward gradient from the backward of node #1 (sqrt \"root\") \
             flowing to its input node #0 (leaf)"
        ),
        "{err}"
    );
    // Off by default: the same graph runs and gives an infinity.
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_vec(vec![0.0, 4.0], &[2]).unwrap());
    let g = tape.backward(x.sqrt().sum()).unwrap();
    assert!(g[x].as_slice()[0].is_infinite());
}

#[test]
fn var_accessors() {
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::ones(&[2, 3])).named("x");
    assert_eq!(x.shape().as_slice(), &[2, 3]);
    assert_eq!(x.value(), Tensor::ones(&[2, 3]));
    assert_eq!(x.label().as_deref(), Some("x"));
    assert_eq!(x.op_name(), "leaf");
    assert_eq!(x.index(), 0);
    assert_eq!(format!("{x:?}"), "Var(#0 leaf [2, 3])");
    let vars: Vec<Var<'_, f32>> = vec![x, x];
    assert_eq!(Var::concat(&vars, 0).unwrap().shape().as_slice(), &[4, 3]);
    assert!(Var::<f32>::concat(&[], 0).is_err());
}

/// The scalar chain of W1, on a tape of rank-0 vars (the scalar fast path) or of `[1]`-shaped
/// vars (the tensor path): values, the gradients of the three leaves.
fn chain(shape: &[usize], steps: usize) -> (f64, f64, f64, f64) {
    let tape = Tape::<f64>::new();
    let leaf = |v: f64| tape.var(Tensor::full(shape, v));
    let (x0, a, b) = (leaf(0.5), leaf(1.0001), leaf(0.0001));
    let mut x = x0;
    for _ in 0..steps {
        x = (x * a + b).sigmoid();
    }
    let y = x.sum();
    let g = tape.backward(y).unwrap();
    let one = |v: Var<'_, f64>| {
        assert_eq!(g[v].shape(), shape, "a gradient has its var's shape");
        g[v].as_slice()[0]
    };
    (y.item().unwrap(), one(x0), one(a), one(b))
}

#[test]
fn scalar_fast_path_agrees_with_the_tensor_path() {
    let fast = chain(&[], 50);
    assert_eq!(
        fast,
        chain(&[1], 50),
        "rank 0 and shape [1] give the same numbers"
    );
    assert_eq!(fast, chain(&[1, 1], 50));
    // And with the hand-written derivative: y = s(a x + b), dy/dx0 = prod s'(.) a.
    let (mut x, mut dx0) = (0.5f64, 1.0f64);
    for _ in 0..50 {
        let y = 1.0 / (1.0 + (-(x * 1.0001 + 0.0001)).exp());
        dx0 *= y * (1.0 - y) * 1.0001;
        x = y;
    }
    assert!((fast.0 - x).abs() < 1e-15);
    assert!((fast.1 - dx0).abs() < 1e-15 * dx0.abs().max(1.0));
}

#[test]
fn rank0_vars_mix_with_tensors() {
    let tape = Tape::<f64>::new();
    let s = tape.var(Tensor::scalar(3.0)).named("s");
    let w = tape.var(Tensor::from_vec(vec![1.0, 2.0, -4.0], &[3]).unwrap());
    // A rank-0 var broadcast against a tensor, a rank-0 result of a reduction feeding the
    // scalar path again, and an intermediate rank-0 node whose gradient is looked up.
    let h = (s * w).sum(); // 3 * (1 + 2 - 4) = -3
    let k = (h * s).square(); // (-9)^2 = 81
    let grads = tape.backward(k).unwrap();
    assert_eq!(k.item().unwrap(), 81.0);
    // k = (h s)^2, so dk/dh = 2 (h s) s = 2 * -9 * 3 = -54.
    assert_eq!(grads[h].item().unwrap(), -54.0);
    assert!(grads.reaches(h));
    // dk/ds = 2 (h s) (h + s * dh/ds) with dh/ds = sum(w) = -1: 2 * -9 * (-3 - 3) = 108.
    assert_eq!(grads[s].item().unwrap(), 108.0);
    assert_eq!(grads[s].shape(), &[] as &[usize]);
    // dk/dw = dk/dh * s = -54 * 3 each.
    assert_eq!(grads[w].to_vec(), vec![-162.0; 3]);
    let trace = tape.trace_with(&grads);
    assert!(trace.contains("108"), "{trace}");
    // Values of rank-0 nodes read back as tensors.
    assert_eq!(h.value().shape(), &[] as &[usize]);
    assert_eq!(h.with_value(|t| t.item().unwrap()), -3.0);
    assert_eq!(s.label().as_deref(), Some("s"));
}

#[test]
fn one_element_matrices_and_repeated_inputs() {
    let tape = Tape::<f64>::new();
    let a = tape.var(Tensor::from_vec(vec![3.0], &[1, 1]).unwrap());
    let y = a.matmul(a).unwrap().sum(); // a^2
    let grads = tape.backward(y).unwrap();
    assert_eq!(grads[a].to_vec(), vec![6.0]);
    assert_eq!(grads[a].shape(), &[1, 1]);
    // The backward of a leaf itself, and of a constant.
    let x = tape.var(Tensor::scalar(2.0));
    assert_eq!(tape.backward(x).unwrap()[x].item().unwrap(), 1.0);
    let c = tape.constant(Tensor::scalar(2.0));
    let g = tape.backward(c * x).unwrap();
    assert!(!g.reaches(c));
    assert_eq!(g[x].item().unwrap(), 2.0);
    // The sum of an empty tensor is a rank-0 zero; its input's gradient is empty.
    let e = tape.var(Tensor::zeros(&[0]));
    let g = tape.backward(e.sum()).unwrap();
    assert_eq!(g[e].shape(), &[0]);
}

#[test]
fn finite_check_on_the_scalar_path() {
    let tape = Tape::<f64>::new();
    tape.set_check_finite(true);
    let x = tape.var(Tensor::scalar(-1.0));
    let y = x.ln().named("log_x"); // NaN, recorded on the fast path
    let err = y.mul(x).unwrap_err();
    match &err {
        AutodiffError::NonFinite(r) => {
            assert_eq!((r.phase, r.id, r.op.as_str()), ("forward", 1, "ln"));
            assert_eq!(r.label.as_deref(), Some("log_x"));
            assert_eq!(r.input_shapes, vec![Vec::<usize>::new()]);
        }
        other => panic!("unexpected {other}"),
    }
    // Backward: d sqrt(x)/dx at 0 is infinite.
    let tape = Tape::<f64>::new();
    tape.set_check_finite(true);
    let x = tape.var(Tensor::scalar(0.0));
    let err = tape.backward(x.sqrt() * 2.0).unwrap_err();
    match &err {
        AutodiffError::NonFinite(r) => {
            assert_eq!(
                (r.phase, r.id, r.op.as_str()),
                ("backward", 1, "sqrt"),
                "{err}"
            );
            assert_eq!(r.flowing_to, Some((0, "leaf".to_string(), None)));
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn shared_leaves_are_read_without_copying() {
    use std::sync::Arc;
    let a = Arc::new(Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
    let x = Arc::new(Tensor::<f64>::from_vec(vec![1.0, -1.0], &[2, 1]).unwrap());
    let one = Arc::new(Tensor::<f64>::from_vec(vec![5.0], &[1]).unwrap());
    let mut tape = Tape::<f64>::new();
    for _ in 0..2 {
        tape.clear();
        let w = tape.var_shared(Arc::clone(&a)).named("w");
        let c = tape.constant_shared(Arc::clone(&x));
        let k = tape.var_shared(Arc::clone(&one));
        assert_eq!(
            Arc::strong_count(&a),
            2,
            "the tape holds a reference, not a copy"
        );
        // y = sum(w c) * k: dy/dw = c^T k (each row), dy/dk = sum(w c) = (1 - 2) + (3 - 4) = -2.
        let y = w.matmul(c).unwrap().sum().mul(k).unwrap();
        assert_eq!(y.item().unwrap(), -10.0);
        let grads = tape.backward(y).unwrap();
        assert_eq!(grads[w].to_vec(), vec![5.0, -5.0, 5.0, -5.0]);
        assert_eq!(grads[k].to_vec(), vec![-2.0]);
        assert_eq!(grads[k].shape(), &[1]);
        assert!(!grads.reaches(c));
        assert_eq!(w.value(), *a);
        assert!(tape.trace().contains("leaf"));
    }
    tape.clear();
    assert_eq!(
        Arc::strong_count(&a),
        1,
        "clear drops the tape's references"
    );
    // A rank-0 shared tensor is held by value like any scalar.
    let s = Arc::new(Tensor::<f64>::scalar(2.0));
    let v = tape.var_shared(Arc::clone(&s));
    assert_eq!(Arc::strong_count(&s), 1);
    assert_eq!(tape.backward(v * v).unwrap()[v].item().unwrap(), 4.0);
}

#[test]
fn the_finite_check_names_the_op_whose_backward_made_the_value() {
    // The cases: the report named the leaf the gradient reached, and the op that made
    // it appeared nowhere. Ten unrelated nodes after it change nothing.
    fn first_bad(build: impl for<'t> Fn(&'t Tape<f64>) -> Var<'t, f64>) -> (usize, String) {
        let tape = Tape::<f64>::new();
        tape.set_check_finite(true);
        let loss = build(&tape);
        let mut unrelated = tape.var(Tensor::scalar(1.0));
        for _ in 0..10 {
            unrelated = unrelated.exp().tanh();
        }
        let _ = unrelated;
        match tape.backward(loss) {
            Err(AutodiffError::NonFinite(r)) => (r.id, r.to_string()),
            other => panic!("expected a non-finite report, got {:?}", other.map(|_| ())),
        }
    }
    // (sqrt(x) * 0).sum() at x = 0: 0 * inf in sqrt's backward.
    let (id, msg) = first_bad(|t| {
        let x = t.var(Tensor::scalar(0.0)).named("x");
        (x.sqrt() * 0.0).sum()
    });
    assert_eq!(id, 1);
    assert!(
        msg.starts_with(
            "non-finite backward gradient from the backward of node #1 (sqrt) flowing to its \
             input node #0 (leaf \"x\")"
        ),
        "{msg}"
    );
    // a / b at b = 1e-200: d/db = -a / b^2 overflows.
    let (id, msg) = first_bad(|t| {
        let a = t.var(Tensor::scalar(1.0)).named("a");
        let b = t.var(Tensor::scalar(1e-200)).named("b");
        (a / b).sum()
    });
    assert_eq!(id, 2);
    assert!(
        msg.contains("backward of node #2 (div) flowing to its input node #1 (leaf \"b\")"),
        "{msg}"
    );
    // ln at 1e-320 (subnormal): 1 / x overflows; a tensor input takes the tensor path.
    let (id, msg) = first_bad(|t| {
        let x = t
            .var(Tensor::from_vec(vec![1.0, 1e-320], &[2]).unwrap())
            .named("x");
        x.ln().named("log").sum()
    });
    assert_eq!(id, 1);
    assert!(
        msg.contains("backward of node #1 (ln \"log\") flowing to its input node #0 (leaf \"x\")"),
        "{msg}"
    );
    assert!(msg.contains("at flat indices [1]"), "{msg}");
}

#[test]
fn a_var_recorded_after_backward_is_not_called_foreign() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::scalar(3.0));
    let grads = tape.backward(x * x).unwrap();
    let later = x.exp();
    let err = grads.get(later).unwrap_err();
    assert_eq!(
        err.to_string(),
        "var #2 used in gradients lookup was recorded after this backward pass, which covers \
         nodes #0 to #1: run backward again to get its gradient"
    );
    assert!(matches!(
        err,
        AutodiffError::VarAfterBackward { id: 2, last: 1, .. }
    ));
    // A var of another tape is still called foreign.
    let other = Tape::<f64>::new();
    let y = other.var(Tensor::scalar(1.0));
    assert!(matches!(
        grads.get(y),
        Err(AutodiffError::ForeignVar { .. })
    ));
    assert_eq!(grads.get(x).unwrap().item().unwrap(), 6.0);
}

#[test]
fn operator_panics_point_at_the_callers_line() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(l) = info.location() {
            sink.lock().unwrap().push(l.file().to_string());
        }
    }));
    let tape = Tape::<f32>::new();
    let (a, b) = (tape.var(Tensor::ones(&[2])), tape.var(Tensor::ones(&[3])));
    let var_panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a * b));
    let (x, y) = (Tensor::<f32>::ones(&[2]), Tensor::<f32>::ones(&[3]));
    let tensor_panic = std::panic::catch_unwind(|| &x + &y);
    std::panic::set_hook(previous);
    assert!(var_panic.is_err() && tensor_panic.is_err());
    let files = seen.lock().unwrap().clone();
    // (Another test of this file may panic meanwhile: the hook is process-wide.)
    assert!(files.len() >= 2, "{files:?}");
    assert!(
        files.iter().all(|f| f.ends_with("tests/tape.rs")),
        "{files:?}"
    );
}

/// A scalar graph with fan-out, a repeated input (`x * x`), a diamond, a constant and a leaf
/// that feeds only a node far below: the values and leaf gradients on rank-0 vars (the scalar
/// backward's register-carried runs), with the finite check on (node by node), and on `[2]`-
/// shaped vars (the tensor path).
fn dag(shape: &[usize], check: bool) -> Vec<f64> {
    let tape = Tape::<f64>::new();
    tape.set_check_finite(check);
    let leaf = |v: f64| tape.var(Tensor::full(shape, v));
    let (x, w, u) = (leaf(0.7), leaf(-1.3), leaf(0.2));
    let c = tape.constant(Tensor::full(shape, 2.5));
    let mut h = x;
    for step in 0..40 {
        let sq = h * h; // the same input twice
        let left = (sq * w).tanh();
        let right = (h + c).sigmoid() * u; // a diamond from h
        h = if step % 3 == 0 {
            left - right
        } else {
            (left + right * h).sin()
        };
    }
    let y = (h * x + w).sum();
    let g = tape.backward(y).unwrap();
    assert!(!g.reaches(c));
    let mut out = vec![y.item().unwrap()];
    for v in [x, w, u] {
        let t = &g[v];
        assert_eq!(t.shape(), shape);
        // Every element of a [2] var carries the same number.
        assert!(
            t.as_slice()
                .iter()
                .all(|&e| e.to_bits() == t.as_slice()[0].to_bits())
        );
        out.push(t.as_slice()[0]);
    }
    out
}

#[test]
fn scalar_runs_give_the_same_bits_as_the_tensor_path() {
    let fast = dag(&[], false);
    assert_eq!(fast, dag(&[], true), "node by node (finite check on)");
    // [2] sums two equal elements: halve the loss, the gradients are per element.
    let tensor = dag(&[2], false);
    assert_eq!(fast[0] * 2.0, tensor[0]);
    assert_eq!(fast[1..], tensor[1..]);
    // And the gradient is right, by central differences on the scalar graph.
    let f = |x0: f64| {
        let tape = Tape::<f64>::new();
        let (x, w, u) = (
            tape.var(Tensor::scalar(x0)),
            tape.var(Tensor::scalar(-1.3)),
            tape.var(Tensor::scalar(0.2)),
        );
        let c = tape.constant(Tensor::scalar(2.5));
        let mut h = x;
        for step in 0..40 {
            let left = (h * h * w).tanh();
            let right = (h + c).sigmoid() * u;
            h = if step % 3 == 0 {
                left - right
            } else {
                (left + right * h).sin()
            };
        }
        (h * x + w).item().unwrap()
    };
    let eps = 1e-6;
    let numeric = (f(0.7 + eps) - f(0.7 - eps)) / (2.0 * eps);
    assert!(
        (numeric - fast[1]).abs() < 1e-7 * numeric.abs().max(1.0),
        "{numeric} vs {}",
        fast[1]
    );
}

#[test]
fn backward_steps_add_up_to_backward() {
    let tape = Tape::<f64>::new();
    let x = tape
        .var(Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3]).unwrap())
        .named("x");
    let w = tape
        .var(Tensor::from_vec(vec![0.3, 0.2, -0.4], &[3]).unwrap())
        .named("w");
    let b = tape.var(Tensor::scalar(0.1)).named("b");
    let c = tape.constant(Tensor::scalar(3.0));
    let z = (x * w).sum() + b; // a neuron's pre-activation
    let h = z.sigmoid();
    let y = h * h * c + (x * x).mean(); // fan-out, a repeated input, a constant
    let steps = tape.backward_steps(y).unwrap();
    let grads = tape.backward(y).unwrap();
    // Backward order: from the loss down, only nodes the loss reaches, no leaves.
    let order: Vec<usize> = steps.iter().map(|s| s.node).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted);
    assert_eq!(order[0], y.index());
    assert!(order.iter().all(|&i| !tape.rows()[i].inputs.is_empty()));
    assert_eq!(steps[0].upstream.item().unwrap(), 1.0);
    // Each step's upstream is the sum of what the earlier steps gave that node, and the sums
    // at the end are backward's gradients: bit for bit for one-element nodes.
    let sum_to = |node: usize, upto: usize| -> Option<Tensor<f64>> {
        let mut acc: Option<Tensor<f64>> = None;
        for s in &steps[..upto] {
            for (j, t) in &s.contributions {
                if *j == node {
                    acc = Some(match acc {
                        Some(a) => a.add(t).unwrap(),
                        None => t.clone(),
                    });
                }
            }
        }
        acc
    };
    for (k, s) in steps.iter().enumerate().skip(1) {
        assert_eq!(sum_to(s.node, k).unwrap(), s.upstream, "step {k}");
    }
    assert_eq!(
        sum_to(b.index(), steps.len())
            .unwrap()
            .item()
            .unwrap()
            .to_bits(),
        grads[b].item().unwrap().to_bits()
    );
    for v in [x, w] {
        let total = sum_to(v.index(), steps.len()).unwrap();
        for (p, q) in total.as_slice().iter().zip(grads[v].as_slice()) {
            assert!((p - q).abs() < 1e-14, "{p} vs {q}");
        }
    }
    // The constant gets nothing; `h * h` gives h one entry holding both terms: 2 h upstream.
    assert!(
        steps
            .iter()
            .all(|s| s.contributions.iter().all(|(j, _)| *j != c.index()))
    );
    let hh = steps
        .iter()
        .find(|s| tape.rows()[s.node].inputs == vec![h.index(), h.index()])
        .unwrap();
    assert_eq!(hh.contributions.len(), 1);
    let hv = h.item().unwrap();
    assert!(
        (hh.contributions[0].1.item().unwrap() - 2.0 * hv * hh.upstream.item().unwrap()).abs()
            < 1e-15
    );
    // Rows: ops, inputs, labels, shapes and values as the trace shows them.
    let rows = tape.rows();
    assert_eq!(rows.len(), tape.len());
    assert_eq!(rows[x.index()].label.as_deref(), Some("x"));
    assert_eq!(rows[z.index()].op, "add");
    assert_eq!(rows[z.index()].shape, Vec::<usize>::new());
    assert!(!rows[c.index()].requires_grad && rows[x.index()].requires_grad);
    assert_eq!(rows[h.index()].value.item().unwrap(), hv);
    // The errors backward gives.
    assert!(matches!(
        tape.backward_steps(x),
        Err(AutodiffError::NonScalarLoss { .. })
    ));
    let other = Tape::<f64>::new();
    let o = other.var(Tensor::scalar(1.0));
    assert!(matches!(
        tape.backward_steps(o),
        Err(AutodiffError::ForeignVar { .. })
    ));
}

/// The scalar path's two cold branches: a full node list that grows mid-op (from one slot),
/// and the finite check, which reads each value back from its record. Both give the values and
/// gradients of a tape that never grows, bit for bit.
#[test]
fn scalar_chains_across_growth_and_the_finite_check_keep_their_values() {
    let chain = |tape: &Tape<f64>| {
        let x = tape.var(Tensor::scalar(0.3));
        let (a, b) = (
            tape.var(Tensor::scalar(1.1)),
            tape.constant(Tensor::scalar(0.2)),
        );
        let mut y = x;
        for k in 0..200 {
            y = match k % 4 {
                0 => (y * a + b).sigmoid(),
                1 => (y - a).tanh() * 2.0,
                2 => y / (a + 1.0),
                _ => (y * y).exp().ln() + b,
            };
        }
        let grads = tape.backward(y).unwrap();
        [
            y.item().unwrap(),
            grads[x].item().unwrap(),
            grads[a].item().unwrap(),
        ]
        .map(f64::to_bits)
    };
    let roomy = chain(&Tape::with_capacity(2000));
    let growing = Tape::with_capacity(1);
    assert_eq!(chain(&growing), roomy);
    assert_eq!(growing.len(), 3 + 50 * 12);
    let checked = Tape::with_capacity(2000);
    checked.set_check_finite(true);
    assert_eq!(chain(&checked), roomy);
    // The hand computation of the first step.
    let tape = Tape::<f64>::with_capacity(1);
    let (x, a) = (tape.var(Tensor::scalar(0.3)), tape.var(Tensor::scalar(1.1)));
    let y = (x * a + 0.2).sigmoid();
    assert_eq!(
        y.item().unwrap(),
        1.0 / (1.0 + (-(0.3f64 * 1.1 + 0.2)).exp())
    );
}

/// Ops of many inputs read the inputs' stored tensors by reference; rank-0 inputs store none,
/// and get theirs built: stacking scalar vars gives their values and gradients.
#[test]
fn stacking_rank0_vars_builds_their_values() {
    let tape = Tape::<f64>::new();
    let a = tape.var(Tensor::scalar(2.0));
    let b = a * 3.0;
    let s = Var::stack(&[a, b, a], 0).unwrap();
    assert_eq!(s.value().as_slice(), &[2.0, 6.0, 2.0]);
    let w = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).unwrap());
    let loss = (s * w).sum();
    // d/da (a + 2 * 3a + 3a) = 1 + 6 + 3.
    assert_eq!(tape.backward(loss).unwrap()[a].item().unwrap(), 10.0);
}

/// Room for more nodes than 32-bit ids can number is an error naming the op, and
/// `with_capacity` panics with it (a clear message, not the allocator's abort).
#[test]
fn room_past_the_node_limit_is_an_error_not_an_abort() {
    let limit = u32::MAX as usize;
    for nodes in [limit + 1, 1 << 40, usize::MAX] {
        let err = Tape::<f32>::try_with_capacity(nodes)
            .err()
            .expect("past the limit");
        let text = err.to_string();
        assert!(text.contains("Tape::with_capacity"), "{text}");
        assert!(text.contains(&format!("room for {nodes} nodes")), "{text}");
        assert!(text.contains("32 bits"), "{text}");
    }
    let caught = std::panic::catch_unwind(|| Tape::<f64>::with_capacity(usize::MAX));
    let message = *caught
        .err()
        .expect("a panic")
        .downcast::<String>()
        .expect("a formatted message");
    assert!(message.contains("32 bits"), "{message}");
    // Within the limit: the room is there.
    let tape = Tape::<f32>::try_with_capacity(100).unwrap();
    let x = tape.var(Tensor::scalar(1.0));
    assert_eq!(((x * 2.0).item().unwrap(), tape.len()), (2.0, 2));
}

/// Softmax cross-entropy computes one exponential per logit: its loss is log_softmax's picked
/// and averaged, and its gradient `(softmax - onehot) / n`, both to the bit (the probabilities
/// are `exp(z - max) / sum`, as `Tensor::softmax` computes them).
#[test]
fn softmax_cross_entropy_equals_log_softmax_and_softmax_bit_for_bit() {
    let (rows, k) = (37, 11);
    let z = Tensor::<f32>::from_fn(&[rows, k], |i| ((i * 7919) % 97) as f32 * 0.37 - 15.0);
    let labels: Vec<usize> = (0..rows).map(|i| (i * 5 + 2) % k).collect();
    let tape = Tape::<f32>::new();
    let x = tape.var(z.clone());
    let loss = x.softmax_cross_entropy(&labels).unwrap();
    let picked = z.log_softmax(1).unwrap().gather(&labels).unwrap();
    let mean = -picked.as_slice().iter().copied().sum::<f32>() / rows as f32;
    assert_eq!(loss.item().unwrap().to_bits(), mean.to_bits());
    let grad = tape.backward(loss).unwrap()[x].to_vec();
    let scale = 1.0 / rows as f32;
    let mut expect = z.softmax(1).unwrap().to_vec();
    for (row, &c) in labels.iter().enumerate() {
        expect[row * k + c] -= 1.0;
    }
    let expect: Vec<u32> = expect.iter().map(|v| (v * scale).to_bits()).collect();
    assert_eq!(grad.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), expect);
}

/// `named_arc` takes a name back from the last step that named nodes when the position and
/// the `Arc` match and clones it otherwise; every node carries its own name either way, the
/// tape holds at most one step's names, and its counts go when it does.
#[test]
fn names_are_taken_back_from_the_last_step_or_cloned() {
    use std::sync::Arc;
    let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
    let held = |n: &Arc<str>| Arc::strong_count(n) - 1;
    let mut tape = Tape::<f64>::new();
    // Steps 0 and 1 name a then b (step 1 takes both back); step 2 swaps them (each position
    // cloned anew, the old name there dropped); step 3 names only a, where b stood.
    let steps: [&[&Arc<str>]; 4] = [&[&a, &b], &[&a, &b], &[&b, &a], &[&a]];
    let expect = [(1, 1), (1, 1), (1, 1), (2, 0)];
    for (order, want) in steps.iter().zip(expect) {
        tape.clear();
        let vars: Vec<_> = order
            .iter()
            .map(|name| tape.var(Tensor::scalar(1.0)).named_arc(name))
            .collect();
        for (v, name) in vars.iter().zip(order.iter()) {
            assert_eq!(v.label().as_deref(), Some(&***name));
        }
        assert_eq!((held(&a), held(&b)), want);
        // `named_shared` and `named` at a position hold their own name there.
        let c = tape.var(Tensor::scalar(2.0)).named("c");
        assert_eq!(c.label().as_deref(), Some("c"));
        tape.clear();
    }
    // The last step's one name (a) stays through the clears, its extra positions do not.
    assert_eq!((held(&a), held(&b)), (1, 0));
    tape.clear();
    assert_eq!((held(&a), held(&b)), (1, 0));
    drop(tape);
    assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (1, 1));
}

/// Where an input of a scalar binary node comes from: a leaf that requires a gradient, a
/// constant, or a node recorded just before it (from the leaf, or from constants only).
#[derive(Clone, Copy, Debug)]
enum Source {
    Leaf,
    Constant,
    BelowGrad,
    BelowConstant,
}

/// `first op second` then `tanh`, on vars of `shape`; both inputs one node when `same`.
/// Returns the value, the leaf's gradient and the gradient of every input that reaches the
/// result (`None` for one that does not), as bits.
fn route(shape: &[usize], op: usize, first: Source, second: Source, same: bool) -> Vec<u64> {
    let tape = Tape::<f64>::new();
    let leaf = tape.var(Tensor::full(shape, 0.8));
    let constant = tape.constant(Tensor::full(shape, -1.7));
    let pick = |s: Source| match s {
        Source::Leaf => leaf,
        Source::Constant => constant,
        Source::BelowGrad => (leaf * 1.5).sin(),
        Source::BelowConstant => (constant * 1.5).sin(),
    };
    // The second input is recorded last: when it is a computed one, it is the node just below.
    let a = pick(first);
    let b = if same { a } else { pick(second) };
    let y = match op {
        0 => a + b,
        1 => a * b,
        2 => a - b,
        _ => a / b,
    }
    .tanh();
    let loss = if shape.is_empty() { y } else { y.sum() };
    let g = tape.backward(loss).unwrap();
    let mut out = vec![y.value().as_slice()[0].to_bits()];
    for v in [leaf, a, b] {
        out.push(g.get(v).map_or(u64::MAX, |t| t.as_slice()[0].to_bits()));
    }
    out
}

/// Every way a scalar binary node's inputs can take their gradients (each into its slot or
/// carried to the node just below, or not at all, both inputs one node), as recorded with the
/// node, give the tensor path's numbers bit for bit.
#[test]
fn every_route_of_a_scalar_binary_node_matches_the_tensor_path() {
    use Source::*;
    let all = [Leaf, Constant, BelowGrad, BelowConstant];
    let mut cases = 0;
    for op in 0..4 {
        for first in all {
            for second in all {
                let same = false;
                let scalar = route(&[], op, first, second, same);
                let tensor = route(&[2], op, first, second, same);
                assert_eq!(scalar, tensor, "op {op}, {first:?} then {second:?}");
                cases += 1;
            }
            let scalar = route(&[], op, first, first, true);
            assert_eq!(
                scalar,
                route(&[2], op, first, first, true),
                "op {op}, {first:?} twice"
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 80);
    // The leaf's gradient through `x * x` is 2x sech^2(x^2), computed here in closed form.
    let twice = route(&[], 1, Leaf, Leaf, true);
    let x: f64 = 0.8;
    let expect = 2.0 * x * (1.0 - (x * x).tanh().powi(2));
    assert!((f64::from_bits(twice[1]) - expect).abs() < 1e-15);
}

/// A one-element input's gradient, summed from its output's shape (`broadcast_to`'s backward, a
/// one-output layer's bias), is `Tensor::sum_to`'s to the bit, signed zeros included: the
/// element itself where the shapes agree (a -0 stays -0), the sum of every element where they
/// do not (a lone -0 sums to +0).
#[test]
fn a_one_element_inputs_reduced_gradient_is_sum_tos_to_the_bit() {
    let cases: [(&[usize], &[usize], Vec<f64>); 6] = [
        (&[1], &[1], vec![-0.0]),
        (&[1], &[1, 1], vec![-0.0]),
        (&[], &[], vec![-0.0]),
        (&[], &[3], vec![-0.0, -0.0, -0.0]),
        (&[1], &[3], vec![0.1, 0.2, -0.7]),
        (&[1, 1], &[2, 3], vec![1e16, 1.0, -1e16, 3.0, -0.0, 2.5]),
    ];
    for (x_shape, out_shape, upstream) in cases {
        let w = Tensor::from_vec(upstream, out_shape).unwrap();
        let expect = w.sum_to(x_shape).unwrap().to_vec()[0].to_bits();
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::full(x_shape, 0.5));
        let y = x.broadcast_to(out_shape).unwrap();
        let loss = y.mul(tape.constant(w.clone())).unwrap().sum();
        let got = tape.backward(loss).unwrap()[x].to_vec()[0].to_bits();
        assert_eq!(got, expect, "broadcast_to {x_shape:?} -> {out_shape:?}");
    }
    // The bias of a layer with one output: its gradient sums the rows' ([n, 1] -> [1]).
    for upstream in [vec![-0.0f64], vec![-0.0, -0.0], vec![0.1, 0.2, -0.7, 1e-17]] {
        let n = upstream.len();
        let w = Tensor::from_vec(upstream, &[n, 1]).unwrap();
        let expect = w.sum_to(&[1]).unwrap().to_vec()[0].to_bits();
        let tape = Tape::<f64>::new();
        let b = tape.var(Tensor::full(&[1], 0.5));
        let x = tape.constant(Tensor::ones(&[n, 2]));
        let z = x.linear(tape.var(Tensor::ones(&[2, 1])), b).unwrap();
        let loss = z.mul(tape.constant(w.clone())).unwrap().sum();
        let got = tape.backward(loss).unwrap()[b].to_vec()[0].to_bits();
        assert_eq!(got, expect, "linear's bias, {n} rows");
    }
}
