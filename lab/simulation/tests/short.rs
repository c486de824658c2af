//! The short simulation `make test` runs: 5,000 predictions over 40 simulated days,
//! every invariant held, and the same seed telling the same story twice.

use simulation::{Settings, run};

#[test]
fn five_thousand_predictions_over_forty_days_break_no_invariant() {
    let settings = Settings { seed: 33, predictions: 5_000, days: 40, shards: 16 };
    let report = run(settings);
    println!("{report}");
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.stats.deliveries > 5_000 && report.stats.operator.forgets > 0, "{report}");
}

#[test]
fn a_seed_replays_its_run_exactly() {
    let settings = Settings { seed: 7, predictions: 300, days: 3, shards: 4 };
    let (first, second) = (run(settings.clone()), run(settings));
    assert_eq!(first.digest, second.digest, "one seed, one story:\n{first}\n{second}");
}
