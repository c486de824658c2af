//! Your worker on the local stack, end to end: a prediction created through WriftAI (the
//! simulator) comes back through the receiver as its webhooks, and the work of each
//! status the worker acts on runs to done. `make test` starts the stack and runs this
//! (`make e2e` alone); `cargo test` alone does not (`test = false` in Cargo.toml).
//!
//! It holds whatever your `handle` does, as long as it ends: change your work freely.
//! Add tests of what your work leaves (its records, what it called) beside these.

use std::time::Duration;

use serde_json::{Value, json};
use wriftai_hooks::testing::LocalStack;

/// How long a prediction may take, webhooks, queue and work included: the simulator's
/// predictions end in seconds.
const WITHIN: Duration = Duration::from_secs(90);

/// The events of a worked prediction whose work ran, by status.
fn worked(report: &Value) -> Vec<&str> {
    let events = report["events"].as_array().expect("the report lists its events");
    events
        .iter()
        .filter(|event| event["work"]["state"] == "done")
        .filter_map(|event| event["status"].as_str())
        .collect()
}

#[tokio::test]
async fn a_prediction_made_through_wriftai_is_received_and_worked_to_the_end() {
    let stack = LocalStack::from_env().await.expect("the local stack's variables (make test exports them)");
    let id = stack.create("acme/echo", json!({"prompt": "hello from the end-to-end test"})).await.unwrap();
    let report = stack.worked(id, WITHIN).await.unwrap();
    assert_eq!(report["status"], "succeeded", "{report:#}");
    let acted_on = std::env::var("ACT_ON_STATUSES").unwrap_or_default();
    if acted_on.split(',').any(|status| status.trim() == "succeeded") {
        assert_eq!(worked(&report), ["succeeded"], "{report:#}");
    }
}

#[tokio::test]
async fn a_failed_prediction_is_received_and_worked_to_the_end() {
    let stack = LocalStack::from_env().await.expect("the local stack's variables (make test exports them)");
    let input = json!({"prompt": "this one fails", "sim": {"outcome": "failed"}});
    let id = stack.create("acme/echo", input).await.unwrap();
    let report = stack.worked(id, WITHIN).await.unwrap();
    assert_eq!(report["status"], "failed", "{report:#}");
    let acted_on = std::env::var("ACT_ON_STATUSES").unwrap_or_default();
    if acted_on.split(',').any(|status| status.trim() == "failed") {
        assert_eq!(worked(&report), ["failed"], "{report:#}");
    }
}
