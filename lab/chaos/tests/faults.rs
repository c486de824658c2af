//! When DynamoDB or SQS stops answering, or answers are lost.
//! - The receiver: a 5xx, so WriftAI delivers again, and the repeat finishes the job:
//!   recorded once, work enqueued.
//! - The work's output write, applied twice by a hung DynamoDB: still one record, and
//!   the test worker's count of it still one write.
//! - The worker's claim, completion and output write when the SDK gives up on answers
//!   lost after the write: each still done once, by the same run.
//! - The worker under a DynamoDB whose answers come 8 s late: every batch is reported
//!   before its deadline, no work runs twice, and no completion is lost.
//! - A step's intent applied with every answer lost: the run takes it back, so the next
//!   one runs the step instead of failing it as unknown.
//!
//! The emulator is frozen with SIGSTOP (a hung backend, the worst case: the SDK must time
//! out) or the fault proxy's rules are set, so these tests run one at a time in their own
//! binary.

use std::time::Duration;

use chaos::{FaultProxy, Frozen};
use e2e::{Stack, payload, status_of, writes};
use serde_json::json;
use time::OffsetDateTime;
use wriftai_hooks::Records;
use wriftai_hooks::internals::adapters::backend::Table;
use wriftai_hooks::internals::adapters::dynamo::DynamoLedger;
use wriftai_hooks::internals::ports::{Claim, Claims, RecordTable, StepKey, StepState};
use wriftai_hooks::internals::prediction::{PredictionId, Status};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn sqs_hanging_is_a_503_and_the_repeat_enqueues_the_work() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", 3);
    {
        // moto: SQS (and S3), one process.
        let _frozen = Frozen::new("moto");
        let (status, answer) = stack.post(body.clone()).await;
        assert_eq!((status, &answer["error"]), (503, &"unavailable".into()));
    }
    assert_eq!(stack.items(id).await["EVENT#succeeded"]["enqueue"].as_s().unwrap(), "queued");
    // Undone work (no worker runs here): each repeat sends it; the claim absorbs copies.
    let (status, answer) = stack.post(body.clone()).await;
    assert_eq!((status, &answer["enqueued"]), (200, &true.into()), "{answer}");
    assert_eq!(stack.post(body).await.1["enqueued"], true);
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
    // repeat must leave the prediction recorded with one event and its work sent; no
    // worker runs here, so the work stays undone and each accepted repeat sends it
    // again (the worker's claim absorbs copies).
    let (status, first) = stack.post(body.clone()).await;
    assert_eq!(status, 200);
    let (status, second) = stack.post(body).await;
    assert_eq!((status, &second["outcome"], &second["enqueued"]), (200, &"duplicate".into(), &true.into()));
    assert_eq!(status_of(&stack.items(id).await["PRED"]), "succeeded");
    let messages = stack.messages_for(id).await;
    assert_eq!(messages.len(), 2, "one a delivery accepted: {first}, {second}");
    assert!(messages.iter().all(|m| m.prediction_id == id && m.status.as_str() == "succeeded"));
}

#[tokio::test]
async fn dynamodb_hanging_mid_output_write_still_writes_it_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await;
    // The functions' store (a put) and the test worker's (which counts its calls): the
    // chaos suite's verdict rests on the count being right under the same fault.
    let (id, ledger, counted) = (PredictionId::random(), Table::from(stack.ledger()), counting(stack.ledger()));
    let frozen = Frozen::new("dynamodb");
    let both = tokio::spawn(async move {
        let put = Records::new(&ledger, None).store(id, "result", &json!({"status": "succeeded"})).await;
        let counted = Records::new(&counted, None);
        (put, counted.store(id, "counted", &json!({"status": "succeeded"})).await)
    });
    // Past the SDK's 2 s attempt timeout and within its 5 s operation timeout: the first
    // attempt waits in the frozen emulator's socket, and the retry follows it. Both are
    // applied when it wakes, as a write whose answer AWS lost would be.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    drop(frozen);
    let (put, count) = both.await.unwrap();
    put.expect("the put succeeds once the emulator wakes");
    count.expect("the counted write succeeds once the emulator wakes");
    let (record, _) = stack.record(id, "result").await.expect("the result record");
    assert_eq!(record, json!({"status": "succeeded"}), "one record, however many attempts reached the table");
    let (_, writes) = stack.record(id, "counted").await.expect("the counted record");
    assert_eq!(writes, 1, "one write, however many attempts reached the table");
}

/// The table as the test worker's stores write it: each put counts itself.
fn counting(ledger: DynamoLedger) -> Table {
    Table::from(ledger.counting_stores(|_| {}))
}

/// The ledger the functions use, with its calls going through the fault proxy (the
/// tests' own go straight to the emulator).
fn through_the_proxy(stack: &Stack, proxy: &FaultProxy) -> DynamoLedger {
    stack.ledger_on(aws_sdk_dynamodb::Client::from_conf(proxied(stack, proxy)))
}

fn proxied(stack: &Stack, proxy: &FaultProxy) -> aws_sdk_dynamodb::Config {
    aws_sdk_dynamodb::config::Builder::from(&stack.aws).endpoint_url(proxy.url()).build()
}

/// The fault proxy's answer to the SDK's three attempts at each `UpdateItem`: either
/// all three applied with their answers lost, or the first lost and the other two
/// throttled. Either way the SDK gives up, and its error (the last attempt's) cannot
/// say whether the write was applied.
fn sdk_gives_up(throttle_after_first: bool) -> serde_json::Value {
    let lost = |times| json!({"operation": "UpdateItem", "kind": "lost_answer", "rate": 1.0, "times": times});
    let throttled = json!({"operation": "UpdateItem", "kind": "throttle", "rate": 1.0, "times": 2});
    json!({"rules": if throttle_after_first { vec![lost(1), throttled] } else { vec![lost(3)] }})
}

#[tokio::test]
async fn claim_completion_and_output_write_hold_when_the_sdk_gives_up_on_lost_answers() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await;
    let proxy = FaultProxy::from_env().expect("the stack runs with FAULTS=1");
    let ledger = through_the_proxy(&stack, &proxy);
    // The output write as the test worker makes it: the production put plus a count.
    let counted = counting(through_the_proxy(&stack, &proxy));
    let records = Records::new(&counted, None);
    let (status, now) = (Status::parse("succeeded").unwrap(), OffsetDateTime::now_utc());
    for throttle_after_first in [false, true] {
        let id = stack.registered().await;
        assert_eq!(stack.post(payload(id, "succeeded", 3)).await.0, 200);
        let lost = || async { proxy.stats().await["injected"]["lost_answer"].as_u64().unwrap_or(0) };
        let before = lost().await;

        proxy.set(sdk_gives_up(throttle_after_first)).await;
        let claim = ledger.claim(id, &status, now + Duration::from_secs(60), now).await.unwrap();
        let Claim::Acquired { token, attempt, .. } = claim else { panic!("the claim is ours: {claim:?}") };
        assert_eq!(attempt, 1, "claimed once, however many sends were applied");
        proxy.set(sdk_gives_up(throttle_after_first)).await;
        assert!(
            ledger.complete(id, &status, &token, &json!({"stored": true}), &[], now).await.unwrap(),
            "completed by us"
        );
        proxy.set(sdk_gives_up(throttle_after_first)).await;
        records.store(id, "result", &json!({"status": "succeeded"})).await.unwrap();
        let injected = lost().await - before;
        proxy.set(json!({"rules": []})).await;

        assert_eq!(injected, if throttle_after_first { 3 } else { 9 }, "the answers the SDK lost");
        let items = stack.items(id).await;
        let event = &items["EVENT#succeeded"];
        assert_eq!((event["work"].as_s().unwrap().as_str(), event["done_by"].as_s().unwrap()), ("done", &token));
        assert_eq!(writes(&items["RECORD#result"]), 1);
    }
}

#[tokio::test]
async fn a_step_whose_intent_went_unconfirmed_is_taken_back_and_runs_on_the_next_try() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await;
    let proxy = FaultProxy::from_env().expect("the stack runs with FAULTS=1");
    let ledger = through_the_proxy(&stack, &proxy);
    let id = stack.registered().await;
    let step = StepKey { id, status: &Status::Failed, name: "notify" };
    // Every send of the intent is applied and its answer lost, for as long as the run
    // has: the run never learns it began the step, so it never runs it.
    proxy
        .set(json!({"rules": [{"operation": "PutItem", "kind": "lost_answer", "rate": 1.0, "contains": "started_by"}]}))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let begun =
        wriftai_hooks::internals::deadline::within(deadline, ledger.begin_step(step, OffsetDateTime::now_utc())).await;
    proxy.set(json!({"rules": []})).await;
    assert!(begun.is_err(), "its outcome unknown: {begun:?}");
    assert!(tokio::time::Instant::now() < deadline + Duration::from_millis(500), "within the run's time");
    assert!(!stack.items(id).await.contains_key("STEP#failed#notify"), "the intent it left was taken back");
    // The next run begins the step afresh: it never ran, so it is not unknown.
    let again = ledger.begin_step(step, OffsetDateTime::now_utc()).await.unwrap();
    assert!(matches!(again, StepState::Begun { .. }), "{again:?}");
}

/// A service config that finds nothing in the environment.
#[derive(Debug)]
struct NoEndpointVariables;

impl aws_types::service_config::LoadServiceConfig for NoEndpointVariables {
    fn load_config(&self, _: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        None
    }
}

/// A job that counts its runs per prediction: the work's side effect, seen from outside.
#[derive(Default)]
struct Counting(std::sync::Mutex<std::collections::HashMap<PredictionId, u32>>);

impl wriftai_hooks::internals::Job for Counting {
    async fn run(&self, prediction: wriftai_hooks::Prediction) -> Result<serde_json::Value, wriftai_hooks::BoxError> {
        *self.0.lock().unwrap().entry(prediction.id).or_default() += 1;
        Ok(json!({"ran": true}))
    }
}

impl Counting {
    fn runs(&self, id: PredictionId) -> u32 {
        self.0.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

/// One SQS batch of `bodies` for the worker, with `seconds` to its deadline.
fn batch(bodies: &[String], seconds: u64) -> lambda_runtime::LambdaEvent<aws_lambda_events::event::sqs::SqsEvent> {
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    for (n, body) in bodies.iter().enumerate() {
        let mut message = aws_lambda_events::event::sqs::SqsMessage::default();
        (message.message_id, message.body) = (Some(format!("m-{n}")), Some(body.clone()));
        event.records.push(message);
    }
    let mut context = lambda_runtime::Context::default();
    let now_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    context.deadline = u64::try_from(now_ms).unwrap() + seconds * 1000;
    lambda_runtime::LambdaEvent::new(event, context)
}

#[tokio::test]
async fn with_dynamodb_answers_8_s_late_batches_are_reported_in_time_and_no_work_runs_twice() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let stack = Stack::from_env().await;
    let proxy = FaultProxy::from_env().expect("the stack runs with FAULTS=1");
    // Four units of work, recorded through the receiver; this test hands their messages
    // to a worker of its own, whose calls go through the fault proxy.
    let (mut ids, mut bodies) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        let id = stack.registered().await;
        let body = payload(id, "succeeded", 3);
        assert_eq!(stack.post(body.clone()).await.0, 200);
        assert_eq!(stack.messages_for(id).await.len(), 1);
        bodies.push(wriftai_hooks::internals::message::WorkMessage::encode(id, &Status::Succeeded, &body));
        ids.push(id);
    }
    let config =
        wriftai_hooks::internals::WorkerConfig::from_env(&wriftai_hooks::internals::config::Env::process()).unwrap();
    // Every call through the proxy: the stack's endpoint variables (which a service's
    // own config would read first) set aside.
    let mut aws = stack.aws.to_builder().endpoint_url(proxy.url());
    aws.set_service_config(None::<NoEndpointVariables>);
    let aws = aws.build();
    let api = wriftai_hooks::WriftAi::new(config.api.clone()).unwrap();
    let ingest = wriftai_hooks::internals::ingest::Ingest::on_aws(&aws, &config.ingest);
    let worker = wriftai_hooks::internals::Worker::new(ingest, api, config.concurrency, Counting::default());
    let late = |contains: Option<&str>| {
        json!({"rules": [{"operation": "DynamoDB_20120810", "kind": "delay", "rate": 1.0, "hold_ms": 8000,
                          "contains": contains}]})
    };
    let failed = |response: &aws_lambda_events::event::sqs::SqsBatchResponse| response.batch_item_failures.len();

    // Every answer late: no claim is ever known to be won, nothing runs, and the batch
    // is still answered before its deadline, each message failed alone.
    proxy.set(late(None)).await;
    let started = std::time::Instant::now();
    let forwarded = proxy.stats().await["forwarded"].as_u64().unwrap();
    let response = worker.handle(batch(&bodies, 12)).await.unwrap();
    assert!(
        proxy.stats().await["forwarded"].as_u64().unwrap() > forwarded,
        "the worker's calls went through the proxy"
    );
    assert!(started.elapsed() < Duration::from_secs(12), "reported after {:?}", started.elapsed());
    assert_eq!(failed(&response), 4);
    assert!(ids.iter().all(|id| job_runs(&worker, *id) == 0));
    // The claims that landed expire with that deadline.
    tokio::time::sleep(Duration::from_secs(12).saturating_sub(started.elapsed()) + Duration::from_secs(1)).await;

    // Only the completions late: the work runs, its completion lands unknown to the run,
    // and the batch is still answered before its deadline.
    proxy.set(late(Some(":done"))).await;
    let started = std::time::Instant::now();
    let response = worker.handle(batch(&bodies, 30)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "reported after {:?}", started.elapsed());
    assert_eq!(failed(&response), 4, "no completion was known to land");
    assert!(ids.iter().all(|id| job_runs(&worker, *id) == 1));

    // The messages come back once DynamoDB answers again: the completions had landed,
    // so nothing runs twice and no completion is lost.
    proxy.set(json!({"rules": []})).await;
    let response = worker.handle(batch(&bodies, 30)).await.unwrap();
    assert_eq!(failed(&response), 0);
    for id in ids {
        assert_eq!(job_runs(&worker, id), 1, "{id}: ran once");
        let event = &stack.items(id).await["EVENT#succeeded"];
        assert_eq!(event["work"].as_s().unwrap(), "done", "{id}: its completion landed");
    }
}

type AwsWorker = wriftai_hooks::internals::Worker<Counting>;

fn job_runs(worker: &AwsWorker, id: PredictionId) -> u32 {
    worker.job().runs(id)
}
