//! `TAPEGRAD_SPIN_US` sets the spin time when `set_spin_time` has not (read once, at first use).
//! Its own test binary: the variable is read once per process.

use std::time::Duration;

#[test]
fn tapegrad_spin_us_sets_the_spin_time() {
    // SAFETY: this binary's only test, so no other thread reads or writes the environment.
    unsafe { std::env::set_var("TAPEGRAD_SPIN_US", "250") };
    assert_eq!(tapegrad_tensor::spin_time(), Duration::from_micros(250));
    tapegrad_tensor::set_spin_time(Duration::from_millis(3));
    assert_eq!(tapegrad_tensor::spin_time(), Duration::from_millis(3));
}
