//! The operations commands of the `hooks` CLI against the running stack: `inspect`,
//! `status`, `redrive`, `replay` by filter and `forget` (one prediction's `replay` runs
//! in files.rs, where a rerun has a side effect to count).

use e2e::{Stack, eventually, hooks, hooks_exit};
use serde_json::{Value, json};
use wriftai_hooks::internals::message::{Message, WorkMessage};
use wriftai_hooks::internals::ports::WorkQueue;
use wriftai_hooks::internals::prediction::{PredictionId, Status};

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
    for expected in [
        "registered",
        // (`pending` may beat the registration, be refused and come after `started`:
        // then nothing keeps it.)
        "received started, in order",
        "received succeeded, in order",
        "work: done, 1 attempt",
        "record result",
    ] {
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
    // Work that fails every time: five tries, then the DLQ. First, since those tries take
    // the longest of what this test waits for.
    let failing = create(&stack, json!({"prompt": "fails", "test_hook": "fail_always"})).await;
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

/// Now less a few seconds, as `--since` takes it: the window of one test's events.
fn a_moment_ago() -> String {
    let at = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn item_of(items: &std::collections::HashMap<String, e2e::Item>, sk: &str, name: &str) -> Option<String> {
    items.get(sk)?.get(name)?.as_s().ok().cloned()
}

#[tokio::test]
async fn a_replay_by_filter_counts_first_then_sends_each_match_once_however_often_it_is_run() {
    let stack = Stack::from_env().await;
    let since = a_moment_ago();
    // A model of this test's own: the filter selects nothing of the tests beside it.
    let model = format!("bulk/{}", PredictionId::random());
    let done_a = super::create(&stack, &model, json!({"prompt": "a"})).await;
    let done_b = super::create(&stack, &model, json!({"prompt": "b"})).await;
    let failing = super::create(&stack, &model, json!({"prompt": "c", "test_hook": "fail_always"})).await;
    for id in [done_a, done_b] {
        eventually(60, "the work done", || stack.record(id, "result")).await;
    }
    eventually(60, "a failed run", || async { item_of(&stack.items(failing).await, "EVENT#succeeded", "failed_at") })
        .await;

    let filter = ["replay", "--model", &model, "--since", &since];
    let dry = hooks(&[&filter[..], &["--dry-run"]].concat()).unwrap();
    let none_yet = "0 replayed by this run already, 0 of them unfinished and sent again";
    assert!(dry.contains(&format!("3 matched (1 failed, 2 done); {none_yet}; 3 to send")), "{dry}");
    assert!(dry.contains(&failing.to_string()) && dry.contains("dry run: nothing sent"), "{dry}");
    assert!(
        item_of(&stack.items(done_a).await, "EVENT#succeeded", "replay_run").is_none(),
        "a dry run changes nothing"
    );

    let done_only = [&filter[..], &["--work", "done", "--rate", "50"]].concat();
    let said = hooks(&done_only).unwrap();
    assert!(said.contains(&format!("2 matched (2 done); {none_yet}; 2 to send")), "{said}");
    assert!(said.contains("sent 2 of 2"), "{said}");
    for id in [done_a, done_b] {
        eventually(60, "the replayed work stored again", || async {
            stack.record(id, "result").await.filter(|(_, writes)| *writes == 2)
        })
        .await;
        eventually(60, "the replayed work done", || async {
            item_of(&stack.items(id).await, "EVENT#succeeded", "replay").is_none().then_some(())
        })
        .await;
    }
    // The same command again (an interrupted run, resumed): nothing is sent twice.
    let again = hooks(&done_only).unwrap();
    assert!(again.contains("2 matched (2 done); 2 replayed by this run already, 0 of them unfinished"), "{again}");
    assert!(again.contains("sent 0 of 0 (0 more sent again)") && again.contains("--run <name>"), "{again}");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for id in [done_a, done_b] {
        assert_eq!(stack.record(id, "result").await.unwrap().1, 2, "{id}: replayed once, not twice");
    }
    // `--work done` never selected the failed one.
    assert_eq!(stack.items(failing).await["EVENT#succeeded"].get("replay_run"), None);

    // Bad input to each new flag: exit 2, and nothing changed.
    for bad in [
        &["--since", "yesterday"][..],
        &["--until", "soon"],
        &["--model", "no-slash"],
        &["--work", "lost"],
        &["--rate", "0"],
        &["--run", "two words"],
        &["--since", "1h", "--until", "2h"],
    ] {
        let (code, _, stderr) = hooks_exit(&[&["replay"][..], bad].concat());
        assert_eq!(code, Some(2), "{bad:?}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{bad:?}: a clear error");
    }
    assert_eq!(hooks_exit(&["replay"]).0, Some(2), "neither an ID nor a filter");
    assert_eq!(hooks_exit(&["replay", &done_a.to_string(), "--work", "done"]).0, Some(2), "an ID and a filter");
    assert_eq!(stack.record(done_a, "result").await.unwrap().1, 2);
}

#[tokio::test]
async fn forget_erases_a_prediction_everywhere_and_what_comes_for_it_later_brings_nothing_back() {
    let stack = Stack::from_env().await;
    let id = create(&stack, json!({"prompt": "erase me", "sim": {"output_url": true}})).await;
    // Done, its claim given back: while a run holds the work, forget refuses.
    eventually(60, "the work done", || async { item_of(&stack.items(id).await, "EVENT#succeeded", "work") }).await;
    assert!(!e2e::objects(&stack.aws, id).await.is_empty(), "its output file is in the bucket");

    let said = hooks(&["forget", &id.to_string()]).unwrap();
    for expected in
        ["forgotten; deleted:", "item PRED", "item EVENT#succeeded", "item RECORD#result", "object predictions/"]
    {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
    let left: Vec<String> = stack.items(id).await.into_keys().collect();
    assert_eq!(left, ["FORGOTTEN"], "only the mark is left");
    assert!(e2e::objects(&stack.aws, id).await.is_empty());

    // WriftAI delivers again: answered, so it stops; recorded nowhere.
    let (status, answer) = stack.post(e2e::payload(id, "succeeded", 10)).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("forgotten")), "{answer}");
    // A work message sent before the erasure arrives: dropped, nothing written back.
    stack
        .queue()
        .send(WorkMessage::encode(id, &Status::Succeeded, &e2e::payload(id, "succeeded", 10)), None)
        .await
        .unwrap();
    eventually(30, "the worker dropping the message", || async {
        let lines = e2e::logs::lines_about(id, "message");
        lines.iter().any(|line| line.message().contains("the prediction was forgotten")).then_some(())
    })
    .await;
    let left: Vec<String> = stack.items(id).await.into_keys().collect();
    assert_eq!(left, ["FORGOTTEN"], "nothing came back");
    // Nor does registering it again.
    let (code, _, refused) = hooks_exit(&["register", &id.to_string()]);
    assert_eq!(code, Some(1), "{refused}");
    assert!(refused.contains("it was forgotten"), "{refused}");
    assert_eq!(stack.items(id).await.into_keys().collect::<Vec<_>>(), ["FORGOTTEN"]);

    let again = hooks(&["forget", &id.to_string()]).unwrap();
    assert!(again.contains("forgotten already") && again.contains("nothing left to delete"), "{again}");
    let unknown = PredictionId::random();
    let (code, _, refused) = hooks_exit(&["forget", &unknown.to_string()]);
    assert_eq!(code, Some(1), "{refused}");
    assert!(refused.contains("no such prediction in the table"), "{refused}");
    assert_eq!(hooks_exit(&["forget", "not-an-id"]).0, Some(2));
}

#[tokio::test]
async fn forget_refuses_while_a_run_holds_the_work_and_changes_nothing() {
    let stack = Stack::from_env().await;
    // Slow work, but within the local queue's 5 s visibility timeout: longer would hold
    // the other tests' messages of its batch past theirs, and they would run twice.
    let id = create(&stack, json!({"prompt": "slow", "test_hook": "sleep_ms:4000"})).await;
    eventually(60, "a run holding the work", || async {
        item_of(&stack.items(id).await, "EVENT#succeeded", "work_token")
    })
    .await;
    let before = stack.items(id).await;
    let (code, _, refused) = hooks_exit(&["forget", &id.to_string()]);
    assert_eq!(code, Some(1), "{refused}");
    assert!(refused.contains("a run holds its work now"), "{refused}");
    let after = stack.items(id).await;
    assert!(!after.contains_key("FORGOTTEN"), "no mark");
    assert_eq!(after.keys().collect::<std::collections::BTreeSet<_>>(), before.keys().collect(), "nothing deleted");
    let event = &after["EVENT#succeeded"];
    assert_eq!(event.get("work_token"), before["EVENT#succeeded"].get("work_token"), "the run's claim, not a fence");
    // Once the run ends, the same command erases it.
    eventually(60, "the work done", || async { item_of(&stack.items(id).await, "EVENT#succeeded", "work") }).await;
    assert!(hooks(&["forget", &id.to_string()]).unwrap().contains("forgotten; deleted:"));
    assert_eq!(stack.items(id).await.into_keys().collect::<Vec<_>>(), ["FORGOTTEN"]);
}

/// Issue 34's migration: a prediction as the layout before it left one (an event item for
/// every status, the acted one `enqueue = sent` with its payload, its message lost before
/// the worker saw it) keeps working through every operation: a repeat sends its work
/// again and the worker completes it; `inspect` tells every status; `status` answers;
/// `replay` reruns it from its payload; `forget` erases all of it.
#[tokio::test]
async fn a_prediction_the_previous_layout_wrote_is_worked_inspected_replayed_and_forgotten() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    use wriftai_hooks::internals::adapters::dynamo::rfc3339;
    use wriftai_hooks::internals::shards::Index;

    let stack = Stack::from_env().await;
    let (id, shards) = (PredictionId::random(), stack.ledger().shards());
    let now = time::OffsetDateTime::now_utc();
    let at = |secs: i64| S(rfc3339(now - time::Duration::seconds(secs)));
    let expires = N((now + time::Duration::hours(1)).unix_timestamp().to_string());
    let body = e2e::payload(id, "succeeded", 16);
    let pk = S(format!("PRED#{id}"));
    let mut items = vec![vec![
        ("sk", S("PRED".into())),
        ("id", S(id.to_string())),
        ("registered_at", at(60)),
        ("registered_by", S("an older version".into())),
        ("status", S("succeeded".into())),
        ("rank", N("3".into())),
        ("last_event_at", at(10)),
    ]];
    for (status, secs) in [("pending", 50), ("starting", 40), ("started", 30)] {
        let event = vec![("sk", S(format!("EVENT#{status}"))), ("status", S(status.into())), ("received_at", at(secs))];
        items.push([event, vec![("expires_at", expires.clone())]].concat());
    }
    items.push(vec![
        ("sk", S("EVENT#succeeded".into())),
        ("status", S("succeeded".into())),
        ("received_at", at(10)),
        ("enqueue", S("sent".into())),
        ("payload", S(body.clone())),
        ("keep_secs", N("3600".into())),
        ("work_pk", S(Index::Work.partition(id, shards))),
        ("work_since", at(10)),
        ("recv_pk", S(Index::Received.partition(id, shards))),
        ("model", S("acme/echo".into())),
    ]);
    for item in items {
        let put = stack.dynamodb.put_item().table_name(&stack.table).item("pk", pk.clone());
        item.into_iter().fold(put, |put, (name, value)| put.item(name, value)).send().await.unwrap();
    }

    // WriftAI delivers the terminal status again: `sent` reads as undone work, sent again.
    let (status, answer) = stack.post(body).await;
    assert_eq!((status, &answer["outcome"], &answer["enqueued"]), (200, &"duplicate".into(), &true.into()));
    let (_, writes) = eventually(60, "the old event's work done", || stack.record(id, "result")).await;
    assert_eq!(writes, 1);
    let succeeded = |items: &std::collections::HashMap<String, e2e::Item>| items["EVENT#succeeded"].clone();
    let event = eventually(30, "the work marked done", || async {
        let event = succeeded(&stack.items(id).await);
        (event.get("work").and_then(|w| w.as_s().ok()).map(String::as_str) == Some("done")).then_some(event)
    })
    .await;
    assert!(!event.contains_key("work_pk"), "out of the work index");

    let text = hooks(&["inspect", &id.to_string()]).unwrap();
    for expected in ["received pending", "received starting", "received started", "received succeeded", "work: done"] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(hooks(&["status"]).is_ok());

    let said = hooks(&["replay", &id.to_string()]).unwrap();
    assert!(said.contains("with its payload"), "{said}");
    eventually(60, "the replay's run stored", || async {
        stack.record(id, "result").await.filter(|(_, writes)| *writes == 2)
    })
    .await;

    let said = hooks(&["forget", &id.to_string()]).unwrap();
    assert!(said.contains("forgotten; deleted:"), "{said}");
    let left: Vec<String> = stack.items(id).await.into_keys().collect();
    assert_eq!(left, ["FORGOTTEN"], "nothing of it but the mark");
}
