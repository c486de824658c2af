//! Crashes or stalls on request, so the end-to-end tests can show that a run cut short
//! mid-work leads to exactly one completed run, and the benchmark can time a batch of
//! slow items. Off unless `WORKER_TEST_HOOKS=true`.

use std::time::Duration;

use shared::error::BoxError;
use shared::prediction::Prediction;

/// Longest stall a hook may ask for: a typo must not hold a batch until its timeout.
const MAX_SLEEP_MS: u64 = 60_000;

/// Runs after the claim and before the work: `"test_hook": "panic_once"` panics and
/// `"fail_once"` fails on the first attempt only; `"sleep_ms:<n>"` stands for slow work
/// (a download, a model call) by waiting `n` ms without holding a thread.
pub async fn before_work(prediction: &Prediction, attempt: u32) -> Result<(), BoxError> {
    let hook = prediction.input.get("test_hook").and_then(|v| v.as_str());
    if let Some(ms) = hook.and_then(|h| h.strip_prefix("sleep_ms:")) {
        let ms: u64 = ms.parse().map_err(|_| format!("test hook: bad sleep_ms value {ms:?}"))?;
        tokio::time::sleep(Duration::from_millis(ms.min(MAX_SLEEP_MS))).await;
        return Ok(());
    }
    match (hook, attempt) {
        (Some("panic_once"), 1) => panic!("test hook: panic on the first attempt"),
        (Some("fail_once"), 1) => Err("test hook: fail on the first attempt".into()),
        (Some("fail_always"), _) => Err("test hook: fail on every attempt".into()),
        _ => Ok(()),
    }
}
