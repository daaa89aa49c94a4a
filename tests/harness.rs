//! The overhead harness from a user's benchmark binary: rows, ratios, gains, JSON lines and
//! allocation counts.

use std::hint::black_box;

use tapegrad::harness::{CountingAlloc, Harness, Workload};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn a_users_workloads_are_measured_with_allocations_per_call() {
    assert!(CountingAlloc::allocations().is_some(), "installed here");
    let mut w = vec![];
    let slow = Workload::new(
        "slow",
        "us/call",
        1e6,
        || {
            // Two heap allocations per call.
            black_box(vec![1u8; 64]);
            black_box(vec![2u8; 64]);
            for i in 0..20_000u64 {
                black_box(i);
            }
        },
        || {
            for i in 0..10_000u64 {
                black_box(i);
            }
        },
    )
    .what("a step that does twice the work")
    .inner(20);
    w.push(slow);
    let report = Harness::new().reps(5).threads(&[1, 2]).run(&mut w);
    let row = &report.rows[0];
    assert_eq!(
        (row.id.as_str(), row.what.as_str()),
        ("slow", "a step that does twice the work")
    );
    assert_eq!(row.at.len(), 2);
    for a in &row.at {
        assert_eq!(a.ours_allocs, Some(2.0));
        assert_eq!(a.floor_allocs, Some(0.0));
        // Times are reported, never asserted: only that they were measured.
        assert!(a.ratio.is_finite() && a.ratio > 0.0 && a.ours > 0.0 && a.floor > 0.0);
    }
    assert!(row.gain.is_some());
    let md = report.markdown();
    assert!(
        md.contains("| slow | a step that does twice the work | 1 |"),
        "{md}"
    );
    assert!(md.contains("2.0 / 0.0"), "{md}");
    let json = report.json_lines();
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 2);
    let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(v["threads"], 2);
    assert_eq!(v["tapegrad_allocs"], 2.0);
    assert_eq!(v["unit"], "us/call");
    assert!((v["ratio"].as_f64().unwrap() - row.at[1].ratio).abs() < 1e-12);
}
