//! `test-worker`: the worker the end-to-end tests and the benchmark run, never deployed
//! (`sam build` builds `worker`). It is this repository's `functions/worker/src/work.rs`
//! on the engine, with two additions:
//! - crash hooks: a prediction's input `"test_hook": "panic_once"` panics and
//!   `"fail_once"` fails on the first attempt only, before the work; `"fail_always"`
//!   fails every attempt, `"fail_after_first"` every one but the first (a replay that
//!   fails); `"panic_before_store"` panics on the first attempt after the work's steps
//!   ran, just before its result is stored; `"sleep_ms:<n>"` stands for slow work (a
//!   download, a model call) by waiting `n` ms without holding a thread;
//! - counted stores: every record's item keeps one ID per call that stored it
//!   (`writes`), so the tests prove from the table that the work ran once.

// The project's own work, as the production worker runs it.
#[path = "../../../functions/worker/src/work.rs"]
#[allow(dead_code)]
mod work;

use std::time::Duration;

use serde_json::Value;
use wriftai_hooks::{BoxError, Context, Prediction};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let count = |table: wriftai_hooks::internals::adapters::dynamo::DynamoLedger| table.counting_stores(before_store);
    wriftai_hooks::worker::serve_instrumented(work::Settings::new, hooked, count).await
}

tokio::task_local! {
    /// The hook of the run in progress, and its attempt: read where the result is stored.
    static RUN: (Option<String>, u32);
}

/// The project's work, with the crash hooks run first.
async fn hooked(prediction: &Prediction, ctx: &Context<work::Settings>) -> Result<Value, BoxError> {
    let hook = prediction.input.get("test_hook").and_then(|v| v.as_str()).map(str::to_owned);
    let attempt = wriftai_hooks::worker::attempt().unwrap_or(1);
    before_work(hook.as_deref(), attempt).await?;
    RUN.scope((hook, attempt), work::handle(prediction, ctx)).await
}

/// Longest stall a hook may ask for: a typo must not hold a batch until its timeout.
const MAX_SLEEP_MS: u64 = 60_000;

async fn before_work(hook: Option<&str>, attempt: u32) -> Result<(), BoxError> {
    if let Some(ms) = hook.and_then(|h| h.strip_prefix("sleep_ms:")) {
        let ms: u64 = ms.parse().map_err(|_| format!("test hook: bad sleep_ms value {ms:?}"))?;
        tokio::time::sleep(Duration::from_millis(ms.min(MAX_SLEEP_MS))).await;
        return Ok(());
    }
    match (hook, attempt) {
        (Some("panic_once"), 1) => panic!("test hook: panic on the first attempt"),
        (Some("fail_once"), 1) => Err("test hook: fail on the first attempt".into()),
        (Some("fail_always"), _) => Err("test hook: fail on every attempt".into()),
        (Some("fail_after_first"), 2..) => Err("test hook: fail on every attempt after the first".into()),
        _ => Ok(()),
    }
}

/// Called as a record is about to be stored: the `panic_before_store` hook fires before
/// the result's.
fn before_store(name: &str) {
    let first = RUN.try_with(|(hook, attempt)| hook.as_deref() == Some("panic_before_store") && *attempt == 1);
    if name == "result" && first.unwrap_or(false) {
        panic!("test hook: panic after the work's steps, before its result is stored");
    }
}
