//! `local-aws sqs` against moto and a fake function: what is deleted, comes back, reaches the DLQ.

mod common;

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use axum::http::StatusCode;
use common::{Answer, FakeFunction, LocalAws, Moto, Queues, REGION, count, eventually, queues};
use serde_json::{Value, json};

async fn send(sqs: &Client, queue: &Queues, bodies: &[&str]) {
    let kind = MessageAttributeValue::builder().data_type("String").string_value("work").build().unwrap();
    let entries = bodies.iter().enumerate().map(|(i, body)| {
        let entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(*body);
        entry.message_attributes("kind", kind.clone()).build().unwrap()
    });
    let out = sqs.send_message_batch().queue_url(&queue.url).set_entries(Some(entries.collect())).send().await.unwrap();
    assert!(out.failed().is_empty(), "send failed: {:?}", out.failed());
}

/// `local-aws sqs` on the queue, invoking the fake, with moto as the SQS endpoint.
fn start_mapping(moto: &Moto, queue: &Queues, function: &FakeFunction, extra: &[&str]) -> LocalAws {
    let mut args = vec!["sqs", "--queue-url", &queue.url, "--invoke-url", &function.url];
    args.extend_from_slice(extra);
    LocalAws::start(&args, &[("AWS_ENDPOINT_URL_SQS", &moto.endpoint)])
}

fn receive_counts(records: &[Value]) -> Vec<&str> {
    records.iter().map(|r| r["attributes"]["ApproximateReceiveCount"].as_str().unwrap_or("?")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn succeeded_messages_are_deleted_and_failed_ones_come_back() {
    let moto = Moto::start().await;
    let sqs = moto.client();
    let queue = queues(&sqs, 1, 100).await;
    send(&sqs, &queue, &["ok-1", "fail-1", "ok-2"]).await;
    let function = FakeFunction::start(Duration::ZERO, common::fail_bodies_starting_with_fail()).await;
    let mut app = start_mapping(&moto, &queue, &function, &["--function", "worker"]);

    eventually("fail-1 to be delivered three times", Duration::from_secs(30), async || {
        function.deliveries("fail-1").len() >= 3
    })
    .await;

    // By the third delivery of fail-1, two visibility timeouts have passed since the
    // first batch: a message that was not deleted would have come back too.
    assert_eq!(function.deliveries("ok-1").len(), 1);
    assert_eq!(function.deliveries("ok-2").len(), 1);
    assert_eq!(receive_counts(&function.deliveries("fail-1"))[..3], ["1", "2", "3"]);
    assert_eq!(count(&sqs, &queue.url).await, 1, "only fail-1 is left in the queue");
    assert!(function.calls().iter().all(|c| c.function == "worker"));

    let record = &function.deliveries("ok-1")[0];
    assert_eq!(record["eventSource"], "aws:sqs");
    assert_eq!(record["eventSourceARN"], queue.arn.as_str());
    assert_eq!(record["awsRegion"], REGION);
    assert!(record["md5OfBody"].as_str().is_some_and(|md5| md5.len() == 32), "{record}");
    assert_eq!(record["messageAttributes"]["kind"]["stringValue"], "work");
    for attribute in ["ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"] {
        assert!(record["attributes"][attribute].is_string(), "{attribute} missing from {record}");
    }
    assert!(record["receiptHandle"].as_str().is_some_and(|h| !h.is_empty()));

    let status = app.stop();
    assert!(status.success(), "exit {status:?}; log:\n{}", app.log());
    let log = app.log();
    assert!(
        log.lines().any(|l| l.contains("batch")
            && l.contains("received=3")
            && l.contains("failed=1")
            && l.contains("deleted=2")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_always_fails_ends_up_in_the_dlq_after_max_receive_count() {
    let moto = Moto::start().await;
    let sqs = moto.client();
    let queue = queues(&sqs, 1, 2).await;
    send(&sqs, &queue, &["fail-forever"]).await;
    let function = FakeFunction::start(Duration::ZERO, common::fail_bodies_starting_with_fail()).await;
    let mut app = start_mapping(&moto, &queue, &function, &[]);

    eventually("the message to reach the DLQ", Duration::from_secs(30), async || {
        count(&sqs, &queue.dlq_url).await == 1
    })
    .await;
    assert_eq!(count(&sqs, &queue.url).await, 0, "the message left the work queue");
    assert_eq!(receive_counts(&function.deliveries("fail-forever")), ["1", "2"]);

    // Nothing more arrives once it is in the DLQ.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(function.deliveries("fail-forever").len(), 2);
    let dead = sqs.receive_message().queue_url(&queue.dlq_url).send().await.unwrap();
    assert_eq!(dead.messages().first().and_then(|m| m.body()), Some("fail-forever"));
    assert!(app.stop().success());
}

/// The first invocation answers `first`; later ones succeed. Nothing of the first batch
/// may be deleted: every message comes back once and is then deleted.
async fn first_answer_fails_the_whole_batch(first: (StatusCode, Value)) {
    let moto = Moto::start().await;
    let sqs = moto.client();
    let queue = queues(&sqs, 1, 100).await;
    send(&sqs, &queue, &["m-1", "m-2"]).await;
    let answer: Answer = Box::new(move |n, _| if n == 0 { first.clone() } else { (StatusCode::OK, json!({})) });
    let function = FakeFunction::start(Duration::ZERO, answer).await;
    let mut app = start_mapping(&moto, &queue, &function, &[]);

    eventually("the queue to empty", Duration::from_secs(30), async || count(&sqs, &queue.url).await == 0).await;
    let first_batch = function.calls()[0].event["Records"].as_array().cloned().unwrap_or_default();
    assert_eq!(first_batch.len(), 2, "both messages were in the failed batch");
    for body in ["m-1", "m-2"] {
        assert_eq!(receive_counts(&function.deliveries(body)), ["1", "2"], "{body}");
    }
    assert!(app.stop().success());
    assert!(app.log().contains("batch failed as a whole"), "{}", app.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_error_fails_the_whole_batch() {
    let error = json!({"errorType": "&alloc::boxed::Box<dyn core::error::Error>", "errorMessage": "boom"});
    first_answer_fails_the_whole_batch((StatusCode::INTERNAL_SERVER_ERROR, error)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_item_identifier_fails_the_whole_batch() {
    let answer = json!({"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]});
    first_answer_fails_the_whole_batch((StatusCode::OK, answer)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batching_window_gathers_messages_sent_apart_into_one_batch() {
    let moto = Moto::start().await;
    let sqs = moto.client();
    let queue = queues(&sqs, 30, 100).await;
    let function = FakeFunction::start(Duration::ZERO, Box::new(|_, _| (StatusCode::OK, json!(null)))).await;
    let mut app = start_mapping(&moto, &queue, &function, &["--batch-size", "3", "--window-ms", "2000"]);
    eventually("local-aws to poll", Duration::from_secs(10), async || app.log().contains("polling")).await;

    send(&sqs, &queue, &["w-1"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&sqs, &queue, &["w-2", "w-3"]).await;

    eventually("the queue to empty", Duration::from_secs(20), async || count(&sqs, &queue.url).await == 0).await;
    let calls = function.calls();
    assert_eq!(calls.len(), 1, "one invocation for all three");
    assert_eq!(calls[0].event["Records"].as_array().map(Vec::len), Some(3));
    assert!(app.stop().success());
}
