//! Tensor crate tests: kernels against slow references, broadcasting, stability, edge shapes.

use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_tensor::{Float, Tensor, TensorError, Transpose, gemm_into};

/// The obviously correct triple loop, on explicitly transposed copies.
fn reference_matmul<E: Float>(a: &Tensor<E>, b: &Tensor<E>) -> Vec<f64> {
    let (m, k) = (a.shape()[0], a.shape()[1]);
    let n = b.shape()[1];
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                c[i * n + j] += a.get(&[i, p]).unwrap().to_f64() * b.get(&[p, j]).unwrap().to_f64();
            }
        }
    }
    c
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w}"
        );
    }
}

fn to_f64<E: Float>(t: &Tensor<E>) -> Vec<f64> {
    t.as_slice().iter().map(|v| v.to_f64()).collect()
}

fn check_matmul<E: Float>(tol: f64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for &(m, k, n) in &[
        (1, 1, 1),
        (3, 5, 2),
        (4, 2, 8),
        (8, 4, 1),
        (1, 8, 3),
        (8, 8, 8),
        (17, 9, 33),
        (64, 1, 7),
        (70, 130, 65),
    ] {
        let a = Tensor::<E>::randn(&[m, k], E::ZERO, E::ONE, &mut rng);
        let b = Tensor::<E>::randn(&[k, n], E::ZERO, E::ONE, &mut rng);
        let want = reference_matmul(&a, &b);
        assert_close(&to_f64(&a.matmul(&b).unwrap()), &want, tol);
        // Transposed operands through strides give the same product.
        let (at, bt) = (a.t(), b.t());
        let got = at.matmul_t(Transpose::Yes, &bt, Transpose::Yes).unwrap();
        assert_eq!(got.shape(), &[m, n]);
        assert_close(&to_f64(&got), &want, tol);
        let got = a.matmul_t(Transpose::No, &bt, Transpose::Yes).unwrap();
        assert_close(&to_f64(&got), &want, tol);
        // Accumulating into an existing buffer with beta = 1 doubles the product, whichever
        // operands are read transposed.
        let doubled: Vec<f64> = want.iter().map(|v| 2.0 * v).collect();
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut c = a.matmul(&b).unwrap();
            let (x, tx) = if ta {
                (&at, Transpose::Yes)
            } else {
                (&a, Transpose::No)
            };
            let (y, ty) = if tb {
                (&bt, Transpose::Yes)
            } else {
                (&b, Transpose::No)
            };
            gemm_into(x, tx, y, ty, E::ONE, E::ONE, &mut c).unwrap();
            assert_close(&to_f64(&c), &doubled, tol);
            // Other alpha and beta: 0.5 A B - 2 (A B) = -1.5 A B.
            let mut c = a.matmul(&b).unwrap();
            let (half, minus_two) = (E::from_f64(0.5), E::from_f64(-2.0));
            gemm_into(x, tx, y, ty, half, minus_two, &mut c).unwrap();
            let scaled: Vec<f64> = want.iter().map(|v| -1.5 * v).collect();
            assert_close(&to_f64(&c), &scaled, tol * 2.0);
        }
    }
    // No inner dimension: the product is zero, and accumulating scales by beta only.
    let (a, b) = (Tensor::<E>::zeros(&[3, 0]), Tensor::<E>::zeros(&[0, 5]));
    assert!(
        a.matmul(&b)
            .unwrap()
            .as_slice()
            .iter()
            .all(|&v| v == E::ZERO)
    );
    let mut c = Tensor::<E>::ones(&[3, 5]);
    gemm_into(
        &a,
        Transpose::No,
        &b,
        Transpose::No,
        E::ONE,
        E::from_f64(3.0),
        &mut c,
    )
    .unwrap();
    assert!(c.as_slice().iter().all(|&v| v == E::from_f64(3.0)));
}

#[test]
fn matmul_matches_reference_f32() {
    check_matmul::<f32>(1e-4, 1);
}

#[test]
fn matmul_matches_reference_f64() {
    check_matmul::<f64>(1e-12, 2);
}

#[test]
fn batched_matmul_matches_reference_with_broadcast_batch() {
    let mut rng = StdRng::seed_from_u64(3);
    let a = Tensor::<f64>::randn(&[4, 3, 5], 0.0, 1.0, &mut rng);
    let b = Tensor::<f64>::randn(&[4, 5, 2], 0.0, 1.0, &mut rng);
    let w = Tensor::<f64>::randn(&[5, 2], 0.0, 1.0, &mut rng);
    let w1 = w.reshape(&[1, 5, 2]).unwrap();
    let c = a.matmul(&b).unwrap();
    let cw = a.matmul(&w).unwrap();
    let cw1 = a.matmul(&w1).unwrap();
    assert_eq!(c.shape(), &[4, 3, 2]);
    assert_eq!(cw, cw1);
    for i in 0..4 {
        let ai = a.narrow(0, i, 1).unwrap().reshape(&[3, 5]).unwrap();
        let bi = b.narrow(0, i, 1).unwrap().reshape(&[5, 2]).unwrap();
        let ci = c.narrow(0, i, 1).unwrap();
        assert_close(&to_f64(&ci), &reference_matmul(&ai, &bi), 1e-12);
        let cwi = cw.narrow(0, i, 1).unwrap();
        assert_close(&to_f64(&cwi), &reference_matmul(&ai, &w), 1e-12);
    }
    let bad = Tensor::<f64>::zeros(&[3, 5, 2]);
    assert_eq!(
        a.matmul(&bad).unwrap_err().to_string(),
        "shape mismatch in matmul: lhs [4, 3, 5], rhs [3, 5, 2]"
    );
}

#[test]
fn matmul_errors_name_op_and_shapes() {
    let a = Tensor::<f32>::zeros(&[2, 3]);
    let b = Tensor::<f32>::zeros(&[4, 5]);
    assert_eq!(
        a.matmul(&b).unwrap_err().to_string(),
        "shape mismatch in matmul: lhs [2, 3], rhs [4, 5]"
    );
    // A vector is a column on the right; a scalar is refused.
    let v = Tensor::<f32>::zeros(&[3]);
    assert_eq!(a.matmul(&v).unwrap().shape(), &[2]);
    assert_eq!(
        a.matmul(&Tensor::zeros(&[2])).unwrap_err().to_string(),
        "shape mismatch in matmul: lhs [2, 3], rhs [2]"
    );
    assert_eq!(
        a.matmul(&Tensor::scalar(1.0)).unwrap_err().to_string(),
        "matmul expects operands of rank 1 or more, got shape []"
    );
    // Batch axes that do not broadcast.
    let (p, q) = (
        Tensor::<f32>::zeros(&[2, 3, 4, 5]),
        Tensor::<f32>::zeros(&[3, 3, 5, 1]),
    );
    assert_eq!(
        p.matmul(&q).unwrap_err().to_string(),
        "shape mismatch in matmul: lhs [2, 3, 4, 5], rhs [3, 3, 5, 1]"
    );
}

/// The product by definition, element by element, with torch.matmul's batch broadcasting.
fn reference_batched_matmul(a: &Tensor<f64>, b: &Tensor<f64>) -> Tensor<f64> {
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k, n) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
    let batch = tapegrad_tensor::broadcast_shape("ref", &a.shape()[..ra - 2], &b.shape()[..rb - 2])
        .unwrap();
    let mut shape = batch.to_vec();
    shape.extend([m, n]);
    let at = |t: &Tensor<f64>, bi: &[usize], i: usize, j: usize| {
        let r = t.rank();
        let pad = batch.len() - (r - 2);
        let mut idx: Vec<usize> = (0..r - 2)
            .map(|d| if t.shape()[d] == 1 { 0 } else { bi[pad + d] })
            .collect();
        idx.extend([i, j]);
        t.get(&idx).unwrap()
    };
    let strides = tapegrad_tensor::contiguous_strides(&shape);
    Tensor::from_fn(&shape, |flat| {
        let idx: Vec<usize> = strides
            .iter()
            .zip(&shape)
            .map(|(s, d)| flat / s % d)
            .collect();
        let (bi, i, j) = (&idx[..batch.len()], idx[batch.len()], idx[batch.len() + 1]);
        (0..k).map(|p| at(a, bi, i, p) * at(b, bi, p, j)).sum()
    })
}

#[test]
fn matmul_of_any_rank_matches_the_definition() {
    let mut rng = StdRng::seed_from_u64(5);
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4, 5], &[2, 3, 5, 6]),
        (&[2, 3, 4, 5], &[3, 5, 6]),
        (&[2, 1, 4, 5], &[1, 3, 5, 6]),
        // A shared weight: the batch folds into the rows of one product.
        (&[2, 3, 4, 5], &[5, 6]),
        (&[7, 4, 5], &[5, 6]),
        (&[4, 5], &[2, 3, 5, 6]),
        (&[1, 4, 5], &[3, 5, 2]),
        (&[64, 9, 40], &[40, 70]),
    ];
    for &(sa, sb) in cases {
        let a = Tensor::<f64>::randn(sa, 0.0, 1.0, &mut rng);
        let b = Tensor::<f64>::randn(sb, 0.0, 1.0, &mut rng);
        let got = a.matmul(&b).unwrap();
        let want = reference_batched_matmul(&a, &b);
        assert_eq!(got.shape(), want.shape(), "{sa:?} x {sb:?}");
        for (x, y) in got.as_slice().iter().zip(want.as_slice()) {
            assert!((x - y).abs() < 1e-10, "{sa:?} x {sb:?}: {x} vs {y}");
        }
    }
    // Vectors: row on the left, column on the right, a dot product of two.
    let v = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]).unwrap();
    let m = Tensor::<f64>::from_fn(&[2, 3, 2], |i| i as f64);
    assert_eq!(v.matmul(&v).unwrap().shape(), &[] as &[usize]);
    assert_eq!(v.matmul(&v).unwrap().item().unwrap(), 14.0);
    let vm = v.matmul(&m).unwrap();
    assert_eq!(vm.shape(), &[2, 2]);
    assert_eq!(vm.to_vec(), vec![16.0, 22.0, 52.0, 58.0]);
    let mv = m.t().matmul(&v).unwrap();
    assert_eq!(mv.shape(), &[2, 2]);
    assert_eq!(mv.to_vec(), vec![16.0, 22.0, 52.0, 58.0]);
}

#[test]
fn broadcasting_table() {
    let ok: &[(&[usize], &[usize], &[usize])] = &[
        (&[2, 3], &[2, 3], &[2, 3]),
        (&[2, 3], &[3], &[2, 3]),
        (&[2, 3], &[1, 3], &[2, 3]),
        (&[2, 1], &[1, 3], &[2, 3]),
        (&[4, 1, 5], &[3, 1], &[4, 3, 5]),
        (&[], &[2, 2], &[2, 2]),
        (&[0, 3], &[3], &[0, 3]),
        (&[1], &[0], &[0]),
    ];
    for &(a, b, want) in ok {
        let x = Tensor::<f64>::ones(a);
        let y = Tensor::<f64>::full(b, 2.0);
        let z = x.add(&y).unwrap();
        assert_eq!(z.shape(), want, "{a:?} + {b:?}");
        assert!(z.as_slice().iter().all(|&v| v == 3.0));
        // The gradient of broadcasting sums back to each operand's shape.
        let back = z.sum_to(b).unwrap();
        assert_eq!(back.shape(), b);
        let reps = if y.is_empty() { 0 } else { z.len() / y.len() };
        assert!(back.as_slice().iter().all(|&v| v == 3.0 * reps as f64));
    }
    let bad: &[(&[usize], &[usize], &str)] = &[
        (
            &[2, 3],
            &[2],
            "cannot broadcast in add: lhs [2, 3], rhs [2]",
        ),
        (
            &[2, 3],
            &[3, 2],
            "cannot broadcast in add: lhs [2, 3], rhs [3, 2]",
        ),
        (
            &[4, 2, 3],
            &[4, 3],
            "cannot broadcast in add: lhs [4, 2, 3], rhs [4, 3]",
        ),
    ];
    for &(a, b, msg) in bad {
        let err = Tensor::<f32>::ones(a).add(&Tensor::ones(b)).unwrap_err();
        assert_eq!(err.to_string(), msg);
    }
}

#[test]
fn broadcast_values_follow_numpy() {
    let col = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2, 1]).unwrap();
    let row = Tensor::<f32>::from_vec(vec![10.0, 20.0, 30.0], &[3]).unwrap();
    let z = col.mul(&row).unwrap();
    assert_eq!(z.to_vec(), vec![10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
    assert_eq!(
        row.sub(&col).unwrap().to_vec(),
        vec![9.0, 19.0, 29.0, 8.0, 18.0, 28.0]
    );
    assert_eq!(z.sum_to(&[2, 1]).unwrap().to_vec(), vec![60.0, 120.0]);
    assert_eq!(z.sum_to(&[1, 3]).unwrap().to_vec(), vec![30.0, 60.0, 90.0]);
    assert_eq!(
        z.sum_to(&[2]).unwrap_err().to_string(),
        "cannot broadcast in sum_to: lhs [2, 3], rhs [2]"
    );
    let bt = row.broadcast_to(&[2, 3]).unwrap();
    assert_eq!(bt.to_vec(), vec![10.0, 20.0, 30.0, 10.0, 20.0, 30.0]);
    // A column broadcast across columns takes the general walk, not the repeated-row copy.
    let col = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0], &[3, 1]).unwrap();
    let wide = col.broadcast_to(&[2, 3, 2]).unwrap();
    assert_eq!(wide.shape(), &[2, 3, 2]);
    assert_eq!(
        wide.to_vec(),
        vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    );
    assert!(matches!(
        row.broadcast_to(&[3, 2]),
        Err(TensorError::Broadcast { .. })
    ));
}

#[test]
fn stable_at_plus_minus_1000() {
    let x = Tensor::<f32>::from_vec(vec![-1000.0, -100.0, 0.0, 100.0, 1000.0], &[5]).unwrap();
    let s = x.sigmoid();
    assert!(s.all_finite());
    assert_eq!(s.get(&[0]).unwrap(), 0.0);
    assert!((0.0..1e-40).contains(&s.get(&[1]).unwrap()));
    assert_eq!(s.to_vec()[2..], [0.5, 1.0, 1.0]);
    let sp = x.softplus();
    assert!(sp.all_finite());
    assert_eq!(sp.get(&[4]).unwrap(), 1000.0);
    assert_eq!(sp.get(&[0]).unwrap(), 0.0);
    assert!((sp.get(&[2]).unwrap() - std::f32::consts::LN_2).abs() < 1e-6);
    let logits =
        Tensor::<f32>::from_vec(vec![1000.0, -1000.0, 0.0, 1000.0, 1000.0, 999.0], &[2, 3])
            .unwrap();
    let sm = logits.softmax(1).unwrap();
    let lsm = logits.log_softmax(1).unwrap();
    assert!(sm.all_finite() && lsm.all_finite());
    assert_eq!(sm.get(&[0, 0]).unwrap(), 1.0);
    assert_eq!(lsm.get(&[0, 1]).unwrap(), -2000.0);
    let row_sums = sm.sum_axis(1, false).unwrap();
    for v in row_sums.to_vec() {
        assert!((v - 1.0).abs() < 1e-6);
    }
    assert!((lsm.get(&[1, 2]).unwrap() - (-1.0 - (2.0 + (-1.0f32).exp()).ln())).abs() < 1e-5);
}

#[test]
fn reductions_along_axes() {
    let t = Tensor::<f64>::from_vec((0..24).map(f64::from).collect(), &[2, 3, 4]).unwrap();
    assert_eq!(t.sum().item().unwrap(), 276.0);
    assert_eq!(t.mean().item().unwrap(), 11.5);
    let s1 = t.sum_axis(1, false).unwrap();
    assert_eq!(s1.shape(), &[2, 4]);
    assert_eq!(
        s1.to_vec(),
        vec![12.0, 15.0, 18.0, 21.0, 48.0, 51.0, 54.0, 57.0]
    );
    assert_eq!(t.sum_axis(1, true).unwrap().shape(), &[2, 1, 4]);
    assert_eq!(
        t.mean_axis(2, false).unwrap().to_vec(),
        vec![1.5, 5.5, 9.5, 13.5, 17.5, 21.5]
    );
    assert_eq!(
        t.max_axis(0, false).unwrap().to_vec(),
        (12..24).map(f64::from).collect::<Vec<_>>()
    );
    let m = Tensor::<f64>::from_vec(vec![1.0, 5.0, 5.0, 7.0, 0.0, -1.0], &[2, 3]).unwrap();
    assert_eq!(m.argmax_axis(1, false).unwrap().to_vec(), vec![1.0, 0.0]);
    assert_eq!(m.argmax_axis(1, true).unwrap().shape(), &[2, 1]);
    assert_eq!(m.argmax_indices(0).unwrap(), vec![1, 0, 0]);
    assert_eq!(
        m.sum_axis(2, false).unwrap_err().to_string(),
        "axis 2 out of range in sum_axis for shape [2, 3]"
    );
}

#[test]
fn shape_ops() {
    let t = Tensor::<f32>::from_vec((0..6).map(|v| v as f32).collect(), &[2, 3]).unwrap();
    assert_eq!(t.t().to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(t.t().shape(), &[3, 2]);
    assert_eq!(t.reshape(&[3, 2]).unwrap().shape(), &[3, 2]);
    assert_eq!(
        t.reshape(&[4]).unwrap_err().to_string(),
        "data length 6 does not match shape [4] (4 elements) in reshape"
    );
    let c = Tensor::concat(&[&t, &t.narrow(1, 1, 2).unwrap()], 1).unwrap();
    assert_eq!(c.shape(), &[2, 5]);
    assert_eq!(
        c.to_vec(),
        vec![0.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 5.0]
    );
    let r = Tensor::concat(&[&t, &t], 0).unwrap();
    assert_eq!(r.shape(), &[4, 3]);
    assert_eq!(
        Tensor::concat(&[&t, &t.t()], 0).unwrap_err().to_string(),
        "shape mismatch in concat: lhs [2, 3], rhs [3, 2]"
    );
    assert_eq!(
        t.narrow(1, 2, 2).unwrap_err().to_string(),
        "index [2, 4] out of range in narrow for shape [2, 3]"
    );
    assert_eq!(
        t.select_rows(&[1, 1, 0]).unwrap().to_vec(),
        vec![3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 0.0, 1.0, 2.0]
    );
    assert!(t.select_rows(&[2]).is_err());
    assert_eq!(t.gather(&[2, 0]).unwrap().to_vec(), vec![2.0, 3.0]);
    assert_eq!(
        t.gather(&[3, 0]).unwrap_err().to_string(),
        "index [0, 3] out of range in gather for shape [2, 3]"
    );
    assert_eq!(
        Tensor::<f32>::concat(&[], 0).unwrap_err().to_string(),
        "invalid argument in concat: no tensors to concatenate"
    );
    assert_eq!(
        Tensor::<f32>::zeros(&[2, 0])
            .argmax_indices(1)
            .unwrap_err()
            .to_string(),
        "invalid argument in argmax_axis: axis 1 of shape [2, 0] is empty"
    );
    let oh = Tensor::<f32>::one_hot(&[2, 0], 3).unwrap();
    assert_eq!(oh.to_vec(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    assert!(Tensor::<f32>::one_hot(&[3], 3).is_err());
}

#[test]
fn zero_size_and_rank_zero() {
    let e = Tensor::<f32>::zeros(&[0, 3]);
    assert!(e.is_empty());
    assert_eq!(e.sum().item().unwrap(), 0.0);
    assert_eq!(e.sum_axis(0, false).unwrap().to_vec(), vec![0.0; 3]);
    let w = Tensor::<f32>::ones(&[3, 4]);
    assert_eq!(e.matmul(&w).unwrap().shape(), &[0, 4]);
    let k0 = Tensor::<f32>::zeros(&[2, 0])
        .matmul(&Tensor::zeros(&[0, 2]))
        .unwrap();
    assert_eq!(k0.to_vec(), vec![0.0; 4]);
    let s = Tensor::<f64>::scalar(3.0);
    assert_eq!(s.rank(), 0);
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(s.item().unwrap(), 3.0);
    assert_eq!((&s * 2.0).item().unwrap(), 6.0);
    assert_eq!(s.get(&[]).unwrap(), 3.0);
    assert_eq!(
        Tensor::<f64>::ones(&[2]).item().unwrap_err().to_string(),
        "item needs exactly one element, got shape [2]"
    );
    assert_eq!(
        Tensor::<f64>::from_vec(vec![1.0; 5], &[2, 3])
            .unwrap_err()
            .to_string(),
        "data length 5 does not match shape [2, 3] (6 elements) in from_vec"
    );
}

#[test]
fn display_is_readable_and_truncated() {
    let t = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    assert_eq!(
        t.to_string(),
        "Tensor[2, 2] f32 [[1.0000, 2.0000],\n [3.0000, 4.0000]]"
    );
    assert_eq!(
        Tensor::<f64>::scalar(0.5).to_string(),
        "Tensor[] f64 0.5000"
    );
    let big = Tensor::<f32>::from_vec((0..100).map(|v| v as f32).collect(), &[100]).unwrap();
    assert_eq!(
        big.to_string(),
        "Tensor[100] f32 [0.0000, 1.0000, 2.0000, ..., 97.0000, 98.0000, 99.0000]"
    );
    assert_eq!(
        format!("{:.1}", Tensor::<f32>::ones(&[2])),
        "Tensor[2] f32 [1.0, 1.0]"
    );
}

#[test]
fn seeded_randomness_is_reproducible() {
    let a = Tensor::<f32>::randn(&[5, 5], 0.0, 1.0, &mut StdRng::seed_from_u64(42));
    let b = Tensor::<f32>::randn(&[5, 5], 0.0, 1.0, &mut StdRng::seed_from_u64(42));
    let c = Tensor::<f32>::randn(&[5, 5], 0.0, 1.0, &mut StdRng::seed_from_u64(43));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let u = Tensor::<f64>::rand_uniform(&[1000], -2.0, 3.0, &mut StdRng::seed_from_u64(1));
    assert!(u.as_slice().iter().all(|&v| (-2.0..3.0).contains(&v)));
    assert!((u.mean().item().unwrap() - 0.5).abs() < 0.15);
    let n = Tensor::<f64>::randn(&[20000], 1.0, 2.0, &mut StdRng::seed_from_u64(1));
    let mean = n.mean().item().unwrap();
    let var = n.add_scalar(-mean).square().mean().item().unwrap();
    assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
    assert!((var.sqrt() - 2.0).abs() < 0.05, "std {}", var.sqrt());
}

#[test]
fn elementwise_values_and_masks() {
    let x = Tensor::<f64>::from_vec(vec![-2.0, 0.5, 4.0], &[3]).unwrap();
    assert_eq!(x.relu().to_vec(), vec![0.0, 0.5, 4.0]);
    assert_eq!(x.abs().to_vec(), vec![2.0, 0.5, 4.0]);
    assert_eq!(x.square().to_vec(), vec![4.0, 0.25, 16.0]);
    assert_eq!(x.recip().to_vec(), vec![-0.5, 2.0, 0.25]);
    assert_eq!(x.powf(3.0).to_vec(), vec![-8.0, 0.125, 64.0]);
    assert_eq!(
        x.gt(&Tensor::scalar(0.0)).unwrap().to_vec(),
        vec![0.0, 1.0, 1.0]
    );
    assert_eq!(
        x.le(&Tensor::scalar(0.5)).unwrap().to_vec(),
        vec![1.0, 1.0, 0.0]
    );
    assert_eq!(
        x.maximum(&Tensor::scalar(1.0)).unwrap().to_vec(),
        vec![1.0, 1.0, 4.0]
    );
    assert_eq!(
        x.minimum(&Tensor::scalar(1.0)).unwrap().to_vec(),
        vec![-2.0, 0.5, 1.0]
    );
    assert_eq!((2.0 - &x).to_vec(), vec![4.0, 1.5, -2.0]);
    assert_eq!((&x / &x).to_vec(), vec![1.0; 3]);
    assert!((x.tanh().get(&[1]).unwrap() - 0.5f64.tanh()).abs() < 1e-15);
    assert_eq!(x.exp().ln().to_vec(), vec![-2.0, 0.5, 4.0]);
}

#[test]
#[should_panic(expected = "cannot broadcast in add: lhs [2], rhs [3]")]
fn operators_panic_with_the_error_message() {
    let _ = &Tensor::<f32>::ones(&[2]) + &Tensor::ones(&[3]);
}

#[test]
fn threaded_products_equal_single_threaded_ones_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(11);
    // Rows split (m >= n) and columns split (m < n), both above the threading threshold, and
    // transposed operands read through strides; then thin products, which split for their
    // packing (a 10-class output layer, its weight gradient's shape, a batch of four).
    for &(m, k, n) in &[
        (600, 300, 100),
        (50, 800, 500),
        (512, 256, 10),
        (256, 512, 10),
        (4, 784, 256),
    ] {
        let a = Tensor::<f32>::randn(&[m, k], 0.0, 1.0, &mut rng);
        let b = Tensor::<f32>::randn(&[k, n], 0.0, 1.0, &mut rng);
        tapegrad_tensor::set_num_threads(1);
        let one = a.matmul(&b).unwrap();
        let one_t = a.t().matmul_t(Transpose::Yes, &b, Transpose::No).unwrap();
        tapegrad_tensor::set_num_threads(2);
        let two = a.matmul(&b).unwrap();
        let two_t = a.t().matmul_t(Transpose::Yes, &b, Transpose::No).unwrap();
        assert_eq!(one, two);
        assert_eq!(one_t, two_t);
        assert_close(&to_f64(&two), &reference_matmul(&a, &b), 1e-4);
    }
    // Without the `threads` feature everything runs on one thread, whatever is set.
    let expected = if cfg!(feature = "threads") { 2 } else { 1 };
    assert_eq!(tapegrad_tensor::num_threads(), expected);
}

#[test]
fn expensive_maps_split_over_threads_give_the_same_values() {
    use tapegrad_tensor::Float;
    let mut rng = StdRng::seed_from_u64(11);
    // 200,003 elements: above the split threshold, and not a multiple of the thread count.
    let x = Tensor::<f32>::randn(&[200_003], 0.0, 2.0, &mut rng);
    let pos = x.abs().add_scalar(0.5);
    type Op = (
        &'static str,
        fn(&Tensor<f32>) -> Tensor<f32>,
        fn(f32) -> f32,
    );
    let ops: [Op; 5] = [
        ("sigmoid", Tensor::sigmoid, Float::sigmoid),
        ("exp", Tensor::exp, Float::exp),
        ("tanh", Tensor::tanh, Float::tanh),
        ("softplus", Tensor::softplus, Float::softplus),
        ("ln", Tensor::ln, Float::ln),
    ];
    for (name, op, one) in ops {
        let input = if name == "ln" { &pos } else { &x };
        tapegrad_tensor::set_num_threads(2);
        let two = op(input);
        tapegrad_tensor::set_num_threads(1);
        let single = op(input);
        assert_eq!(two, single, "{name}");
        let want: Vec<f32> = input.as_slice().iter().map(|&v| one(v)).collect();
        assert_eq!(two.to_vec(), want, "{name}");
        assert_eq!(two.shape(), input.shape());
    }
    tapegrad_tensor::set_num_threads(2);
    assert_eq!(
        pos.powf(1.5),
        Tensor::from_vec(
            pos.as_slice().iter().map(|v| v.powf(1.5)).collect(),
            &[200_003]
        )
        .unwrap()
    );
}

#[test]
fn sums_of_every_length_are_exact_on_integers() {
    // Eight partial sums and a tail: every length up to 40 and a long one, against the formula.
    for n in (0..=40).chain([1001, 4099]) {
        let t = Tensor::<f32>::from_fn(&[n], |i| (i + 1) as f32);
        let want = (n * (n + 1) / 2) as f32;
        assert_eq!(t.sum().item().unwrap(), want, "n = {n}");
        assert_eq!(t.sum_to(&[]).unwrap().item().unwrap(), want, "n = {n}");
        if n > 0 {
            assert_eq!(t.mean().item().unwrap(), want / n as f32, "n = {n}");
        }
    }
}

#[test]
fn linear_with_empty_and_tiny_shapes() {
    // Zero rows, zero outputs and a zero inner size, each against matmul + bias.
    for (n, k, m) in [
        (0, 3, 2),
        (3, 0, 2),
        (3, 2, 0),
        (1 << 40, 0, 0),
        (2, 2, 2),
        (1, 3, 4),
    ] {
        let x = Tensor::<f64>::from_fn(&[n.min(8), k], |i| i as f64 + 1.0);
        let x = if n > 8 { Tensor::zeros(&[n, k]) } else { x };
        let w = Tensor::from_fn(&[k, m], |i| 0.5 * i as f64 - 1.0);
        let b = Tensor::from_fn(&[m], |i| 10.0 * i as f64);
        let y = x.linear(&w, &b).unwrap();
        assert_eq!(y.shape(), &[n, m]);
        if n <= 8 {
            let expected = x.matmul(&w).unwrap().add(&b).unwrap();
            assert_eq!(y, expected, "{n} x {k} x {m}");
        }
    }
}

#[test]
fn tiny_layers_equal_the_bias_rows_plus_gemm_into_bit_for_bit() {
    // `linear` takes tiny layers straight to the product's loops; `gemm_into` reaches the same
    // loops through its views. Every loop shape: one output, one input, one row, and a batch.
    let mut rng = StdRng::seed_from_u64(5);
    for (n, k, m) in [
        (4, 2, 8),
        (4, 8, 1),
        (1, 8, 8),
        (8, 1, 8),
        (3, 5, 7),
        (16, 4, 8),
    ] {
        let x = Tensor::<f32>::randn(&[n, k], 0.0, 1.0, &mut rng);
        let w = Tensor::<f32>::randn(&[k, m], 0.0, 1.0, &mut rng);
        let b = Tensor::<f32>::randn(&[m], 0.0, 1.0, &mut rng);
        let mut expected = Tensor::from_fn(&[n, m], |i| b.as_slice()[i % m]);
        gemm_into(
            &x,
            Transpose::No,
            &w,
            Transpose::No,
            1.0,
            1.0,
            &mut expected,
        )
        .unwrap();
        let y = x.linear(&w, &b).unwrap();
        let bits = |t: &Tensor<f32>| t.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&expected), "{n} x {k} x {m}");
        // A batch of rows: the same numbers as the rows one matrix.
        let seq = x.reshape(&[1, n, k]).unwrap().linear(&w, &b).unwrap();
        assert_eq!(bits(&seq), bits(&expected), "[1, {n}, {k}] x [{k}, {m}]");
    }
}

#[test]
fn layout_ops_against_element_access() {
    let x = Tensor::<f64>::from_fn(&[2, 3, 4], |i| i as f64);
    // permute: y[i, j, k] = x[index rearranged].
    let y = x.permute(&[1, 2, 0]).unwrap();
    assert_eq!(y.shape(), &[3, 4, 2]);
    for i in 0..3 {
        for j in 0..4 {
            for k in 0..2 {
                assert_eq!(y.get(&[i, j, k]).unwrap(), x.get(&[k, i, j]).unwrap());
            }
        }
    }
    assert_eq!(x.permute(&[0, 1, 2]).unwrap(), x);
    for bad in [&[0, 1][..], &[0, 1, 1], &[0, 1, 3], &[0, 1, 2, 3]] {
        assert!(x.permute(bad).is_err(), "{bad:?}");
    }
    assert_eq!(x.transpose(1, 2).unwrap(), x.t());
    assert!(x.transpose(0, 3).is_err());
    // pad then crop is the identity; the border holds the value.
    let pads = [(1, 0), (2, 1), (0, 3)];
    let p = x.pad(&pads, -1.0).unwrap();
    assert_eq!(p.shape(), &[3, 6, 7]);
    assert_eq!(p.get(&[0, 0, 0]).unwrap(), -1.0);
    assert_eq!(p.get(&[1, 2, 0]).unwrap(), 0.0);
    assert_eq!(p.get(&[2, 4, 3]).unwrap(), x.get(&[1, 2, 3]).unwrap());
    assert_eq!(p.crop(&pads).unwrap(), x);
    assert!(x.pad(&[(0, 0)], 0.0).is_err());
    assert!(x.crop(&[(2, 1), (0, 0), (0, 0)]).is_err());
    assert_eq!(
        x.crop(&[(1, 1), (0, 0), (0, 0)]).unwrap().shape(),
        &[0, 3, 4]
    );
    // index_select along each axis matches gathering by hand; index_add is its adjoint.
    let idx = [2, 0, 2];
    let s = x.index_select(1, &idx).unwrap();
    assert_eq!(s.shape(), &[2, 3, 4]);
    assert_eq!(s.get(&[1, 0, 3]).unwrap(), x.get(&[1, 2, 3]).unwrap());
    assert_eq!(
        x.index_select(0, &[1, 0]).unwrap(),
        x.select_rows(&[1, 0]).unwrap()
    );
    assert!(x.index_select(1, &[3]).is_err());
    let mut acc = Tensor::<f64>::zeros(&[2, 3, 4]);
    acc.index_add(1, &idx, &Tensor::ones(&[2, 3, 4])).unwrap();
    assert_eq!(acc.get(&[0, 2, 0]).unwrap(), 2.0);
    assert_eq!(acc.get(&[0, 1, 0]).unwrap(), 0.0);
    // squeeze, unsqueeze, flatten, stack.
    assert_eq!(x.unsqueeze(3).unwrap().shape(), &[2, 3, 4, 1]);
    assert!(x.squeeze(0).is_err());
    assert_eq!(x.flatten(0, 2).unwrap().shape(), &[24]);
    let st = Tensor::stack(&[&x, &x], 3).unwrap();
    assert_eq!(st.shape(), &[2, 3, 4, 2]);
    assert_eq!(st.get(&[1, 2, 3, 1]).unwrap(), 23.0);
    assert!(Tensor::stack(&[&x, &x.t()], 0).is_err());
    assert!(Tensor::stack(&[&x, &x], 4).is_err());
    let s0 = Tensor::stack(&[&Tensor::scalar(1.0), &Tensor::scalar(2.0)], 0).unwrap();
    assert_eq!((s0.shape(), s0.to_vec()), (&[2][..], vec![1.0, 2.0]));
    assert_eq!(
        Tensor::stack(&[&x, &x], 0)
            .unwrap()
            .get(&[1, 1, 2, 3])
            .unwrap(),
        23.0
    );
    // Tiny results (inline storage) take their own path.
    let tiny = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 2, 2]).unwrap();
    assert_eq!(
        tiny.permute(&[2, 0, 1]).unwrap().to_vec(),
        vec![1.0, 3.0, 2.0, 4.0]
    );
    assert_eq!(
        tiny.crop(&[(0, 0), (1, 0), (0, 1)]).unwrap().to_vec(),
        vec![3.0]
    );
    // Reductions along the last axis (contiguous rows) and others agree with sums by hand.
    let r = x.sum_axis(2, false).unwrap();
    assert_eq!(r.get(&[1, 2]).unwrap(), (20..24).sum::<usize>() as f64);
    assert_eq!(x.max_axis(2, true).unwrap().get(&[0, 1, 0]).unwrap(), 7.0);
    assert_eq!(
        Tensor::<f64>::zeros(&[2, 0])
            .sum_axis(1, false)
            .unwrap()
            .to_vec(),
        vec![0.0, 0.0]
    );
    // Empty and zero-size tensors.
    let e = Tensor::<f64>::zeros(&[0, 3]);
    assert_eq!(e.permute(&[1, 0]).unwrap().shape(), &[3, 0]);
    assert_eq!(
        e.pad(&[(1, 1), (0, 0)], 2.0).unwrap().to_vec(),
        vec![2.0; 6]
    );
}

#[test]
fn an_empty_batch_broadcasts_to_an_empty_product() {
    // A batch of 0 against a rank-2 operand (batch 1) is an empty batch, not a batch of 1.
    let a = Tensor::<f64>::ones(&[0, 1, 2]);
    let b = Tensor::<f64>::ones(&[2, 3]);
    assert_eq!(a.matmul(&b).unwrap().shape(), &[0, 1, 3]);
    assert_eq!(b.t().matmul(&a.t()).unwrap().shape(), &[0, 3, 1]);
    let one = Tensor::<f64>::ones(&[1, 2, 2]);
    assert_eq!(
        one.matmul(&Tensor::ones(&[0, 2, 2])).unwrap().shape(),
        &[0, 2, 2]
    );
}

#[test]
fn conv2d_matches_the_definition() {
    let mut rng = StdRng::seed_from_u64(8);
    let x = Tensor::<f64>::randn(&[2, 3, 6, 5], 0.0, 1.0, &mut rng);
    let w = Tensor::<f64>::randn(&[4, 3, 3, 2], 0.0, 1.0, &mut rng);
    let b = Tensor::<f64>::randn(&[4], 0.0, 1.0, &mut rng);
    for (stride, pad) in [((1, 1), (0, 0)), ((2, 1), (1, 2)), ((3, 2), (1, 0))] {
        let y = x.conv2d(&w, Some(&b), stride, pad).unwrap();
        let (ho, wo) = (
            (6 + 2 * pad.0 - 3) / stride.0 + 1,
            (5 + 2 * pad.1 - 2) / stride.1 + 1,
        );
        assert_eq!(y.shape(), &[2, 4, ho, wo]);
        for n in 0..2 {
            for o in 0..4 {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut acc = b.get(&[o]).unwrap();
                        for c in 0..3 {
                            for i in 0..3 {
                                for j in 0..2 {
                                    let (yy, xx) = (oy * stride.0 + i, ox * stride.1 + j);
                                    if yy < pad.0
                                        || xx < pad.1
                                        || yy - pad.0 >= 6
                                        || xx - pad.1 >= 5
                                    {
                                        continue;
                                    }
                                    acc += x.get(&[n, c, yy - pad.0, xx - pad.1]).unwrap()
                                        * w.get(&[o, c, i, j]).unwrap();
                                }
                            }
                        }
                        let got = y.get(&[n, o, oy, ox]).unwrap();
                        assert!((got - acc).abs() < 1e-12, "{got} vs {acc}");
                    }
                }
            }
        }
    }
    // Errors name what does not fit.
    assert!(
        x.conv2d(&Tensor::ones(&[4, 2, 3, 3]), None, (1, 1), (0, 0))
            .is_err()
    );
    assert!(x.conv2d(&w, None, (0, 1), (0, 0)).is_err());
    assert!(
        x.conv2d(&Tensor::ones(&[4, 3, 9, 2]), None, (1, 1), (0, 0))
            .is_err()
    );
    assert!(x.max_pool2d((7, 1), (1, 1)).is_err());
    // Pooling against the definition on a small input.
    let p = Tensor::<f64>::from_fn(&[1, 1, 2, 4], |i| i as f64);
    assert_eq!(
        p.max_pool2d((2, 2), (2, 2)).unwrap().to_vec(),
        vec![5.0, 7.0]
    );
    assert_eq!(
        p.avg_pool2d((1, 2), (1, 2)).unwrap().to_vec(),
        vec![0.5, 2.5, 4.5, 6.5]
    );
}

/// Max pooling keeps each window's first maximum in scanning order (kernel row, then column),
/// as a plain `>` scan does: against that scan on inputs full of ties, with overlapping and
/// gapped windows, and a NaN, which wins only where it starts a window (`>` is false against
/// it and for it).
#[test]
fn max_pool2d_picks_the_first_maximum_of_each_window() {
    let mut rng = StdRng::seed_from_u64(31);
    let cases = [
        ((2, 2), (2, 2)),
        ((3, 2), (1, 2)),
        ((2, 3), (2, 1)),
        ((1, 1), (3, 3)),
    ];
    let mut x = Tensor::<f64>::randn(&[2, 3, 7, 8], 0.0, 1.0, &mut rng).map(|v| v.round());
    x.as_mut_slice()[5] = f64::NAN; // plane 0, row 0, column 5
    for ((kh, kw), (sh, sw)) in cases {
        let (y, at) = x.max_pool2d_with_indices((kh, kw), (sh, sw)).unwrap();
        let (ho, wo) = ((7 - kh) / sh + 1, (8 - kw) / sw + 1);
        assert_eq!(y.shape(), &[2, 3, ho, wo]);
        let src = x.as_slice();
        let mut k = 0;
        for plane in 0..6 {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut best = plane * 56 + oy * sh * 8 + ox * sw;
                    for i in 0..kh {
                        for j in 0..kw {
                            let e = plane * 56 + (oy * sh + i) * 8 + ox * sw + j;
                            if src[e] > src[best] {
                                best = e;
                            }
                        }
                    }
                    assert_eq!(at[k], best, "{:?} window {k}", (kh, kw, sh, sw));
                    assert_eq!(y.as_slice()[k].to_bits(), src[best].to_bits());
                    k += 1;
                }
            }
        }
    }
    // The NaN starts the window at column 5 of a 1 x 2 pool with stride 1, and wins only there.
    let (y, _) = x.max_pool2d_with_indices((1, 2), (1, 1)).unwrap();
    assert!(y.as_slice()[5].is_nan() && !y.as_slice()[4].is_nan());
}

/// `im2col` writes each column from the input or the padding's zeros, and `col2im` sums the
/// columns back into the pixels: against the element-by-element definition (the sum in the
/// same order, so the same bits) for windows partly and wholly in the padding, strides larger
/// than the kernel, a one-pixel-wide image, and both element types.
#[test]
fn im2col_and_col2im_match_the_definition() {
    fn check<E: Float + std::fmt::Debug>(seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let cases = [
            ([2, 3, 6, 5], (3, 2), (1, 1), (0, 0)),
            ([1, 2, 5, 7], (3, 3), (2, 3), (1, 2)),
            ([2, 1, 4, 4], (2, 2), (1, 2), (3, 3)),
            ([1, 2, 3, 1], (3, 3), (1, 1), (1, 1)),
            ([1, 1, 2, 2], (1, 1), (3, 3), (2, 0)),
        ];
        for (shape, (kh, kw), (sh, sw), (ph, pw)) in cases {
            let x = Tensor::<E>::randn(&shape, E::ZERO, E::ONE, &mut rng);
            let cols = x.im2col((kh, kw), (sh, sw), (ph, pw)).unwrap();
            let [n, c, h, w] = shape;
            let (ho, wo) = ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1);
            assert_eq!(cols.shape(), &[n, c * kh * kw, ho * wo]);
            // The input pixel under window (oy, ox) at offset (i, j), if not in the padding.
            let pixel = |oy: usize, ox: usize, i: usize, j: usize| {
                let (y, x) = (
                    (oy * sh + i).checked_sub(ph)?,
                    (ox * sw + j).checked_sub(pw)?,
                );
                (y < h && x < w).then_some((y, x))
            };
            let g = Tensor::<E>::randn(cols.shape(), E::ZERO, E::ONE, &mut rng);
            let mut sums = vec![E::ZERO; n * c * h * w];
            for b in 0..n {
                for ch in 0..c {
                    for i in 0..kh {
                        for j in 0..kw {
                            let row = (ch * kh + i) * kw + j;
                            for oy in 0..ho {
                                for ox in 0..wo {
                                    let at = [b, row, oy * wo + ox];
                                    let want = match pixel(oy, ox, i, j) {
                                        Some((y, xx)) => x.get(&[b, ch, y, xx]).unwrap(),
                                        None => E::ZERO,
                                    };
                                    assert_eq!(cols.get(&at).unwrap(), want, "{shape:?} {at:?}");
                                    if let Some((y, xx)) = pixel(oy, ox, i, j) {
                                        sums[((b * c + ch) * h + y) * w + xx] +=
                                            g.get(&at).unwrap();
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let back = g.col2im(&shape, (kh, kw), (sh, sw), (ph, pw)).unwrap();
            assert_eq!(back.to_vec(), sums, "{shape:?}");
        }
        // Empty batches and images give empty columns.
        let empty = Tensor::<E>::zeros(&[0, 2, 3, 3]).im2col((2, 2), (1, 1), (0, 0));
        assert_eq!(empty.unwrap().shape(), &[0, 8, 4]);
    }
    check::<f32>(21);
    check::<f64>(22);
}

/// The backward goes image by image (each image's input gradient summed into its pixels while
/// in cache, one image's columns at a time): against the whole-batch composition it replaced
/// (all images' column gradients, then one `col2im`; the weight gradient summed over images in
/// order), bit for bit for the input's gradient, and each gradient the same whether or not the
/// others are asked for.
#[test]
fn conv2d_backward_image_by_image_equals_the_whole_batch_composition() {
    let mut rng = StdRng::seed_from_u64(9);
    for (n, stride, pad) in [
        (3, (1, 1), (1, 1)),
        (2, (2, 1), (1, 2)),
        (1, (3, 2), (0, 0)),
    ] {
        let x = Tensor::<f64>::randn(&[n, 3, 7, 6], 0.0, 1.0, &mut rng);
        let w = Tensor::<f64>::randn(&[4, 3, 3, 2], 0.0, 1.0, &mut rng);
        let (y, cols) = x.conv2d_with_columns(&w, None, stride, pad).unwrap();
        let g = Tensor::<f64>::randn(y.shape(), 0.0, 1.0, &mut rng);
        let (o, ckk, l) = (4, 3 * 3 * 2, y.shape()[2] * y.shape()[3]);
        let w2 = w.reshape(&[o, ckk]).unwrap();
        let image = |t: &Tensor<f64>, i: usize, rows: usize| {
            Tensor::from_slice(&t.as_slice()[i * rows * l..(i + 1) * rows * l], &[rows, l]).unwrap()
        };
        let mut dcols = Vec::new();
        let mut dw = Tensor::<f64>::zeros(&[o, ckk]);
        for i in 0..n {
            let gi = image(&g, i, o);
            dcols.extend(
                w2.matmul_t(Transpose::Yes, &gi, Transpose::No)
                    .unwrap()
                    .to_vec(),
            );
            let term = gi.matmul_t(Transpose::No, &image(&cols, i, ckk), Transpose::Yes);
            dw = dw.add(&term.unwrap()).unwrap();
        }
        let dx_ref = Tensor::from_vec(dcols, &[n, ckk, l])
            .unwrap()
            .col2im(x.shape(), (3, 2), stride, pad)
            .unwrap();
        let geometry = (stride, pad);
        let all = g.conv2d_backward(x.shape(), &cols, &w, geometry, (true, true, true));
        let (dx, dw_got, db) = all.unwrap();
        assert_eq!(dx.as_ref().unwrap().to_vec(), dx_ref.to_vec());
        for (a, b) in dw_got
            .as_ref()
            .unwrap()
            .as_slice()
            .iter()
            .zip(dw.as_slice())
        {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert_eq!(dw_got.as_ref().unwrap().shape(), w.shape());
        let db_ref = g.sum_axis(3, false).unwrap().sum_axis(2, false).unwrap();
        let db_ref = db_ref.sum_axis(0, false).unwrap();
        for (a, b) in db.unwrap().as_slice().iter().zip(db_ref.as_slice()) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
        let only_x = g.conv2d_backward(x.shape(), &cols, &w, geometry, (true, false, false));
        let (dx_alone, none_w, none_b) = only_x.unwrap();
        assert_eq!(dx_alone.unwrap().to_vec(), dx.unwrap().to_vec());
        assert!(none_w.is_none() && none_b.is_none());
        let only_w = g.conv2d_backward(x.shape(), &cols, &w, geometry, (false, true, false));
        let (none_x, dw_alone, _) = only_w.unwrap();
        assert!(none_x.is_none());
        assert_eq!(dw_alone.unwrap().to_vec(), dw_got.unwrap().to_vec());
    }
    // An empty batch: zero-size gradients of the right shapes.
    let x = Tensor::<f64>::zeros(&[0, 3, 7, 6]);
    let w = Tensor::<f64>::ones(&[4, 3, 3, 2]);
    let (y, cols) = x.conv2d_with_columns(&w, None, (1, 1), (1, 1)).unwrap();
    let (dx, dw, _) = y
        .conv2d_backward(x.shape(), &cols, &w, ((1, 1), (1, 1)), (true, true, false))
        .unwrap();
    assert_eq!(dx.unwrap().shape(), &[0, 3, 7, 6]);
    assert_eq!(dw.unwrap().to_vec(), vec![0.0; 4 * 18]);
}

/// Tiny and matrix-vector products whose output lines are contiguous go through per-line loops:
/// short lines (under 64 elements) summed eight at a time in registers, longer ones (and short
/// ones with many terms) a term at a time. Either way each element must be `beta c` (or `c`
/// itself when beta = 1, or the first term when beta = 0), then `(alpha a) b` added term by
/// term in order: here against those plain loops, bit for bit, for every line length up to 20,
/// around 64, with no terms, a few, and many.
/// One element of C by the plain loop: `beta c` (`c` itself when beta = 1, the first term when
/// beta = 0), then `term(p)` added in order of p.
fn plain(c: f32, beta: f32, k: usize, term: impl Fn(usize) -> f32) -> f32 {
    let (mut acc, first) = match (beta, k) {
        (0.0, 0) => (0.0, 0),
        (0.0, _) => (term(0), 1),
        (1.0, _) => (c, 0),
        _ => (c * beta, 0),
    };
    for p in first..k {
        acc += term(p);
    }
    acc
}

#[test]
fn product_lines_of_every_length_equal_plain_loops_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(21);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut checked = 0;
    for len in (1..=20).chain([63, 64, 65, 100]) {
        // Up to 4 terms, and many: sources of more than 4096 elements (k len) are read a term at
        // a time even for short lines.
        for k in (0..=4).chain([100, 300]) {
            for (alpha, beta) in [(1.0f32, 0.0f32), (2.0, 1.0), (1.0, 0.5), (0.5, -1.5)] {
                // Rows of C from rows of B: [rows, k] x [k, len], for one row and for a few.
                for rows in [1usize, 3] {
                    if len == 1 || (rows > 1 && rows * k * len > 512) {
                        // One column: dot products, summed in another order. Not tiny:
                        // matrixmultiply's order.
                        continue;
                    }
                    let a = Tensor::<f32>::randn(&[rows, k], 0.0, 1.0, &mut rng);
                    let b = Tensor::<f32>::randn(&[k, len], 0.0, 1.0, &mut rng);
                    let mut c = Tensor::<f32>::randn(&[rows, len], 0.0, 1.0, &mut rng);
                    let c0 = c.to_vec();
                    gemm_into(&a, Transpose::No, &b, Transpose::No, alpha, beta, &mut c).unwrap();
                    let (av, bv) = (a.as_slice(), b.as_slice());
                    let want: Vec<f32> = (0..rows * len)
                        .map(|e| {
                            let (i, j) = (e / len, e % len);
                            plain(c0[e], beta, k, |p| {
                                (alpha * av[i * k + p]) * bv[p * len + j]
                            })
                        })
                        .collect();
                    assert_eq!(
                        bits(c.as_slice()),
                        bits(&want),
                        "[{rows}, {k}] x [{k}, {len}], alpha {alpha}, beta {beta}"
                    );
                    checked += 1;
                }
                // A column of C from columns of A^T: [k, len]^T x [k, 1].
                let a = Tensor::<f32>::randn(&[k, len], 0.0, 1.0, &mut rng);
                let b = Tensor::<f32>::randn(&[k, 1], 0.0, 1.0, &mut rng);
                let mut c = Tensor::<f32>::randn(&[len, 1], 0.0, 1.0, &mut rng);
                let c0 = c.to_vec();
                gemm_into(&a, Transpose::Yes, &b, Transpose::No, alpha, beta, &mut c).unwrap();
                let (av, bv) = (a.as_slice(), b.as_slice());
                let want: Vec<f32> = (0..len)
                    .map(|i| plain(c0[i], beta, k, |p| (alpha * bv[p]) * av[p * len + i]))
                    .collect();
                if len > 1 {
                    assert_eq!(
                        bits(c.as_slice()),
                        bits(&want),
                        "[{k}, {len}]^T x [{k}, 1], alpha {alpha}, beta {beta}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "{checked}");
    // With beta = 0, C is written, not read: a NaN or a negative number in it leaves no trace,
    // with terms or without.
    for k in [0, 3] {
        for (rows, len) in [(2, 5), (1, 9), (70, 1)] {
            let a = Tensor::<f32>::full(&[rows, k], 1.0);
            let b = Tensor::<f32>::full(&[k, len], 2.0);
            let mut c = Tensor::<f32>::full(&[rows, len], f32::NAN);
            gemm_into(&a, Transpose::No, &b, Transpose::No, 1.0, 0.0, &mut c).unwrap();
            assert_eq!(
                c.to_vec(),
                vec![2.0 * k as f32; rows * len],
                "k {k}, {rows} x {len}"
            );
            let mut c = Tensor::<f32>::full(&[rows, len], -1.0);
            gemm_into(&a, Transpose::No, &b, Transpose::No, 1.0, 0.0, &mut c).unwrap();
            let want = (2.0 * k as f32).to_bits();
            assert!(
                c.as_slice().iter().all(|v| v.to_bits() == want),
                "k {k}: {c:?}"
            );
        }
    }
}
