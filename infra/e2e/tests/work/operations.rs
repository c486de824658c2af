//! The operations commands of the `hooks` CLI against the running stack: `inspect`,
//! `status` and `redrive` (`replay` runs in outputs.rs, where a rerun has a side effect
//! to count).

use e2e::{Stack, eventually, hooks};
use serde_json::{Value, json};
use shared::message::{Message, WorkMessage};
use shared::prediction::{PredictionId, Status};

async fn create(stack: &Stack, input: Value) -> PredictionId {
    super::create(stack, "acme/echo", input).await
}

fn attempts(item: &e2e::Item) -> u64 {
    item.get("work_attempts").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The line `hooks redrive` printed about `needle` (a prediction ID or a body).
fn line_of<'a>(said: &'a str, needle: &str) -> &'a str {
    said.lines().find(|line| line.contains(needle)).unwrap_or_else(|| panic!("nothing about {needle} in:\n{said}"))
}

#[tokio::test]
async fn inspect_and_status_say_what_happened() {
    let stack = Stack::from_env().await;
    let id = create(&stack, json!({"prompt": "inspect me"})).await;
    eventually(60, "the work done", || stack.record(id, "result")).await;

    let text = hooks(&["inspect", &id.to_string()]).unwrap();
    for expected in ["registered", "received succeeded, in order", "work: done, 1 attempt", "record result"] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    let report: Value = serde_json::from_str(&hooks(&["inspect", &id.to_string(), "--json"]).unwrap()).unwrap();
    assert_eq!((report["status"].as_str(), report["unfinished"].as_bool()), (Some("succeeded"), Some(false)));
    let succeeded = report["events"].as_array().unwrap().iter().find(|e| e["status"] == "succeeded").unwrap();
    assert_eq!((succeeded["work"]["state"].as_str(), succeeded["work"]["attempts"].as_u64()), (Some("done"), Some(1)));
    assert_eq!(report["records"][0]["record"]["output"], "echo: inspect me");

    let unknown = PredictionId::random();
    let refused = hooks(&["inspect", &unknown.to_string()]).unwrap_err();
    assert!(refused.contains("no such prediction"), "{refused}");

    let status: Value = eventually(30, "a reconciler run recorded", || async {
        let status: Value = serde_json::from_str(&hooks(&["status", "--json"]).ok()?).ok()?;
        status["last_reconciler_run"]["summary"].is_object().then_some(status)
    })
    .await;
    for part in ["unfinished_predictions", "unfinished_work"] {
        assert!(status[part]["count"].is_u64(), "{part}: {status}");
    }
    assert!(status["work_queue"]["visible"].is_u64() && status["dead_letter_queue"]["visible"].is_u64(), "{status}");
    let text = hooks(&["status"]).unwrap();
    assert!(text.contains("unfinished work:") && text.contains("dead-letter queue:"), "{text}");
}

#[tokio::test]
async fn redrive_sends_failed_work_back_deletes_done_work_and_leaves_what_cannot_run() {
    let stack = Stack::from_env().await;
    let dlq = std::env::var("DLQ_URL").unwrap();
    let to_dlq = |body: String| {
        let send = stack.sqs.send_message().queue_url(&dlq).message_body(body);
        async move { send.send().await.unwrap() }
    };
    // Not a work message: it would fail again.
    let poison = format!("not a work message {}", PredictionId::random());
    to_dlq(poison.clone()).await;
    // Work since done (a replay or the reconciler ran it): its message must not run it again.
    let done = create(&stack, json!({"prompt": "done already"})).await;
    eventually(60, "the work done", || stack.record(done, "result")).await;
    to_dlq(WorkMessage::encode(done, &Status::Succeeded, "null")).await;
    // Checks, as an unsigned stack sends them: one of a prediction still unfinished goes
    // back; one of a finished prediction has nothing left to learn.
    let open = stack.registered().await;
    to_dlq(Message::check(open)).await;
    to_dlq(Message::check(done)).await;
    // Work that fails every time: five tries, then the DLQ.
    let failing = create(&stack, json!({"prompt": "fails", "test_hook": "fail_always"})).await;
    let in_dlq = |id: PredictionId| {
        let stack = &stack;
        async move { stack.dead_letters(None).await.iter().any(|body| body.contains(&id.to_string())).then_some(()) }
    };
    eventually(120, "the failing work in the DLQ", || in_dlq(failing)).await;

    // The DLQ to this test alone while it redrives: another test's look would hide
    // messages from it.
    let held = e2e::dlq_lock().await;
    let dry = hooks(&["redrive", "--dry-run", "--max", "1000"]).unwrap();
    assert!(line_of(&dry, &failing.to_string()).ends_with("would move it back"), "{dry}");
    assert!(line_of(&dry, &format!("{done} succeeded")).ends_with("would delete it: the work is done"), "{dry}");
    assert!(line_of(&dry, &poison).contains("left in the DLQ: it fails again (not a message of this stack)"), "{dry}");
    assert!(line_of(&dry, &format!("{open} check")).ends_with("would move it back"), "{dry}");
    assert!(line_of(&dry, &format!("{done} check")).ends_with("would delete it: the work is done"), "{dry}");
    let still: Vec<String> = stack.dead_letters(Some(&held)).await;
    for needle in [failing.to_string(), done.to_string(), poison.clone()] {
        assert!(still.iter().any(|body| body.contains(&needle)), "a dry run moved {needle}");
    }

    let said = hooks(&["redrive", "--max", "1000"]).unwrap();
    let failing_line = line_of(&said, &failing.to_string());
    assert!(failing_line.contains("last failure: the work failed: test hook: fail on every attempt"), "{failing_line}");
    assert!(failing_line.ends_with("moved back to the work queue"), "{failing_line}");
    assert!(
        line_of(&said, &format!("{done} succeeded")).ends_with("deleted: the work is done, nothing runs twice"),
        "{said}"
    );
    assert!(line_of(&said, &poison).contains("left in the DLQ"), "{said}");
    assert!(line_of(&said, &format!("{open} check")).ends_with("moved back to the work queue"), "{said}");
    assert!(
        line_of(&said, &format!("{done} check")).ends_with("deleted: the work is done, nothing runs twice"),
        "{said}"
    );

    // Safe to run twice: the done message is gone, the poison is left again.
    let again = hooks(&["redrive", "--max", "1000"]).unwrap();
    assert!(!again.contains(&done.to_string()), "{again}");
    assert!(line_of(&again, &poison).contains("left in the DLQ"), "{again}");
    drop(held);

    // The redriven work fails again, five more times, and is back in the DLQ.
    eventually(120, "the redriven work failed again", || async {
        let event = stack.items(failing).await.remove("EVENT#succeeded")?;
        (attempts(&event) >= 10).then_some(())
    })
    .await;
    eventually(60, "the failing work back in the DLQ", || in_dlq(failing)).await;
    // The done work never ran again.
    let (_, writes) = stack.record(done, "result").await.unwrap();
    assert_eq!(writes, 1);
}
