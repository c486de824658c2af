//! The receiver's rules, over real HTTP to `cargo lambda watch`, checked in the table
//! and on the queue.

use base64::Engine;
use e2e::{Stack, payload, status_of};
use wriftai_hooks::internals::message::QUEUE_INLINE_LIMIT;
use wriftai_hooks::internals::prediction::PredictionId;
use wriftai_hooks::internals::records::ITEM_BYTES;
use wriftai_hooks::internals::trace::TraceHeader;

#[tokio::test]
async fn a_new_terminal_event_is_recorded_and_enqueued() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", 10);
    let (status, answer) = stack.post(body.clone()).await;
    assert_eq!((status, &answer["outcome"], &answer["enqueued"]), (200, &"recorded".into(), &true.into()));

    let items = stack.items(id).await;
    assert_eq!(status_of(&items["PRED"]), "succeeded");
    assert!(!items["PRED"].contains_key("open_pk"), "a terminal prediction leaves the open index");
    assert_eq!(items["EVENT#succeeded"]["enqueue"].as_s().unwrap(), "queued");
    let messages = stack.messages_for(id).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].payload.as_ref().unwrap().get(), body);
}

#[tokio::test]
async fn the_work_message_carries_the_trace_its_delivery_lines_name_as_its_awstraceheader() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let (status, answer) = stack.post(payload(id, "succeeded", 10)).await;
    assert_eq!((status, &answer["enqueued"]), (200, &true.into()));

    let traces = stack.traces_for(id).await;
    let [Some(header)] = traces.as_slice() else { panic!("one message, with an AWSTraceHeader: {traces:?}") };
    let carried = TraceHeader::parse(header).unwrap_or_else(|| panic!("a well-formed trace header: {header}"));
    let lines = e2e::eventually(10, "the delivery's log lines", || async {
        let lines = e2e::logs::lines_about(id, "delivery");
        lines.iter().any(|line| line.message() == "delivery accepted").then_some(lines)
    })
    .await;
    for line in &lines {
        assert_eq!(line.span_field("delivery", "trace_id"), Some(carried.root()), "{:?}", line.0);
        assert_eq!(line.invocation_trace(), Some(carried.root()), "the receiver's own invocation trace: {:?}", line.0);
    }
}

#[tokio::test]
async fn a_non_terminal_event_is_recorded_but_not_enqueued() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let (status, answer) = stack.post(payload(id, "started", 0)).await;
    assert_eq!((status, &answer["enqueued"]), (200, &false.into()));
    let items = stack.items(id).await;
    assert_eq!(status_of(&items["PRED"]), "started");
    assert!(items["PRED"].contains_key("open_pk"), "an unfinished prediction stays findable");
    // One conditional write of the prediction, which keeps when the status came.
    assert!(items["PRED"].contains_key("seen_started"));
    assert!(!items.contains_key("EVENT#started"), "no event item for a status the worker does not act on");
    assert!(stack.messages_for(id).await.is_empty());
}

#[tokio::test]
async fn a_repeat_writes_nothing_new_and_sends_again_only_while_the_work_is_undone() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", 10);
    assert_eq!(stack.post(body.clone()).await.0, 200);
    let before = stack.items(id).await;
    let (status, answer) = stack.post(body.clone()).await;
    assert_eq!((status, &answer["outcome"], &answer["enqueued"]), (200, &"duplicate".into(), &true.into()));
    assert_eq!(stack.items(id).await, before);
    assert_eq!(stack.messages_for(id).await.len(), 2, "the worker's claim absorbs the copy");
    // An event an older version wrote: `enqueue` says `pending` or `sent`, and either
    // reads as work the worker acts on, undone.
    for old in ["sent", "pending"] {
        stack.set_event(id, "succeeded", "enqueue", old).await;
        assert_eq!(stack.post(body.clone()).await.1["enqueued"], true, "{old}");
    }
    stack.set_event(id, "succeeded", "work", "done").await;
    let (status, answer) = stack.post(body).await;
    assert_eq!((status, &answer["outcome"], &answer["enqueued"]), (200, &"duplicate".into(), &false.into()));
    assert_eq!(stack.messages_for(id).await.len(), 4);
}

#[tokio::test]
async fn a_recorded_event_whose_enqueue_was_cut_short_is_enqueued_by_the_repeat() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", 10);
    // The state a crash between the write and the send leaves: recorded, not sent.
    let prediction = wriftai_hooks::internals::prediction::Prediction::from_json(body.as_bytes()).unwrap();
    let event = wriftai_hooks::internals::ports::NewEvent {
        id,
        status: &prediction.status,
        updated_at: None,
        received_at: time::OffsetDateTime::now_utc(),
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::days(1),
        needs_work: true,
        payload: Some(&body),
        model: None,
    };
    use wriftai_hooks::internals::ports::Ledger;
    stack.ledger().record(&event).await.unwrap();
    assert!(stack.messages_for(id).await.is_empty());

    let (status, answer) = stack.post(body.clone()).await;
    assert_eq!((status, &answer["outcome"], &answer["enqueued"]), (200, &"duplicate".into(), &true.into()));
    assert_eq!(stack.messages_for(id).await.len(), 1);
    assert_eq!(stack.items(id).await["EVENT#succeeded"]["enqueue"].as_s().unwrap(), "queued");
}

#[tokio::test]
async fn an_older_status_after_a_newer_one_is_kept_but_changes_nothing() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    assert_eq!(stack.post(payload(id, "succeeded", 1)).await.0, 200);
    let (status, answer) = stack.post(payload(id, "started", 0)).await;
    assert_eq!((status, &answer["outcome"]), (200, &"out_of_order".into()));
    let items = stack.items(id).await;
    assert_eq!(status_of(&items["PRED"]), "succeeded");
    assert!(!items.contains_key("EVENT#started") && !items["PRED"].contains_key("seen_started"), "nothing kept");
    assert_eq!(stack.messages_for(id).await.len(), 1);
}

#[tokio::test]
async fn an_unknown_status_is_recorded_answered_200_and_not_acted_on() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let (status, _) = stack.post(payload(id, "warming_up", 0)).await;
    assert_eq!(status, 200);
    let items = stack.items(id).await;
    assert!(items.contains_key("EVENT#warming_up"));
    assert!(!items["PRED"].contains_key("status"));
    assert!(stack.messages_for(id).await.is_empty());
}

#[tokio::test]
async fn a_prediction_we_did_not_create_writes_nothing_and_asks_for_a_retry() {
    let stack = Stack::from_env().await;
    let id = PredictionId::random();
    let response = stack.json(payload(id, "succeeded", 1)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "30");
    assert_eq!(stack.post(payload(id, "warming_up", 0)).await.0, 429);
    assert!(stack.items(id).await.is_empty());
    assert!(stack.messages_for(id).await.is_empty());
}

#[tokio::test]
async fn bad_requests_get_a_json_4xx_and_write_nothing() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let before = stack.items(id).await;
    let good = payload(id, "succeeded", 1);
    let post = || stack.http.post(&stack.receiver_url);
    let cases: Vec<(&str, u16, reqwest::RequestBuilder)> = vec![
        ("malformed JSON", 400, stack.json("{\"id\":".into())),
        ("truncated", 400, stack.json(good[..good.len() - 2].to_owned())),
        ("missing id", 400, stack.json(r#"{"status":"succeeded"}"#.into())),
        ("missing status", 400, stack.json(format!(r#"{{"id":"{id}"}}"#))),
        ("null status", 400, stack.json(format!(r#"{{"id":"{id}","status":null}}"#))),
        ("empty body", 400, stack.json(String::new())),
        ("text/plain", 415, stack.signed(post().header("content-type", "text/plain"), &good).body(good.clone())),
        ("no content type", 415, stack.signed(post(), &good).body(good.clone())),
        ("GET", 405, stack.http.get(&stack.receiver_url)),
        ("wrong path", 404, stack.http.post(format!("{}admin", stack.receiver_url)).body(good.clone())),
    ];
    for (name, want, request) in cases {
        let (status, answer) = stack.send(request).await;
        assert_eq!(status, want, "{name}: {answer}");
        assert!(answer["error"].is_string(), "{name}: {answer}");
    }
    assert_eq!(stack.items(id).await, before);
    assert!(stack.messages_for(id).await.is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_writes_nothing() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", wriftai_hooks::internals::webhook::DEFAULT_MAX_BODY_BYTES);
    let (status, answer) = stack.post(body).await;
    assert_eq!((status, &answer["error"]), (413, &"payload_too_large".into()));
    assert_eq!(stack.items(id).await.len(), 1);
}

#[tokio::test]
async fn a_base64_body_from_the_function_url_is_decoded() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", 5);
    // What a Function URL sends the function when it base64-encodes the body.
    let event = serde_json::json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "wriftai-webhook-signature": stack.secret.as_deref().map(|s| stack.signature(s, &body)),
        },
        "requestContext": {"http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                           "accountId": "123456789012", "apiId": "x", "domainName": "x", "domainPrefix": "x",
                           "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "26/Nov/2026:10:00:00 +0000", "timeEpoch": 0},
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "isBase64Encoded": true,
    });
    let invoke = stack.receiver_url.replace("/lambda-url/receiver/", "/2015-03-31/functions/receiver/invocations");
    let response: serde_json::Value = stack.http.post(invoke).json(&event).send().await.unwrap().json().await.unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(stack.messages_for(id).await[0].payload.as_ref().unwrap().get(), body);
}

#[tokio::test]
async fn an_event_too_large_for_an_item_is_enqueued_whole_but_stored_without_payload() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "succeeded", ITEM_BYTES + 1);
    assert_eq!(stack.post(body.clone()).await.0, 200);
    let event = &stack.items(id).await["EVENT#succeeded"];
    assert!(!event.contains_key("payload"));
    assert_eq!(stack.messages_for(id).await[0].payload.as_ref().unwrap().get(), body);
}

#[tokio::test]
async fn an_event_too_large_for_a_message_is_enqueued_by_reference() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let (status, answer) = stack.post(payload(id, "succeeded", QUEUE_INLINE_LIMIT + 1)).await;
    assert_eq!((status, &answer["enqueued"]), (200, &true.into()));
    let messages = stack.messages_for(id).await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].payload.is_none(), "the worker fetches it with GET");
}

#[tokio::test]
async fn a_small_terminal_event_keeps_its_payload_for_recovery() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let body = payload(id, "failed", 0);
    assert_eq!(stack.post(body.clone()).await.0, 200);
    assert_eq!(stack.items(id).await["EVENT#failed"]["payload"].as_s().unwrap(), &body);
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_deliveries_are_401_and_change_nothing() {
    let stack = Stack::from_env().await;
    let secret = stack.secret.clone().expect("the local stack sets WRIFTAI_WEBHOOK_SECRET");
    let id = stack.registered().await;
    let before = stack.items(id).await;
    let body = payload(id, "succeeded", 1);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let post = || stack.http.post(&stack.receiver_url).header("content-type", "application/json");
    let sign = wriftai_hooks::internals::signature::sign;
    let cases = [
        ("unsigned", None, "signature_missing"),
        ("another secret", Some(sign("whsec_forged", now, body.as_bytes())), "signature_mismatch"),
        ("another body", Some(sign(&secret, now, b"{}")), "signature_mismatch"),
        ("replayed after 10 minutes", Some(sign(&secret, now - 600, body.as_bytes())), "signature_stale"),
        ("no timestamp", Some("v1=00".into()), "signature_no_timestamp"),
        ("empty v1", Some(format!("t={now},v1=")), "signature_no_v1"),
    ];
    for (name, header, code) in cases {
        let request = match header {
            Some(header) => post().header(wriftai_hooks::internals::signature::HEADER, header),
            None => post(),
        };
        let (status, answer) = stack.send(request.body(body.clone())).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some(code)), "{name}");
    }
    assert_eq!(stack.items(id).await, before);
    assert!(stack.messages_for(id).await.is_empty());
}

#[tokio::test]
async fn a_correctly_signed_delivery_for_an_unknown_id_is_still_refused() {
    let stack = Stack::from_env().await;
    let id = PredictionId::random();
    let (status, answer) = stack.post(payload(id, "succeeded", 1)).await;
    assert_eq!((status, &answer["error"]), (429, &"unknown_prediction".into()));
    assert!(stack.items(id).await.is_empty());
}
