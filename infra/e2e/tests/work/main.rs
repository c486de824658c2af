//! The whole pipeline on the local stack, with the queue -> worker mapping and the
//! reconciler's schedule running: each terminal prediction's work runs exactly once,
//! counted from its side effect (the result record's write count, kept by the test
//! worker), whatever WriftAI, the worker or a poison message does. With it, in one test
//! binary so that they run side by side: the steps that run once (steps.rs), the output
//! files and what may be fetched (files.rs), the `hooks` operations commands
//! (operations.rs), and one prediction's trace from the receiver into the worker
//! (trace.rs).

mod files;
mod operations;
mod steps;
mod trace;

use std::time::Duration;

use e2e::{Sim, Stack, api, eventually, our_webhook, status_of};
use serde_json::{Value, json};
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::prediction::PredictionId;
use wriftai_hooks::internals::wriftai::CreatePrediction;

pub(crate) async fn create(stack: &Stack, model: &str, input: Value) -> PredictionId {
    let ingest = Ingest::new(stack.ledger(), stack.queue(), ActOn::terminal(), Duration::from_secs(3600));
    let request = CreatePrediction { model: model.into(), input, webhook: our_webhook(), wait: None };
    wriftai_hooks::internals::create::create(&api(), &ingest, &request).await.unwrap().prediction.id
}

/// Waits for the worker to have stored the prediction's output; returns it.
async fn worked(stack: &Stack, id: PredictionId, seconds: u64) -> (Value, usize) {
    eventually(seconds, &format!("the work of {id}"), || stack.record(id, "result")).await
}

fn work_attempts(item: &e2e::Item) -> u64 {
    item.get("work_attempts").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn with_duplicates_and_reordering_each_terminal_predictions_work_runs_once() {
    let stack = Stack::from_env().await;
    let sim = Sim::from_env();
    sim.chaos(json!({"seed": 11, "duplicate_rate": 0.6, "reorder_rate": 0.5, "delay_ms": 20})).await;
    let mut ids = Vec::new();
    for n in 0..8 {
        let outcome = if n % 4 == 0 { "failed" } else { "succeeded" };
        ids.push(create(&stack, "acme/echo", json!({"prompt": format!("w{n}"), "sim": {"outcome": outcome}})).await);
    }
    sim.settle(&ids, &api()).await;
    sim.chaos(json!({"duplicate_rate": 0.0, "reorder_rate": 0.0, "delay_ms": 0})).await;
    for id in &ids {
        let (record, _) = worked(&stack, *id, 60).await;
        let truth = api().get(*id).await.unwrap().unwrap().prediction;
        assert_eq!(record["status"], truth.status.as_str());
    }
    // Let any duplicate message that is still in flight arrive and be absorbed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in ids {
        assert_eq!(stack.record(id, "result").await.unwrap().1, 1, "{id}: work ran exactly once");
    }
}

#[tokio::test]
async fn the_reconciler_brings_predictions_with_every_webhook_dropped_to_their_end() {
    let stack = Stack::from_env().await;
    let dropped = |outcome: &str| json!({"prompt": "lost", "sim": {"outcome": outcome, "drop_webhooks": true}});
    let succeeded = create(&stack, "acme/echo", dropped("succeeded")).await;
    let failed = create(&stack, "acme/echo", dropped("failed")).await;
    for (id, status) in [(succeeded, "succeeded"), (failed, "failed")] {
        let (record, writes) = worked(&stack, id, 90).await;
        assert_eq!((record["status"].as_str(), writes), (Some(status), 1));
        let items = stack.items(id).await;
        assert_eq!(status_of(&items["PRED"]), status);
        assert!(!items["PRED"].contains_key("open_pk"));
    }
    let deliveries = Sim::from_env().deliveries(succeeded).await;
    assert!(deliveries.iter().all(|d| d["outcome"] == "dropped"), "no webhook came: {deliveries:?}");
}

#[tokio::test]
async fn a_worker_crash_mid_work_leads_to_exactly_one_completed_run() {
    let stack = Stack::from_env().await;
    for hook in ["panic_once", "fail_once"] {
        let id = create(&stack, "acme/echo", json!({"prompt": hook, "test_hook": hook})).await;
        let (record, writes) = worked(&stack, id, 60).await;
        assert_eq!((record["output"].as_str(), writes), (Some(format!("echo: {hook}").as_str()), 1));
        let event = eventually(30, "the work marked done", || async {
            let event = stack.items(id).await.remove("EVENT#succeeded")?;
            (event.get("work")?.as_s().ok()? == "done").then_some(event)
        })
        .await;
        assert_eq!(work_attempts(&event), 2, "{hook}: the first attempt crashed, the second completed");
    }
}

#[tokio::test]
async fn a_poison_message_lands_in_the_dlq_and_the_others_complete() {
    let stack = Stack::from_env().await;
    let poison = format!("poison-{}", PredictionId::random());
    stack.sqs.send_message().queue_url(&stack.queue_url).message_body(&poison).send().await.unwrap();
    let good = create(&stack, "acme/echo", json!({"prompt": "beside the poison"})).await;
    assert_eq!(worked(&stack, good, 60).await.1, 1);

    let found = eventually(120, "the poison message in the DLQ", || async {
        stack.dead_letters(None).await.contains(&poison).then_some(())
    })
    .await;
    assert_eq!(found, ());
}

#[tokio::test]
async fn a_two_step_chained_pipeline_completes() {
    let stack = Stack::from_env().await;
    let first = create(&stack, "acme/echo", json!({"prompt": "hi", "then": {"model": "acme/echo"}})).await;
    let (record, _) = worked(&stack, first, 60).await;
    assert_eq!(record["output"], "echo: hi");
    let second = PredictionId::parse(record["next"].as_str().expect("the work chained a prediction")).unwrap();
    let (record, writes) = worked(&stack, second, 60).await;
    assert_eq!((record["output"].as_str(), writes), (Some("echo: echo: hi"), 1));
    assert!(record.get("next").is_none());
}

#[tokio::test]
async fn predictions_wriftai_forgot_or_that_never_finish_are_closed_not_polled_forever() {
    let stack = Stack::from_env().await;
    let forgotten = create(
        &stack,
        "acme/echo",
        json!({"prompt": "x", "sim": {"drop_webhooks": true, "expire_after_ms": 1, "step_ms": 10}}),
    )
    .await;
    let stuck =
        create(&stack, "acme/echo", json!({"prompt": "x", "sim": {"outcome": "never", "drop_webhooks": true}})).await;
    for (id, reason, seconds) in [(forgotten, "not_found", 60), (stuck, "overdue", 150)] {
        let closed = eventually(seconds, &format!("{id} closed"), || async {
            let items = stack.items(id).await;
            items["PRED"].get("closed").and_then(|v| v.as_s().ok()).cloned()
        })
        .await;
        assert_eq!(closed, reason);
        assert!(!stack.items(id).await["PRED"].contains_key("open_pk"));
    }
}

#[tokio::test]
async fn a_failed_prediction_is_kept_for_triage() {
    let stack = Stack::from_env().await;
    let failed = create(&stack, "acme/echo", json!({"prompt": "triage me", "sim": {"outcome": "failed"}})).await;
    let succeeded = create(&stack, "acme/echo", json!({"prompt": "fine"})).await;
    let (result, _) = worked(&stack, failed, 60).await;
    assert_eq!(result["status"], "failed");
    let (triage, writes) = stack.record(failed, "triage").await.expect("the triage record is kept with the result");
    assert_eq!(
        (triage["model"].as_str(), triage["input"]["prompt"].as_str(), writes),
        (Some("acme/echo"), Some("triage me"), 1)
    );
    assert_eq!((triage["source"].as_str(), triage["message"].as_str()), (Some("internal"), Some("simulated failure")));
    worked(&stack, succeeded, 60).await;
    assert_eq!(stack.record(succeeded, "triage").await, None);
}
