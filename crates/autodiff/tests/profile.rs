//! The tape's profile: exact counts and bytes for known graphs, and times only when asked.

use std::sync::Arc;
use std::time::Duration;

use tapegrad_autodiff::Tape;
use tapegrad_tensor::Tensor;

#[test]
fn counts_and_bytes_of_a_small_network_step_are_exact() {
    let tape = Tape::<f32>::new();
    let x = tape.constant_shared(Arc::new(Tensor::ones(&[8, 3]))); // shared: 96 bytes
    let w1 = tape.var(Tensor::ones(&[3, 5])); // 60 bytes
    let b1 = tape.var(Tensor::zeros(&[5])); // 20 bytes
    let w2 = tape.var(Tensor::ones(&[5, 4])); // 80 bytes
    let b2 = tape.var(Tensor::zeros(&[4])); // 16 bytes
    let h = x.linear(w1, b1).unwrap().tanh(); // two [8, 5] values: 160 bytes each
    let z = h.linear(w2, b2).unwrap(); // [8, 4]: 128 bytes
    let loss = z.softmax_cross_entropy(&[0, 1, 2, 3, 0, 1, 2, 3]).unwrap(); // saves [8, 4]
    let p = tape.profile();
    assert_eq!(p.total.nodes, 9);
    let row = |op: &str| p.row(op).unwrap_or_else(|| panic!("no row {op}: {p}"));
    assert_eq!(
        (row("constant").nodes, row("constant").shared_bytes),
        (1, 96)
    );
    assert_eq!(row("constant").value_bytes, 0);
    assert_eq!(
        (row("leaf").nodes, row("leaf").value_bytes),
        (4, 60 + 20 + 80 + 16)
    );
    assert_eq!(
        (row("linear").nodes, row("linear").value_bytes),
        (2, 160 + 128)
    );
    assert_eq!((row("tanh").nodes, row("tanh").value_bytes), (1, 160));
    let ce = row("softmax_cross_entropy");
    assert_eq!((ce.nodes, ce.value_bytes, ce.saved_bytes), (1, 0, 128));
    assert_eq!(p.total.value_bytes, 176 + 288 + 160);
    assert_eq!(p.total.saved_bytes, 128);
    assert_eq!(p.total.shared_bytes, 96);
    assert_eq!(p.record_bytes, 9 * 40);
    // The labels, and the input lists of the two three-input linear nodes.
    assert_eq!(p.index_bytes, size_of::<[usize; 8]>() + 2 * 3 * 4);
    let held = 9 * 40 + 176 + 288 + 160 + 128 + size_of::<[usize; 8]>() + 24;
    assert_eq!(p.bytes_per_node(), held as f64 / 9.0);
    // Without profiling, no time.
    assert!(!p.timed);
    assert_eq!(p.total.forward + p.total.backward, Duration::ZERO);
    let table = p.to_string();
    assert!(table.starts_with("op "), "{table}");
    assert!(
        table.contains("total") && table.contains("times not measured"),
        "{table}"
    );
    drop(tape.backward(loss).unwrap());
    assert_eq!(tape.profile().total.backward, Duration::ZERO);
}

#[test]
fn f64_records_are_56_bytes_and_scalars_hold_no_value() {
    let tape = Tape::<f64>::new();
    let a = tape.var(Tensor::scalar(2.0));
    let mut y = a;
    for _ in 0..10 {
        y = y * a + 1.0;
    }
    let p = tape.profile();
    assert_eq!(p.total.nodes, 21);
    assert_eq!(p.total.value_bytes, 0);
    assert_eq!(p.record_bytes, 21 * 56);
    assert_eq!(p.row("mul").unwrap().nodes, 10);
    assert_eq!(p.row("affine").unwrap().nodes, 10);
    let _ = y;
}

#[test]
fn profiling_times_forward_and_the_last_backward_and_clears_with_the_tape() {
    let mut tape = Tape::<f32>::new();
    tape.set_profiling(true);
    for _ in 0..2 {
        tape.clear();
        let x = tape.var(Tensor::ones(&[128, 128]));
        let y = x.matmul(x).unwrap().sigmoid().sum();
        tape.backward(y).unwrap();
        let p = tape.profile();
        assert!(p.timed);
        let mm = p.row("matmul").unwrap();
        assert!(
            mm.forward > Duration::ZERO && mm.backward > Duration::ZERO,
            "{p}"
        );
        // Sorted by time: the product leads.
        assert_eq!(p.rows[0].op, "matmul", "{p}");
        assert_eq!(p.total.nodes, 4);
        let sum: Duration = p.rows.iter().map(|r| r.time()).sum();
        assert_eq!(sum, p.total.time());
    }
    tape.clear();
    let p = tape.profile();
    assert_eq!((p.total.nodes, p.total.time()), (0, Duration::ZERO));
    assert_eq!(p.bytes_per_node(), 0.0);
    tape.set_profiling(false);
    assert!(!tape.is_profiling());
}
