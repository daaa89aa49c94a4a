//! The fused dense layers (`linear_sigmoid`, `linear_tanh`, `linear_relu`): the same numbers,
//! to the bit, as `linear` followed by the activation, in one node, at sizes that split over
//! threads too, and through a replay.

use tapegrad_autodiff::{Result, Tape, Var};
use tapegrad_tensor::{Float, Tensor, set_num_threads};

type Layer<E> = for<'t> fn(Var<'t, E>, Var<'t, E>, Var<'t, E>) -> Result<Var<'t, E>>;

fn layers<E: Float>() -> [(&'static str, Layer<E>, Layer<E>); 3] {
    [
        (
            "linear_sigmoid",
            |x, w, b| x.linear_sigmoid(w, b),
            |x, w, b| Ok(x.linear(w, b)?.sigmoid()),
        ),
        (
            "linear_tanh",
            |x, w, b| x.linear_tanh(w, b),
            |x, w, b| Ok(x.linear(w, b)?.tanh()),
        ),
        (
            "linear_relu",
            |x, w, b| x.linear_relu(w, b),
            |x, w, b| Ok(x.linear(w, b)?.relu()),
        ),
    ]
}

/// Inputs with a spread of signs and sizes.
fn t<E: Float>(shape: &[usize], seed: usize) -> Tensor<E> {
    Tensor::from_fn(shape, |i| {
        E::from_f64((((i * 7 + seed * 13) % 29) as f64 / 29.0 - 0.5) * 3.0)
    })
}

fn bits<E: Float>(t: &Tensor<E>) -> Vec<u64> {
    t.as_slice().iter().map(|v| v.to_f64().to_bits()).collect()
}

/// Values and every gradient of the fused node against the two nodes, for input `[n, k]`
/// into `m` outputs; returns how many nodes each recorded.
fn compare<E: Float>(n: usize, k: usize, m: usize) -> (usize, usize) {
    let mut counts = (0, 0);
    for (name, fused, apart) in layers::<E>() {
        let mut grads = Vec::new();
        for (which, layer) in [fused, apart].into_iter().enumerate() {
            let tape = Tape::<E>::new();
            let x = tape.var(t(&[n, k], 1));
            let w = tape.var(t(&[k, m], 2));
            let b = tape.var(t(&[m], 3));
            let before = tape.len();
            let y = layer(x, w, b).unwrap();
            let nodes = tape.len() - before;
            if which == 0 {
                counts.0 = nodes;
            } else {
                counts.1 = nodes;
            }
            // A weighting that reaches every output element differently.
            let c = tape.constant(t(&[n, m], 4));
            let loss = y.mul(c).unwrap().sum();
            let g = tape.backward(loss).unwrap();
            grads.push((
                bits(&y.value()),
                bits(&g[x]),
                bits(&g[w]),
                bits(&g[b]),
                y.op_name(),
            ));
        }
        let (f, a) = (&grads[0], &grads[1]);
        assert_eq!(f.0, a.0, "{name} [{n}, {k}] x [{k}, {m}]: values");
        assert_eq!(f.1, a.1, "{name}: dx");
        assert_eq!(f.2, a.2, "{name}: dw");
        assert_eq!(f.3, a.3, "{name}: db");
        assert_eq!(f.4, name);
    }
    counts
}

#[test]
fn fused_layers_equal_linear_then_activation_bit_for_bit() {
    assert_eq!(compare::<f64>(5, 3, 4), (1, 2));
    assert_eq!(compare::<f32>(5, 3, 4), (1, 2));
    // A one-output neuron, a single sample, and both (a one-element output, whose gradient
    // backward keeps as a plain number).
    compare::<f32>(7, 2, 1);
    compare::<f64>(1, 4, 3);
    compare::<f64>(1, 3, 1);
    // Pre-activations exactly 0 (relu's kink, where both sides give 0): x is 0.
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::zeros(&[2, 3]));
    let (w, b) = (tape.var(t(&[3, 2], 2)), tape.var(Tensor::zeros(&[2])));
    let (f, a) = (x.linear_relu(w, b).unwrap(), x.linear(w, b).unwrap().relu());
    let (gf, ga) = (
        tape.backward(f.sum()).unwrap(),
        tape.backward(a.sum()).unwrap(),
    );
    assert_eq!(bits(&gf[x]), bits(&ga[x]));
    assert_eq!(bits(&gf[w]), bits(&ga[w]));
    assert_eq!(gf[b].to_vec(), vec![0.0, 0.0]);
}

/// Large enough that the activation, its derivative and the products split over two threads.
#[test]
fn fused_layers_equal_linear_then_activation_on_two_threads() {
    set_num_threads(2);
    compare::<f32>(256, 64, 160);
    set_num_threads(1);
    compare::<f32>(256, 64, 160);
}

#[test]
fn a_replayed_fused_layer_equals_a_recorded_one() {
    for (name, fused, _) in layers::<f64>() {
        let tape = Tape::<f64>::new();
        let x = tape.var(t(&[4, 3], 1));
        let w = tape.var(t(&[3, 2], 2));
        let b = tape.var(t(&[2], 3));
        let y = fused(x, w, b).unwrap();
        let loss = y.square().sum();
        let x2 = t::<f64>(&[4, 3], 9);
        tape.replay(&[(x, &x2)]).unwrap();
        let g = tape.backward(loss).unwrap();
        // The same graph recorded from the new input.
        let fresh = Tape::<f64>::new();
        let (fx, fw, fb) = (
            fresh.var(x2),
            fresh.var(t(&[3, 2], 2)),
            fresh.var(t(&[2], 3)),
        );
        let fy = fused(fx, fw, fb).unwrap();
        let floss = fy.square().sum();
        let fg = fresh.backward(floss).unwrap();
        assert_eq!(bits(&y.value()), bits(&fy.value()), "{name}");
        assert_eq!(bits(&g[w]), bits(&fg[fw]), "{name}");
        assert_eq!(bits(&g[x]), bits(&fg[fx]), "{name}");
        assert_eq!(bits(&g[b]), bits(&fg[fb]), "{name}");
        // A shape change is an error, as for every leaf.
        assert!(tape.replay(&[(x, &t::<f64>(&[5, 3], 1))]).is_err());
    }
}

#[test]
fn a_fused_layer_reports_bad_shapes_as_linear_does() {
    let tape = Tape::<f32>::new();
    let x = tape.var(t(&[5, 3], 1));
    let w = tape.var(t(&[4, 2], 2));
    let b = tape.var(t(&[2], 3));
    let err = x.linear_tanh(w, b).unwrap_err().to_string();
    assert!(
        err.contains("linear") && err.contains("[5, 3]") && err.contains("[4, 2]"),
        "{err}"
    );
    let other = Tape::<f32>::new();
    let wb = other.var(t(&[3, 2], 2));
    assert!(x.linear_sigmoid(wb, b).is_err());
}

/// A fused layer holds one tensor (its output) where `linear` then the activation hold two.
#[test]
fn a_fused_layer_holds_one_tensor_fewer() {
    let held = |fused: bool| {
        let tape = Tape::<f32>::new();
        let x = tape.constant(t(&[8, 5], 1));
        let (w, b) = (tape.var(t(&[5, 6], 2)), tape.var(t(&[6], 3)));
        if fused {
            x.linear_tanh(w, b).unwrap();
        } else {
            x.linear(w, b).unwrap().tanh();
        }
        tape.profile().total.value_bytes
    };
    // The leaves' 30 + 6 elements and the constant's 40, then the layer: 48 elements or 96.
    assert_eq!(held(true), (40 + 30 + 6 + 48) * 4);
    assert_eq!(held(false), (40 + 30 + 6 + 96) * 4);
}
