//! Crashes on request, so the end-to-end tests can show that a run cut short mid-work
//! leads to exactly one completed run. Off unless `WORKER_TEST_HOOKS=true`.

use shared::error::BoxError;
use shared::prediction::Prediction;

/// Runs after the claim and before the work: `"test_hook": "panic_once"` panics and
/// `"fail_once"` fails on the first attempt only.
pub fn before_work(prediction: &Prediction, attempt: u32) -> Result<(), BoxError> {
    match (prediction.input.get("test_hook").and_then(|v| v.as_str()), attempt) {
        (Some("panic_once"), 1) => panic!("test hook: panic on the first attempt"),
        (Some("fail_once"), 1) => Err("test hook: fail on the first attempt".into()),
        (Some("fail_always"), _) => Err("test hook: fail on every attempt".into()),
        _ => Ok(()),
    }
}
