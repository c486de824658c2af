//! The receiver when DynamoDB or SQS stops answering: a 5xx, so WriftAI delivers
//! again, and the repeat finishes the job: recorded once, work enqueued. And the work's
//! output write when a hung DynamoDB applies it twice: still one write. The emulator is
//! frozen with SIGSTOP (a hung backend, the worst case: the SDK must time out), so these
//! tests run one at a time in their own binary.

use std::time::Duration;

use e2e::faults::Frozen;
use e2e::{Stack, payload, status_of};
use serde_json::json;
use shared::ports::Outputs;
use shared::prediction::PredictionId;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn sqs_hanging_is_a_503_and_the_repeat_enqueues_the_work() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", 3);
    {
        let _frozen = Frozen::new("sqs");
        let (status, answer) = stack.post(body.clone()).await;
        assert_eq!((status, &answer["error"]), (503, &"unavailable".into()));
    }
    assert_eq!(stack.items(id).await["EVENT#succeeded"]["enqueue"].as_s().unwrap(), "pending");
    let (status, answer) = stack.post(body.clone()).await;
    assert_eq!((status, &answer["enqueued"]), (200, &true.into()), "{answer}");
    assert_eq!(stack.post(body).await.1["enqueued"], false);
    // A send that timed out may still land: the frozen emulator takes the SDK's
    // attempts when it wakes. Work is never lost; extra copies are the same
    // (prediction, status) and the worker's claim runs it once.
    let messages = stack.messages_for(id).await;
    assert!(!messages.is_empty());
    assert!(messages.iter().all(|m| m.prediction_id == id && m.status.as_str() == "succeeded"));
}

#[tokio::test]
async fn dynamodb_hanging_is_a_503_and_the_repeat_completes_exactly_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", 3);
    {
        let _frozen = Frozen::new("dynamodb");
        let (status, _) = stack.post(body.clone()).await;
        assert_eq!(status, 503);
    }
    // The frozen emulator may still apply the write it had buffered: either way the
    // repeat must leave the prediction done and exactly one message.
    let (status, _) = stack.post(body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(stack.post(body).await.0, 200);
    assert_eq!(status_of(&stack.items(id).await["PRED"]), "succeeded");
    assert_eq!(stack.messages_for(id).await.len(), 1);
}

#[tokio::test]
async fn dynamodb_hanging_mid_output_write_still_writes_it_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await;
    let (id, ledger) = (PredictionId::random(), stack.ledger());
    let frozen = Frozen::new("dynamodb");
    let write = tokio::spawn(async move { ledger.store(id, &json!({"status": "succeeded"})).await });
    // Past the SDK's 2 s attempt timeout and within its 5 s operation timeout: the first
    // attempt waits in the frozen emulator's socket, and the retry follows it. Both are
    // applied when it wakes, as a write whose answer AWS lost would be.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    drop(frozen);
    write.await.unwrap().expect("the write succeeds once the emulator wakes");
    let (record, writes) = stack.output(id).await.expect("the output record");
    assert_eq!(
        (record, writes),
        (json!({"status": "succeeded"}), 1),
        "one write, however many attempts reached the table"
    );
}
