//! The worker's batch on the in-memory adapters, seen from its metrics and its queue:
//! each unit of work's lags in the batch's one document, a replay's rerun left out of
//! the end-to-end lag, and the trace a message carried passed on to the work it causes.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wriftai_hooks::WriftAi;
use wriftai_hooks::internals::adapters::memory::{MemoryLedger, MemoryQueue, MemoryWriftAi};
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::error::BoxError;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::message::{Message, WorkMessage};
use wriftai_hooks::internals::ports::{Claims, Ledger};
use wriftai_hooks::internals::prediction::{Prediction, PredictionId, Status};
use wriftai_hooks::internals::trace::{AWS_TRACE_HEADER, TraceHeader};
use wriftai_hooks::internals::{Job, Worker};

/// Work that takes `0` ms, or what the input's `sleep_ms` asks.
struct Sleepy;

impl Job for Sleepy {
    async fn run(&self, prediction: Prediction) -> Result<Value, BoxError> {
        tokio::time::sleep(Duration::from_millis(prediction.input["sleep_ms"].as_u64().unwrap_or(0))).await;
        Ok(json!({"ran": true}))
    }
}

type TestWorker = Worker<Sleepy>;

fn worker() -> TestWorker {
    let (table, queue) = (MemoryLedger::default().into(), MemoryQueue::default().into());
    let ingest = Ingest::new(table, queue, ActOn::terminal(), Duration::from_secs(60));
    Worker::new(ingest, WriftAi::in_memory(), 4, Sleepy)
}

/// `ago` before now, as WriftAI writes its times.
fn ago(ago: Duration) -> String {
    (OffsetDateTime::now_utc() - ago).format(&Rfc3339).unwrap()
}

/// A `succeeded` body that says WriftAI completed it at `updated_at`.
fn succeeded(id: PredictionId, updated_at: &str, sleep_ms: u64) -> String {
    json!({"id": id.to_string(), "status": "succeeded", "updated_at": updated_at, "input": {"sleep_ms": sleep_ms}})
        .to_string()
}

/// A prediction whose `succeeded` event the receiver recorded: the work message.
async fn delivered(ledger: &MemoryLedger, updated_at: &str, sleep_ms: u64) -> (PredictionId, String) {
    let (id, now) = (PredictionId::random(), OffsetDateTime::now_utc());
    ledger.register(id, now).await.unwrap();
    let raw = succeeded(id, updated_at, sleep_ms);
    let queue = MemoryQueue::default();
    let ingest = Ingest::new(ledger, &queue, ActOn::terminal(), Duration::from_secs(60));
    ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, now).await.unwrap();
    (id, WorkMessage::encode(id, &Status::Succeeded, &raw))
}

/// A batch of (body, attributes) records, 30 s before its deadline.
fn batch(records: &[(&str, &[(&str, String)])]) -> LambdaEvent<SqsEvent> {
    let mut event = SqsEvent::default();
    for (n, (body, attributes)) in records.iter().enumerate() {
        let mut message = SqsMessage::default();
        (message.message_id, message.body) = (Some(format!("m{n}")), Some((*body).to_owned()));
        message.attributes = attributes.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        event.records.push(message);
    }
    let mut context = lambda_runtime::Context::default();
    let now_ms = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap();
    context.deadline = now_ms + 30_000;
    LambdaEvent::new(event, context)
}

fn sent_ago(ago: Duration) -> String {
    let ms = (OffsetDateTime::now_utc() - ago).unix_timestamp_nanos() / 1_000_000;
    ms.to_string()
}

#[tokio::test]
async fn a_batch_writes_each_units_queue_wait_work_and_end_to_end_in_one_document() {
    let worker = worker();
    let (_, fast) = delivered(worker_ledger(&worker), &ago(Duration::from_secs(2)), 0).await;
    let (_, slow) = delivered(worker_ledger(&worker), &ago(Duration::from_secs(2)), 300).await;
    let sent = [("SentTimestamp", sent_ago(Duration::from_millis(1500)))];
    let (response, metrics) = worker.batch(batch(&[(&fast, &sent), (&slow, &sent)])).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(metrics.counted("WorkDone"), Some(2));
    let waits = metrics.durations("QueueWait");
    assert!(waits.len() == 2 && waits.iter().all(|ms| (1500.0..3000.0).contains(ms)), "{waits:?}");
    let mut work = metrics.durations("WorkDuration").to_vec();
    work.sort_by(f64::total_cmp);
    assert!(work.len() == 2 && work[0] < 200.0 && (300.0..1300.0).contains(&work[1]), "{work:?}");
    let end_to_end = metrics.durations("EndToEnd");
    assert!(end_to_end.len() == 2 && end_to_end.iter().all(|ms| (2000.0..4000.0).contains(ms)), "{end_to_end:?}");
    let doc = metrics.document(0);
    assert_eq!(doc["EndToEnd"].as_array().map(Vec::len), Some(2), "one array for the batch: {doc}");
}

#[tokio::test]
async fn a_replays_rerun_counts_its_work_but_not_its_end_to_end_and_a_repeat_neither() {
    let worker = worker();
    let ledger = worker_ledger(&worker);
    let (id, body) = delivered(ledger, &ago(Duration::from_secs(3600)), 0).await;
    let (_, first) = worker.batch(batch(&[(&body, &[])])).await;
    assert_eq!((first.durations("WorkDuration").len(), first.durations("EndToEnd").len()), (1, 1));
    assert!(first.durations("QueueWait").is_empty(), "no SentTimestamp, no queue wait");
    let (_, repeat) = worker.batch(batch(&[(&body, &[])])).await;
    assert_eq!(repeat.counted("WorkAlreadyDone"), Some(1));
    assert!(repeat.durations("WorkDuration").is_empty() && repeat.durations("EndToEnd").is_empty());
    ledger.reopen(id, &Status::Succeeded, &[], None).await.unwrap();
    let (_, rerun) = worker.batch(batch(&[(&body, &[])])).await;
    assert_eq!(rerun.counted("WorkDone"), Some(1));
    assert_eq!((rerun.durations("WorkDuration").len(), rerun.durations("EndToEnd").len()), (1, 0));
}

#[tokio::test]
async fn a_completion_the_body_only_claims_in_the_future_or_long_ago_measures_no_end_to_end() {
    let worker = worker();
    let (_, future) = delivered(worker_ledger(&worker), "2999-01-01T00:00:00Z", 0).await;
    let (_, ancient) = delivered(worker_ledger(&worker), &ago(Duration::from_secs(20 * 86_400)), 0).await;
    let (response, metrics) = worker.batch(batch(&[(&future, &[]), (&ancient, &[])])).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(metrics.counted("WorkDone"), Some(2));
    assert!(metrics.durations("EndToEnd").is_empty(), "{:?}", metrics.durations("EndToEnd"));
}

#[tokio::test]
async fn the_work_a_check_enqueues_carries_the_trace_the_check_came_with() {
    let worker = worker();
    let id = PredictionId::random();
    worker_ledger(&worker).register(id, OffsetDateTime::now_utc()).await.unwrap();
    worker_source(&worker).set(&succeeded(id, &ago(Duration::from_secs(1)), 0));
    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let check = Message::check(id);
    let (response, _) = worker.batch(batch(&[(&check, &[(AWS_TRACE_HEADER, header.to_owned())])])).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = worker_queue(&worker).sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, TraceHeader::parse(header), "the work joins the receiver's trace");
}

fn worker_ledger(worker: &TestWorker) -> &MemoryLedger {
    worker.ingest().ledger().memory().unwrap()
}

fn worker_queue(worker: &TestWorker) -> &MemoryQueue {
    worker.ingest().queue().memory().unwrap()
}

fn worker_source(worker: &TestWorker) -> &MemoryWriftAi {
    worker.source().memory().unwrap()
}
