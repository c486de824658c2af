//! DynamoDB's own limits at the edges, on DynamoDB Local: a 340 KB body is kept apart
//! from its event, once, by the run that completes its work, and a large work result is
//! still marked done, once; the event's TTL starts only then, and the body's with it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use e2e::{Stack, api, payload};
use serde_json::json;
use time::OffsetDateTime;
use wriftai_hooks::internals::claim::{Outcome, run};
use wriftai_hooks::internals::message::WorkMessage;
use wriftai_hooks::internals::ports::{Claims, Reopened};
use wriftai_hooks::internals::prediction::Status;

#[tokio::test]
async fn a_340_kb_body_is_kept_apart_by_its_run_and_a_100_kb_result_ends_done_once() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", 340_000);
    assert_eq!(stack.post(body.clone()).await.0, 200);
    let items = stack.items(id).await;
    let event = &items["EVENT#succeeded"];
    assert!(!event.contains_key("payload"), "the event holds no body this large");
    assert!(!items.contains_key("BODY#succeeded"), "nothing is kept apart before a run");
    assert!(!event.contains_key("expires_at"), "no TTL while its work is not done");
    // The receiver's copy of the message, taken off the queue: this test runs it itself.
    assert_eq!(stack.messages_for(id).await.len(), 1);

    let message = WorkMessage::encode(id, &Status::Succeeded, &body);
    let (ledger, api, runs) = (stack.ledger(), api(), AtomicU32::new(0));
    let job = |_, _| {
        runs.fetch_add(1, Ordering::SeqCst);
        async { Ok(json!({"blob": "r".repeat(100_000)})) }
    };
    let deadline = OffsetDateTime::now_utc() + Duration::from_secs(60);
    assert_eq!(
        run(&ledger, &api, WorkMessage::decode(&message).unwrap(), deadline, job).await.unwrap(),
        Outcome::Done { attempt: 1, rerun: false }
    );
    assert_eq!(
        run(&ledger, &api, WorkMessage::decode(&message).unwrap(), deadline, job).await.unwrap(),
        Outcome::AlreadyDone
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let items = stack.items(id).await;
    let event = &items["EVENT#succeeded"];
    assert_eq!(event["work"].as_s().unwrap(), "done");
    let number = |name: &str| event[name].as_n().unwrap().parse::<i64>().unwrap();
    let expires_in = number("expires_at") - OffsetDateTime::now_utc().unix_timestamp();
    assert!((expires_in - number("keep_secs")).abs() < 60, "expires a TTL after the work: {expires_in} s");
    let kept = &items["BODY#succeeded"];
    assert_eq!(kept["body"].as_s().unwrap(), &body, "the run kept the body whole");
    let body_expires = kept["expires_at"].as_n().unwrap().parse::<i64>().unwrap();
    assert_eq!(body_expires, number("expires_at"), "the body expires with its event");
    let result: serde_json::Value = serde_json::from_str(event["work_result"].as_s().unwrap()).unwrap();
    assert!(result["omitted_bytes"].as_u64().unwrap() > 100_000, "{result}");

    // A replay sends the body kept apart, which stops expiring, as its event does, in
    // the same write, until the rerun completes.
    let reopened = ledger.reopen(id, &Status::Succeeded, &[], None).await.unwrap();
    assert_eq!(reopened, Reopened::Reopened { payload: Some(body), was_done: true });
    let items = stack.items(id).await;
    assert!(!items["EVENT#succeeded"].contains_key("expires_at"), "the event waits for its rerun");
    assert!(!items["BODY#succeeded"].contains_key("expires_at"), "and so does its body");
}
