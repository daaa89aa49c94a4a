//! Sizes no machine has: dimensions near `usize::MAX` and results of terabytes. Every function
//! that returns `Result` answers with an error naming the op and the shape (and the bytes, for a
//! refused allocation), never an abort or a wrapped element count; the constructors without a
//! `Result` panic with the same message (a panic can be caught; an abort cannot).
//!
//! Only sizes far past any machine's memory are used (at least 2^44 bytes, or overflowing):
//! sizes near this machine's memory would be answered by the kernel's OOM killer, not tapegrad.

use std::panic::{AssertUnwindSafe, catch_unwind};

use proptest::prelude::*;
use tapegrad::autodiff::Tape;
use tapegrad::nn::{Activation, Network};
use tapegrad::rand::{SeedableRng, rngs::StdRng};
use tapegrad::tensor::{Tensor, TensorError, checked_numel};

/// Sizes that make a shape overflow or reach terabytes when combined.
const HUGE: [usize; 9] = [
    1 << 31,
    1 << 32,
    1 << 40,
    1 << 44,
    1 << 62,
    1 << 63,
    (1 << 63) + 1,
    usize::MAX - 1,
    usize::MAX,
];

/// A shape of rank 1-4 with at least one huge size; other sizes 1-3.
fn huge_shape() -> impl Strategy<Value = Vec<usize>> {
    (
        prop::collection::vec(prop::sample::select(&[1usize, 2, 3][..]), 0..=3),
        prop::sample::select(&HUGE[..]),
        any::<prop::sample::Index>(),
        prop::option::of(prop::sample::select(&HUGE[..])),
    )
        .prop_map(|(mut shape, big, at, second)| {
            shape.insert(at.index(shape.len() + 1), big);
            if let Some(b) = second {
                shape.push(b);
            }
            shape
        })
}

/// Whether `shape` of f32 elements is past 2^44 bytes or overflows (and holds an element).
fn far_too_large(shape: &[usize]) -> bool {
    let bytes = shape
        .iter()
        .try_fold(4u128, |a, &d| a.checked_mul(d as u128));
    bytes.is_none_or(|b| b >= 1 << 44)
}

/// The message of a caught panic.
fn panic_message(r: Result<(), Box<dyn std::any::Any + Send>>) -> String {
    match r {
        Ok(()) => panic!("expected a panic"),
        Err(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    }
}

/// A refusal: the shape is too large to exist, or its memory cannot be had; either way the
/// message names the op and the shape.
fn assert_refused(err: &TensorError, op: &str, shape: &[usize]) {
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            TensorError::TooLarge { .. } | TensorError::Alloc { .. }
        ),
        "{msg}"
    );
    assert!(msg.contains(op), "{msg} should name {op}");
    assert!(
        msg.contains(&format!("{shape:?}")),
        "{msg} should name {shape:?}"
    );
}

fn quiet_panics() {
    // The panics below are expected; keep their messages out of the test output.
    std::panic::set_hook(Box::new(|_| {}));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every constructor and shape op, given a shape far too large.
    #[test]
    fn constructors_and_shape_ops_refuse_huge_shapes(shape in huge_shape()) {
        quiet_panics();
        prop_assume!(far_too_large(&shape));
        let mut rng = StdRng::seed_from_u64(0);
        assert_refused(&Tensor::<f32>::try_zeros(&shape).unwrap_err(), "zeros", &shape);
        assert_refused(&Tensor::<f32>::try_ones(&shape).unwrap_err(), "ones", &shape);
        assert_refused(&Tensor::<f64>::try_full(&shape, 2.0).unwrap_err(), "full", &shape);
        assert_refused(&Tensor::<f32>::try_from_fn(&shape, |i| i as f32).unwrap_err(), "from_fn", &shape);
        assert_refused(
            &Tensor::<f32>::try_rand_uniform(&shape, 0.0, 1.0, &mut rng).unwrap_err(),
            "rand_uniform",
            &shape,
        );
        assert_refused(&Tensor::<f32>::try_randn(&shape, 0.0, 1.0, &mut rng).unwrap_err(), "randn", &shape);
        // The data never matches such a shape: too large, or a length mismatch, never Ok.
        prop_assert!(Tensor::<f32>::from_vec(vec![1.0, 2.0], &shape).is_err());
        prop_assert!(Tensor::<f32>::from_slice(&[1.0, 2.0], &shape).is_err());
        let small = Tensor::<f32>::ones(&[2]);
        prop_assert!(small.reshape(&shape).is_err());
        let one = Tensor::<f32>::ones(&[1]);
        assert_refused(&one.broadcast_to(&shape).unwrap_err(), "broadcast_to", &shape);
        // A row repeated: the broadcast's fast path.
        let last = *shape.last().unwrap();
        if last <= 3 {
            let row = Tensor::<f32>::ones(&[last]);
            assert_refused(&row.broadcast_to(&shape).unwrap_err(), "broadcast_to", &shape);
        }
        // The same through the tape.
        let tape = Tape::<f32>::new();
        let v = tape.var(Tensor::ones(&[1]));
        prop_assert!(v.broadcast_to(&shape).is_err());
        prop_assert!(v.reshape(&shape).is_err());
        prop_assert_eq!(tape.len(), 1, "a refused op records nothing");
        // The constructors without a Result panic with the same message.
        let msg = panic_message(catch_unwind(|| { Tensor::<f32>::zeros(&shape); }));
        prop_assert!(msg.contains("zeros") || msg.contains("full"), "{}", msg);
        prop_assert!(msg.contains(&format!("{shape:?}")), "{}", msg);
        let msg = panic_message(catch_unwind(AssertUnwindSafe(|| {
            Tensor::<f32>::randn(&shape, 0.0, 1.0, &mut rng);
        })));
        prop_assert!(msg.contains("randn"), "{}", msg);
    }

    /// Products, one-hot rows, concatenation and the network builders, with huge sizes.
    #[test]
    fn products_one_hot_and_builders_refuse_huge_sizes(
        big in prop::sample::select(&HUGE[..]),
        other in prop::sample::select(&[1usize, 2, 3, 1 << 31, 1 << 40, usize::MAX][..]),
    ) {
        // Two rows of `big` f32 elements must be far too large too.
        prop_assume!(far_too_large(&[2, big]));
        // Zero-size operands name sizes whose product cannot exist: [big, 0] x [0, other].
        if checked_numel("a", &[big, 0]).is_ok() && checked_numel("b", &[0, other]).is_ok() {
            let a = Tensor::<f32>::zeros(&[big, 0]);
            let b = Tensor::<f32>::zeros(&[0, other]);
            match a.matmul(&b) {
                Ok(c) => prop_assert!(!far_too_large(&[big, other]) && c.shape() == [big, other]),
                Err(e) => assert_refused(&e, "matmul", &[big, other]),
            }
        }
        // One-hot rows for two labels and a huge class count.
        match Tensor::<f32>::one_hot(&[0, 1], big) {
            Ok(_) => prop_assert!(false, "one_hot with {} classes", big),
            Err(e) => assert_refused(&e, "one_hot", &[2, big]),
        }
        // Builders: a layer that wide, or that many inputs, is refused and adds nothing.
        let mut rng = StdRng::seed_from_u64(0);
        prop_assert!(Network::<f32>::try_mlp(&[big, 2, 1], Activation::Sigmoid, &mut rng).is_err());
        prop_assert!(Network::<f32>::try_mlp(&[2, big, 1], Activation::Tanh, &mut rng).is_err());
        prop_assert!(Network::<f32>::try_mlp(&[2, 3, big], Activation::Relu, &mut rng).is_err());
        let mut net = Network::<f32>::new(other.max(2));
        let input = net.input();
        prop_assert!(net.layer(&[input], big, Activation::Tanh, &mut rng).is_err());
        prop_assert_eq!(net.params.len(), 0);
        prop_assert_eq!(net.num_nodes(), 0);
    }
}

#[test]
fn the_issues_examples_are_errors_not_undefined_behaviour_or_aborts() {
    quiet_panics();
    // Wrapping element counts: Ok before, then a segfault in matmul.
    let err = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[(1 << 63) + 1, 2]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape [9223372036854775809, 2] in from_vec is too large: the product of its sizes \
         overflows"
    );
    // ones(&[2^32, 2^32]).sum() was 0: now no such tensor can be made.
    assert_refused(
        &Tensor::<f32>::try_ones(&[1 << 32, 1 << 32]).unwrap_err(),
        "ones",
        &[1 << 32, 1 << 32],
    );
    let msg = panic_message(catch_unwind(|| {
        Tensor::<f32>::ones(&[1 << 32, 1 << 32]).sum();
    }));
    assert!(msg.contains("too large"), "{msg}");
    // mlp with a 2^63-wide input was Ok with 0-element weights.
    let mut rng = StdRng::seed_from_u64(0);
    let err = Network::<f32>::try_mlp(&[1 << 63, 2, 1], Activation::Sigmoid, &mut rng).unwrap_err();
    assert!(
        err.to_string().contains("[9223372036854775808, 2]"),
        "{err}"
    );
    // Allocations of 4 TiB killed the process.
    let err = Tensor::<f32>::ones(&[1])
        .broadcast_to(&[1 << 20, 1 << 20])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot allocate 4398046511104 bytes for shape [1048576, 1048576] in broadcast_to"
    );
    let tape = Tape::<f32>::new();
    let v = tape.var(Tensor::ones(&[1]));
    assert!(matches!(
        v.broadcast_to(&[1 << 20, 1 << 20]),
        Err(tapegrad::autodiff::AutodiffError::Tensor(
            TensorError::Alloc { .. }
        ))
    ));
    let err = Tensor::<f32>::one_hot(&[0], 1 << 40).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot allocate 4398046511104 bytes for shape [1, 1099511627776] in one_hot"
    );
    let err = Tensor::<f32>::one_hot(&[0, 1], usize::MAX).unwrap_err();
    assert!(
        matches!(err, TensorError::TooLarge { op: "one_hot", .. }),
        "{err}"
    );
    let (a, b) = (
        Tensor::<f32>::ones(&[1 << 20, 1]),
        Tensor::<f32>::ones(&[1, 1 << 20]),
    );
    assert_eq!(
        a.matmul(&b).unwrap_err().to_string(),
        "cannot allocate 4398046511104 bytes for shape [1048576, 1048576] in matmul"
    );
    let err = Network::<f32>::try_mlp(&[2, 1 << 40, 1], Activation::Sigmoid, &mut rng).unwrap_err();
    assert!(
        err.to_string()
            .contains("bytes for shape [2, 1099511627776]"),
        "{err}"
    );
    // Broadcasting two operands into a result neither could hold.
    let err = a.add(&b).unwrap_err();
    assert!(matches!(err, TensorError::Alloc { op: "add", .. }), "{err}");
}

#[test]
fn zero_sized_tensors_with_large_sizes_are_fine() {
    // A zero size makes the tensor empty, so the other sizes may be large: as NumPy.
    let t = Tensor::<f32>::try_zeros(&[0, 1 << 40]).unwrap();
    assert_eq!((t.len(), t.shape()), (0, &[0, 1 << 40][..]));
    assert_eq!(t.sum().item().unwrap(), 0.0);
    // But not so large that the strides overflow.
    assert!(Tensor::<f32>::try_zeros(&[0, 1 << 62, 4]).is_err());
}

#[test]
fn grids_and_generators_of_absurd_sizes_fail_cleanly() {
    quiet_panics();
    let mut rng = StdRng::seed_from_u64(0);
    let net = Network::<f32>::mlp(&[2, 3, 1], &mut rng);
    for res in [(1 << 40, 1 << 40), (usize::MAX, 2), (1 << 22, 1 << 22)] {
        let err = tapegrad::nn::boundary::decision_grid(&net, (0.0, 1.0), (0.0, 1.0), res)
            .unwrap_err()
            .to_string();
        assert!(err.contains("decision_grid"), "{err}");
    }
    // The generators have no Result: a size no machine holds is a panic naming it.
    for n in [usize::MAX, 1 << 62, 1 << 42] {
        let msg = panic_message(catch_unwind(AssertUnwindSafe(|| {
            tapegrad::nn::data::xor::<f32, _>(n, 0.1, &mut rng);
        })));
        assert!(
            msg.contains("randn") && msg.contains(&format!("[{n}, 2]")),
            "{msg}"
        );
    }
}
