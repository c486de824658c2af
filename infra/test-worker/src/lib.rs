//! The worker the end-to-end tests and the benchmark run: the production worker's
//! library with two additions that never reach a deployed binary (`sam build` builds
//! `worker`, not this).
//! - [`Hooked`]: crash hooks. A prediction's input `"test_hook": "panic_once"` panics and
//!   `"fail_once"` fails on the first attempt only, before the work; `"fail_always"`
//!   fails every attempt, `"fail_after_first"` every one but the first (a replay that
//!   fails); `"panic_before_store"` panics on the first attempt after the
//!   work's steps ran, just before its result is stored; `"sleep_ms:<n>"` stands for slow
//!   work (a download, a model call) by waiting `n` ms without holding a thread.
//! - [`Counted`]: the work's records with a count of the calls that stored them, so the
//!   tests prove from the table that the work ran once.

mod counted;

use std::time::Duration;

use serde_json::Value;
use wriftai_hooks::adapters::sqs::SqsQueue;
use wriftai_hooks::error::BoxError;
use wriftai_hooks::ingest::Ingest;
use wriftai_hooks::prediction::Prediction;
use worker::batch::Job;
use worker::config::{Clients, WorkerConfig};
use worker::work::{self, Context};

pub use counted::Counted;

/// The worker's work, with the crash hooks run first.
pub struct Hooked(pub Context<Counted, SqsQueue>);

impl Hooked {
    /// The worker's context on the stack's table (its writes counted) and queue.
    pub fn on_aws(clients: &Clients, config: &WorkerConfig) -> Result<Self, BoxError> {
        let ingest = Ingest::on_aws(&clients.aws, &config.ingest).map_ledger(Counted::new);
        Ok(Hooked(Context::new(clients, config, ingest)?))
    }
}

tokio::task_local! {
    /// The hook of the run in progress, and its attempt: read where the result is stored.
    static RUN: (Option<String>, u32);
}

impl Job for Hooked {
    async fn run(&self, prediction: Prediction, attempt: u32) -> Result<Value, BoxError> {
        let hook = prediction.input.get("test_hook").and_then(|v| v.as_str()).map(str::to_owned);
        before_work(hook.as_deref(), attempt).await?;
        RUN.scope((hook, attempt), work::handle(&prediction, &self.0)).await
    }
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

/// Called as the result is about to be stored: the `panic_before_store` hook.
fn before_store() {
    let first = RUN.try_with(|(hook, attempt)| hook.as_deref() == Some("panic_before_store") && *attempt == 1);
    if first.unwrap_or(false) {
        panic!("test hook: panic after the work's steps, before its result is stored");
    }
}
