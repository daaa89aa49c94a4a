//! The performance workloads' two sides compute the same step: a ratio between them measures
//! cost, not different work.

#[path = "../benches/workloads.rs"]
mod workloads;

use workloads::{MlpFloor, MlpRawTape, MlpTapegrad};

/// N5: the W5 step through nn and the same step on the raw tape give the same losses, bit for
/// bit, step after step (so the parameters they update stay equal too).
#[test]
fn the_raw_tape_step_is_the_nn_step_bit_for_bit() {
    let mut nn = MlpTapegrad::new(&[2, 8, 1], 4, 0.1);
    let mut raw = MlpRawTape::new(0.1);
    let losses: Vec<f32> = (0..50).map(|_| nn.step()).collect();
    for (i, &want) in losses.iter().enumerate() {
        assert_eq!(raw.step().to_bits(), want.to_bits(), "step {i}");
    }
    // Training moves the loss: equal numbers are not both a constant.
    assert!(losses[49] < losses[0], "{} -> {}", losses[0], losses[49]);
}

/// W5's hand-written floor computes the same losses to rounding (its products run on
/// matrixmultiply, in another order).
#[test]
fn the_w5_floor_computes_the_same_losses() {
    let mut nn = MlpTapegrad::new(&[2, 8, 1], 4, 0.1);
    let mut floor = MlpFloor::new(&[2, 8, 1], 4, 0.1);
    for i in 0..50 {
        let (a, b) = (nn.step(), floor.step());
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "step {i}: {a} vs {b}"
        );
    }
}
