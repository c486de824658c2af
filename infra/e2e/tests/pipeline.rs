//! Predictions created for real through our client against the WriftAI simulator,
//! which delivers signed webhooks to the receiver with duplicates and reordering on.

use std::collections::HashMap;
use std::time::Duration;

use e2e::{Sim, Stack, api, our_webhook, status_of};
use serde_json::json;
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::wriftai::CreatePrediction;

#[tokio::test]
async fn with_duplicates_and_reordering_each_prediction_ends_at_its_true_status_and_only_it_sends_work() {
    let stack = Stack::from_env().await;
    let sim = Sim::from_env();
    let api = api();
    let ingest = Ingest::new(stack.ledger(), stack.queue(), ActOn::terminal(), Duration::from_secs(3600));
    sim.chaos(json!({"seed": 7, "duplicate_rate": 0.5, "reorder_rate": 0.5, "drop_rate": 0.0, "delay_ms": 30})).await;

    let mut created = Vec::new();
    for n in 0..12 {
        let outcome = if n % 3 == 0 { "failed" } else { "succeeded" };
        let request = CreatePrediction {
            model: "acme/echo".into(),
            input: json!({"prompt": format!("p{n}"), "sim": {"outcome": outcome, "step_ms": 20}}),
            webhook: our_webhook(),
            wait: None,
        };
        created.push(wriftai_hooks::internals::create::create(&api, &ingest, &request).await.unwrap().prediction.id);
    }
    sim.settle(&created, &api).await;
    sim.chaos(json!({"duplicate_rate": 0.0, "reorder_rate": 0.0, "delay_ms": 0})).await;

    let (mut duplicates, mut reorders) = (0, 0);
    for id in created {
        let truth = api.get(id).await.unwrap().expect("the simulator knows it").prediction;
        let items = stack.items(id).await;
        assert_eq!(status_of(&items["PRED"]), truth.status.as_str(), "{id}");
        assert!(truth.status.is_terminal());
        let deliveries = sim.deliveries(id).await;
        // No worker runs in this phase, so the work stays undone and each accepted
        // delivery of the terminal status sends it (a repeat sends again: the worker's
        // claim absorbs copies); no other status sends anything.
        let accepted = deliveries
            .iter()
            .filter(|d| d["status"] == truth.status.as_str() && d["outcome"]["http"].as_u64() == Some(200))
            .count();
        let messages = stack.messages_for(id).await;
        assert_eq!(messages.len(), accepted, "{id}: one message per accepted delivery of its terminal status");
        assert!(messages.iter().all(|m| m.status == truth.status), "{id}");

        // Every attempt was accepted, or refused with 429 because it beat our own
        // record of the ID (then retried): never a signature failure or a 5xx.
        let answers: Vec<u64> = deliveries.iter().filter_map(|d| d["outcome"]["http"].as_u64()).collect();
        assert!(answers.iter().all(|a| *a == 200 || *a == 429), "{id}: {deliveries:?}");
        duplicates += deliveries.iter().filter(|d| d["duplicate"] == true).count();
        reorders += deliveries.iter().filter(|d| d["reordered"] == true).count();
        let statuses: HashMap<&str, usize> = deliveries.iter().fold(HashMap::new(), |mut seen, d| {
            *seen.entry(d["status"].as_str().unwrap_or("")).or_default() += 1;
            seen
        });
        assert!(statuses.contains_key("pending") && statuses.contains_key(truth.status.as_str()), "{statuses:?}");
    }
    assert!(duplicates > 0 && reorders > 0, "chaos was on: {duplicates} duplicates, {reorders} reorders");
}

#[tokio::test]
async fn a_prediction_created_with_prefer_wait_is_recorded_and_enqueued_by_the_create_path() {
    let stack = Stack::from_env().await;
    let api = api();
    let ingest = Ingest::new(stack.ledger(), stack.queue(), ActOn::terminal(), Duration::from_secs(3600));
    // No webhook: only the create path's own record can bring it in.
    let request = CreatePrediction {
        model: "acme/echo".into(),
        input: json!({"prompt": "waited", "sim": {"step_ms": 10}}),
        webhook: None,
        wait: Some(Duration::from_secs(10)),
    };
    let fetched = wriftai_hooks::internals::create::create(&api, &ingest, &request).await.unwrap();
    assert_eq!(fetched.prediction.status.as_str(), "succeeded");
    assert_eq!(fetched.prediction.output, json!("echo: waited"));
    let id = fetched.prediction.id;
    assert_eq!(status_of(&stack.items(id).await["PRED"]), "succeeded");
    assert_eq!(stack.messages_for(id).await.len(), 1);
}
