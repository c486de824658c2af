//! One prediction's whole trip in one trace: the receiver's lines for its delivery and
//! the worker's lines for its work name the same `trace_id`, which is the receiver's
//! invocation trace, not the worker's own: the work message carried it (`AWSTraceHeader`).
//! A prediction whose webhooks never came is the reconciler's: a missed webhook on its
//! line, and its work in the trace of the run that found it.

use std::collections::BTreeSet;

use e2e::logs::lines_about;
use e2e::{Stack, eventually, payload};

#[tokio::test]
async fn one_predictions_receiver_and_worker_lines_share_the_trace_its_message_carried() {
    let stack = Stack::from_env().await;
    let id = stack.registered().await;
    let (status, answer) = stack.post(payload(id, "succeeded", 10)).await;
    assert_eq!((status, &answer["enqueued"]), (200, &true.into()));
    super::worked(&stack, id, 60).await;

    let worker = eventually(20, "the worker's log lines for its message", || async {
        let lines = lines_about(id, "message");
        lines.iter().any(|line| line.message() == "message done").then_some(lines)
    })
    .await;
    let receiver = lines_about(id, "delivery");
    assert!(receiver.iter().any(|line| line.message() == "delivery accepted"), "{receiver:?}");
    let traces = |lines: &[e2e::logs::Line], span| -> BTreeSet<Option<String>> {
        lines.iter().map(|line| line.span_field(span, "trace_id").map(str::to_owned)).collect()
    };
    let (received_in, worked_in) = (traces(&receiver, "delivery"), traces(&worker, "message"));
    assert_eq!(received_in.len(), 1, "one delivery, one trace: {received_in:?}");
    assert!(received_in.iter().all(Option::is_some), "{received_in:?}");
    assert_eq!(worked_in, received_in, "the worker's lines join the receiver's trace");
    // The receiver's trace is its invocation's; the worker's invocation has its own, so
    // the worker can only have learnt the receiver's from the message.
    let trace = received_in.into_iter().next().flatten();
    assert!(receiver.iter().all(|line| line.invocation_trace() == trace.as_deref()));
    assert!(worker.iter().all(|line| line.invocation_trace().is_some() && line.invocation_trace() != trace.as_deref()));
}

#[tokio::test]
async fn a_prediction_whose_webhooks_were_all_dropped_is_a_missed_webhook_in_the_reconcilers_trace() {
    let stack = Stack::from_env().await;
    let input = serde_json::json!({"prompt": "lost", "sim": {"drop_webhooks": true}});
    let id = super::create(&stack, "acme/echo", input).await;
    super::worked(&stack, id, 90).await;

    let examined = eventually(20, "the reconciler's line for the missed webhook", || async {
        let lines = lines_about(id, "examine");
        let missed = lines.iter().find(|line| line.message().contains("no webhook said so"))?;
        Some(missed.span_field("examine", "trace_id")?.to_owned())
    })
    .await;
    let worker = eventually(20, "the worker's log lines for its message", || async {
        let lines = lines_about(id, "message");
        lines.iter().any(|line| line.message() == "message done").then_some(lines)
    })
    .await;
    let worked_in: BTreeSet<_> = worker.iter().map(|line| line.span_field("message", "trace_id")).collect();
    assert_eq!(worked_in, BTreeSet::from([Some(examined.as_str())]), "the work joins the run that found it");
    assert!(lines_about(id, "delivery").is_empty(), "no delivery reached the receiver");
}
