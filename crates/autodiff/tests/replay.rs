//! A replayed step gives bit for bit what a new recording gives; what the graph fixed is
//! checked.

use tapegrad_autodiff::{AutodiffError, Tape, Var};
use tapegrad_tensor::Tensor;

fn t(shape: &[usize], seed: usize) -> Tensor<f64> {
    Tensor::from_fn(shape, |i| {
        (((i + seed * 13) * 37 % 23) as f64 / 23.0 - 0.45) * 1.7
    })
}

/// A graph over many ops: a conv layer with pooling, layer norm, an MLP head, softmax
/// cross-entropy, plus reductions, shape ops and elementwise ops on the side.
fn model<'t>(v: &[Var<'t, f64>]) -> Var<'t, f64> {
    let (img, k, kb, g, b, w, wb) = (v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    let h = img
        .conv2d(k, Some(kb), (1, 1), (1, 1))
        .unwrap()
        .relu()
        .max_pool2d((2, 2), (2, 2))
        .unwrap(); // [2, 3, 2, 2]
    let flat = h.reshape(&[2, 12]).unwrap().layer_norm(g, b, 1e-5).unwrap();
    let z = flat.linear(w, wb).unwrap().tanh(); // [2, 4]
    let ce = z.softmax_cross_entropy(&[1, 3]).unwrap();
    let side = z
        .max_axis(1, false)
        .unwrap()
        .add(z.logsumexp(1, false).unwrap())
        .unwrap()
        .mul(z.narrow(1, 0, 1).unwrap().squeeze(1).unwrap().sigmoid())
        .unwrap()
        .sum();
    let stats = z.var_axis(0, false, 1).unwrap().sqrt().mean();
    let scal = ce.mul(side).unwrap().add_scalar(0.5).powf(1.5) + stats.exp();
    scal.add(z.t().cumsum(0).unwrap().abs().mean()).unwrap()
}

fn leaves(seed: usize) -> Vec<Tensor<f64>> {
    vec![
        t(&[2, 2, 4, 4], seed),
        t(&[3, 2, 3, 3], seed + 1),
        t(&[3], seed + 2),
        t(&[12], seed + 3).map(|x| x.abs() + 0.5),
        t(&[12], seed + 4),
        t(&[12, 4], seed + 5),
        t(&[4], seed + 6),
    ]
}

fn bits(x: &Tensor<f64>) -> Vec<u64> {
    x.as_slice().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_replayed_step_matches_a_new_recording_bit_for_bit() {
    let tape = Tape::<f64>::new();
    let vars: Vec<Var<'_, f64>> = leaves(1).into_iter().map(|x| tape.var(x)).collect();
    let loss = model(&vars);
    let nodes = tape.len();
    let first = loss.item().unwrap();
    for seed in [5, 9, 1] {
        let new = leaves(seed);
        let pairs: Vec<(Var<'_, f64>, &Tensor<f64>)> = vars.iter().copied().zip(&new).collect();
        tape.replay(&pairs).unwrap();
        assert_eq!(tape.len(), nodes, "replay records nothing");
        let fresh = Tape::<f64>::new();
        let fvars: Vec<Var<'_, f64>> = new.iter().map(|x| fresh.var(x.clone())).collect();
        let floss = model(&fvars);
        assert_eq!(
            loss.item().unwrap().to_bits(),
            floss.item().unwrap().to_bits()
        );
        // Every node's value, and every leaf's gradient.
        for i in 0..nodes {
            let (a, b) = (
                tape.node(i).unwrap().value(),
                fresh.node(i).unwrap().value(),
            );
            assert_eq!(bits(&a), bits(&b), "node {i}");
        }
        let (g, fg) = (tape.backward(loss).unwrap(), fresh.backward(floss).unwrap());
        for (a, b) in vars.iter().zip(&fvars) {
            assert_eq!(bits(&g[*a]), bits(&fg[*b]));
        }
    }
    // Back to the first values: the first loss.
    let first_leaves = leaves(1);
    let pairs: Vec<(Var<'_, f64>, &Tensor<f64>)> =
        vars.iter().copied().zip(&first_leaves).collect();
    tape.replay(&pairs).unwrap();
    assert_eq!(loss.item().unwrap().to_bits(), first.to_bits());
}

#[test]
fn scalar_graphs_and_gradient_graphs_replay_too() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::scalar(0.7));
    let a = tape.constant(Tensor::scalar(1.3));
    let mut y = x;
    for _ in 0..20 {
        y = (y * a).tanh() + x.sin();
    }
    let dy = tape.grad(y, &[x]).unwrap()[0];
    let d2y = tape.grad(dy, &[x]).unwrap()[0];
    for x0 in [0.1, -2.0, 3.5] {
        tape.replay(&[(x, &Tensor::scalar(x0))]).unwrap();
        let fresh = Tape::<f64>::new();
        let fx = fresh.var(Tensor::scalar(x0));
        let fa = fresh.constant(Tensor::scalar(1.3));
        let mut fy = fx;
        for _ in 0..20 {
            fy = (fy * fa).tanh() + fx.sin();
        }
        let fdy = fresh.grad(fy, &[fx]).unwrap()[0];
        let fd2y = fresh.grad(fdy, &[fx]).unwrap()[0];
        assert_eq!(y.item().unwrap().to_bits(), fy.item().unwrap().to_bits());
        assert_eq!(dy.item().unwrap().to_bits(), fdy.item().unwrap().to_bits());
        assert_eq!(
            d2y.item().unwrap().to_bits(),
            fd2y.item().unwrap().to_bits()
        );
    }
}

#[test]
fn what_the_graph_fixed_is_checked() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::ones(&[2, 3]));
    let y = x.exp().sum();
    // Another shape: an error naming the node and both shapes; nothing changes.
    let err = tape.replay(&[(x, &Tensor::zeros(&[3, 2]))]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot replay with node #0: it was recorded with shape [2, 3], the new value has [3, 2]"
    );
    assert_eq!(y.item().unwrap(), 6.0 * 1f64.exp());
    // Not a leaf.
    let err = tape.replay(&[(y, &Tensor::scalar(1.0))]).unwrap_err();
    assert!(matches!(err, AutodiffError::Replay { id: 2, .. }), "{err}");
    assert!(err.to_string().contains("a sum node, not a leaf"), "{err}");
    // A var of another tape.
    let other = Tape::<f64>::new();
    let z = other.var(Tensor::ones(&[2, 3]));
    assert!(matches!(
        tape.replay(&[(z, &Tensor::ones(&[2, 3]))]),
        Err(AutodiffError::ForeignVar { .. })
    ));
    // The finite check reports a NaN a replay produces.
    tape.set_check_finite(true);
    let w = tape.var(Tensor::scalar(1.0));
    let l = w.ln();
    let err = tape.replay(&[(w, &Tensor::scalar(-1.0))]).unwrap_err();
    assert!(matches!(err, AutodiffError::NonFinite(_)), "{err}");
    let _ = l;
}

#[test]
fn a_replay_keeps_the_dropout_mask_it_recorded() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::ones(&[64]));
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    let y = x.dropout(0.5, &mut rng).unwrap();
    let kept: Vec<bool> = y.value().as_slice().iter().map(|&v| v != 0.0).collect();
    tape.replay(&[(x, &Tensor::full(&[64], 3.0))]).unwrap();
    let again: Vec<bool> = y.value().as_slice().iter().map(|&v| v != 0.0).collect();
    assert_eq!(kept, again);
    assert!(y.value().as_slice().iter().all(|&v| v == 0.0 || v == 6.0));
}

#[test]
fn layers_replayed_in_place_match_a_new_recording() {
    // Linear nodes are recomputed into their own buffers: a batch of sequences into one
    // neuron, an inline 2x2 output, and an empty batch.
    for (xs, ws) in [
        (vec![3usize, 2, 5], vec![5usize, 1]),
        (vec![2, 2], vec![2, 2]),
        (vec![0, 3], vec![3, 4]),
    ] {
        let tape = Tape::<f64>::new();
        let (loss, vars, y) = layer(&tape, &xs, &ws, 1);
        let new = [t(&xs, 7), t(&ws, 8), t(&[ws[1]], 9)];
        let pairs: Vec<(Var<'_, f64>, &Tensor<f64>)> = vars.iter().copied().zip(&new).collect();
        tape.replay(&pairs).unwrap();
        let fresh = Tape::<f64>::new();
        let (floss, fvars, fy) = layer(&fresh, &xs, &ws, 7);
        assert_eq!(bits(&y.value()), bits(&fy.value()), "{xs:?} x {ws:?}");
        assert_eq!(
            loss.item().unwrap().to_bits(),
            floss.item().unwrap().to_bits()
        );
        let (g, fg) = (tape.backward(loss).unwrap(), fresh.backward(floss).unwrap());
        for (v, fv) in vars.iter().zip(&fvars) {
            assert_eq!(bits(&g[*v]), bits(&fg[*fv]));
        }
    }
}

/// A linear layer on `tape` with leaves from `seed`: (loss, [x, w, b], the layer's output).
fn layer<'t>(
    tape: &'t Tape<f64>,
    xs: &[usize],
    ws: &[usize],
    seed: usize,
) -> (Var<'t, f64>, [Var<'t, f64>; 3], Var<'t, f64>) {
    let x = tape.var(t(xs, seed));
    let w = tape.var(t(ws, seed + 1));
    let b = tape.var(t(&[ws[1]], seed + 2));
    let y = x.linear(w, b).unwrap();
    (y.tanh().sum() + y.sum(), [x, w, b], y)
}

/// Vars made before a replay still compute from the replayed values: the scalar path carries
/// each var's value with it, and a replay changes values under live vars.
#[test]
fn ops_recorded_after_a_replay_use_the_replayed_values() {
    let mut tape = Tape::<f64>::new();
    let x = tape.var(Tensor::scalar(2.0));
    let c = tape.constant(Tensor::scalar(0.5));
    let y = x * x; // 4, then 9 after the replay
    tape.replay(&[(x, &Tensor::scalar(3.0))]).unwrap();
    assert_eq!(y.item().unwrap(), 9.0);
    // Unary (affine, exp) and binary ops on vars made before the replay.
    let z = y + 1.0;
    let w = y * x;
    let e = (x * c).exp();
    let s = w - z;
    assert_eq!(z.item().unwrap(), 10.0);
    assert_eq!(w.item().unwrap(), 27.0);
    assert_eq!(e.item().unwrap(), 1.5f64.exp());
    assert_eq!(s.item().unwrap(), 17.0);
    // And the gradient of the whole graph is that of the replayed values: d(x^3 - x^2 - 1)/dx.
    let dx = tape.backward(s).unwrap()[x].item().unwrap();
    assert_eq!(dx, 3.0 * 9.0 - 2.0 * 3.0);
    // After `clear` the tape records from vars' own values again.
    tape.clear();
    let x = tape.var(Tensor::scalar(2.0));
    assert_eq!((x * x + x).item().unwrap(), 6.0);
}

/// Max pooling that no gradient flows through (a constant's, or inside `no_grad`) keeps no
/// argmax positions on the tape, and still replays bit for bit beside pooling that does keep
/// them: the values recomputed alone, no positions written where none were kept.
#[test]
fn pooling_without_positions_replays_beside_pooling_with_them() {
    fn graph<'t>(tape: &'t Tape<f64>, img: Var<'t, f64>, w: Var<'t, f64>) -> [Var<'t, f64>; 4] {
        let of_constant = img.max_pool2d((2, 2), (2, 2)).unwrap();
        let of_var = w.max_pool2d((2, 2), (1, 2)).unwrap();
        let inside = tape.no_grad(|| w.max_pool2d((2, 2), (2, 2)).unwrap());
        let loss = of_constant.mul(inside).unwrap().sum() + of_var.square().sum();
        [of_constant, of_var, inside, loss]
    }
    let tape = Tape::<f64>::new();
    let (img, w) = (
        tape.constant(t(&[2, 2, 4, 4], 3)),
        tape.var(t(&[2, 2, 4, 4], 4)),
    );
    let [of_constant, of_var, inside, loss] = graph(&tape, img, w);
    assert!(!of_constant.requires_grad() && !inside.requires_grad() && of_var.requires_grad());
    let pooled = t(&[2, 2, 4, 4], 3).max_pool2d((2, 2), (2, 2)).unwrap();
    assert_eq!(bits(&of_constant.value()), bits(&pooled));
    for seed in [7, 3] {
        let (new_img, new_w) = (t(&[2, 2, 4, 4], seed), t(&[2, 2, 4, 4], seed + 5));
        tape.replay(&[(img, &new_img), (w, &new_w)]).unwrap();
        let fresh = Tape::<f64>::new();
        let (fimg, fw) = (fresh.constant(new_img), fresh.var(new_w));
        let fresh_nodes = graph(&fresh, fimg, fw);
        for (a, b) in [of_constant, of_var, inside, loss].iter().zip(&fresh_nodes) {
            assert_eq!(bits(&a.value()), bits(&b.value()));
        }
        let (g, fg) = (
            tape.backward(loss).unwrap(),
            fresh.backward(fresh_nodes[3]).unwrap(),
        );
        assert_eq!(bits(&g[w]), bits(&fg[fw]));
    }
}
