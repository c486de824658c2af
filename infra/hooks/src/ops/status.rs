//! `hooks status`: the stack at a glance: unfinished predictions and unfinished work
//! (how many, the oldest of each), the queues' depths, the reconciler's latest run.

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use shared::adapters::dynamo::{Backlog, Index};
use shared::ports::ReconcileStore;

use super::Ops;
use crate::error::{Error, Result};

pub async fn status(ops: &Ops, as_json: bool) -> Result<Value> {
    let ledger = ops.ledger();
    let open = ledger.backlog(Index::Open).await?;
    let work = ledger.backlog(Index::Work).await?;
    let queue = depth(ops, &ops.queue_url).await?;
    let dlq = match &ops.dlq_url {
        Some(url) => depth(ops, url).await?,
        None => Value::Null,
    };
    let last_run = ledger.last_run().await?;
    let report = json!({
        "unfinished_predictions": backlog(&open),
        "unfinished_work": backlog(&work),
        "work_queue": queue,
        "dead_letter_queue": dlq,
        "last_reconciler_run": last_run,
    });
    Ok(if as_json { report } else { Value::String(render(&report)) })
}

fn backlog(backlog: &Backlog) -> Value {
    let oldest = backlog.oldest.as_ref().map(|(pk, sk, since)| {
        let id = pk.strip_prefix("PRED#").unwrap_or(pk);
        let status = sk.strip_prefix("EVENT#");
        json!({"prediction_id": id, "status": status, "since": since})
    });
    json!({"count": backlog.count, "oldest": oldest})
}

async fn depth(ops: &Ops, url: &str) -> Result<Value> {
    let out = ops
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| Error::aws(url, e))?;
    let count =
        |name| out.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or_default();
    Ok(json!({
        "visible": count(QueueAttributeName::ApproximateNumberOfMessages),
        "in_flight": count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    }))
}

/// The report as lines for a person.
pub fn render(report: &Value) -> String {
    let backlog = |name: &str, b: &Value| {
        let mut line = format!("{name}: {}", b["count"]);
        if let Some(oldest) = b["oldest"].as_object() {
            let status = oldest["status"].as_str().map(|s| format!(" {s}")).unwrap_or_default();
            let id = oldest["prediction_id"].as_str().unwrap_or_default();
            line.push_str(&format!(" (oldest: {id}{status}, since {})", oldest["since"].as_str().unwrap_or("?")));
        }
        line
    };
    let queue = |name: &str, q: &Value| match q.as_object() {
        Some(q) => format!("{name}: {} waiting, {} in flight", q["visible"], q["in_flight"]),
        None => format!("{name}: DLQ_URL not set"),
    };
    let run = match report["last_reconciler_run"].as_object() {
        Some(run) => format!("last reconciler run: {} {}", run["ran_at"].as_str().unwrap_or("?"), run["summary"]),
        None => "last reconciler run: none recorded".to_owned(),
    };
    [
        backlog("unfinished predictions", &report["unfinished_predictions"]),
        backlog("unfinished work", &report["unfinished_work"]),
        queue("work queue", &report["work_queue"]),
        queue("dead-letter queue", &report["dead_letter_queue"]),
        run,
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_reads_as_lines() {
        let report = json!({
            "unfinished_predictions": backlog(&Backlog { count: 2, oldest: Some(("PRED#abc".into(), "PRED".into(), "2026-01-01T00:00:00Z".into())) }),
            "unfinished_work": backlog(&Backlog { count: 0, oldest: None }),
            "work_queue": {"visible": 3, "in_flight": 1},
            "dead_letter_queue": Value::Null,
            "last_reconciler_run": {"ran_at": "2026-01-01T00:05:00Z", "summary": {"examined": 2}},
        });
        let text = render(&report);
        assert_eq!(
            text,
            "unfinished predictions: 2 (oldest: abc, since 2026-01-01T00:00:00Z)\n\
             unfinished work: 0\n\
             work queue: 3 waiting, 1 in flight\n\
             dead-letter queue: DLQ_URL not set\n\
             last reconciler run: 2026-01-01T00:05:00Z {\"examined\":2}"
        );
    }
}
