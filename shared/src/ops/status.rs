//! `hooks status`: the stack at a glance: unfinished predictions and unfinished work
//! (how many, the oldest of each), the queues' depths, the reconciler's latest run.

use crate::adapters::dynamo::Backlog;
use crate::ports::ReconcileStore;
use crate::shards::Index;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use super::error::{OpsError as Error, Result};
use super::{Ops, Queues};

/// How the stack is doing (`hooks status`): unfinished predictions and work (how many,
/// the oldest), the work queue's and dead-letter queue's depths, the reconciler's last
/// run; as a JSON report ([`render_status`](super::render_status) writes it for people).
pub async fn status(ops: &Ops) -> Result<Value> {
    let ledger = ops.ledger();
    let open = ledger.backlog(Index::Open).await?;
    let work = ledger.backlog(Index::Work).await?;
    let (queue, dlq) = match &ops.queues {
        Queues::Sqs { client, queue_url, dlq_url } => {
            let dlq = match dlq_url {
                Some(url) => depth(client, url).await?,
                None => Value::Null,
            };
            (depth(client, queue_url).await?, dlq)
        }
        #[cfg(any(test, feature = "test-util"))]
        Queues::Memory(letters) => {
            let sent = ops.ingest.queue().memory().map_or(0, |queue| queue.sent().len());
            (json!({"visible": sent, "in_flight": 0}), json!({"visible": letters.len(), "in_flight": 0}))
        }
    };
    let last_run = ledger.last_run().await?;
    let report = json!({
        "unfinished_predictions": backlog(&open),
        "unfinished_work": backlog(&work),
        "work_queue": queue,
        "dead_letter_queue": dlq,
        "last_reconciler_run": last_run,
    });
    Ok(report)
}

/// An index's backlog: in all, its oldest item, and each partition holding any.
fn backlog(partitions: &[Backlog]) -> Value {
    let entry = |(pk, sk, since): &(String, String, String)| {
        let id = pk.strip_prefix("PRED#").unwrap_or(pk);
        json!({"prediction_id": id, "status": sk.strip_prefix("EVENT#"), "since": since})
    };
    let oldest = partitions.iter().filter_map(|p| p.oldest.as_ref()).min_by(|a, b| a.2.cmp(&b.2)).map(entry);
    let by_partition: Vec<Value> = partitions
        .iter()
        .filter(|p| p.count > 0)
        .map(|p| json!({"partition": p.partition, "count": p.count, "oldest": p.oldest.as_ref().map(entry)}))
        .collect();
    json!({
        "count": partitions.iter().map(|p| p.count).sum::<u64>(),
        "oldest": oldest,
        "partitions": partitions.len(),
        "by_partition": by_partition,
    })
}

async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Value> {
    let out = sqs
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
        // Each shard holding any, most first: a shard far above the others is a hot key.
        let mut held: Vec<(u64, &str)> = b["by_partition"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p["count"].as_u64().unwrap_or(0), p["partition"].as_str().unwrap_or("?")))
            .collect();
        held.sort_by(|a, c| c.0.cmp(&a.0).then(a.1.cmp(c.1)));
        if !held.is_empty() {
            let shards: Vec<String> = held.iter().map(|(count, partition)| format!("{partition} {count}")).collect();
            line.push_str(&format!("\n  by shard, of {}: {}", b["partitions"], shards.join(", ")));
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
    fn the_status_reads_as_lines_with_each_shard_that_holds_any() {
        let shard = |partition: &str, count, oldest: Option<&str>| Backlog {
            partition: partition.into(),
            count,
            oldest: oldest.map(|since| (format!("PRED#{partition}"), "PRED".into(), since.into())),
        };
        let open = [
            shard("OPEN#0", 1, Some("2026-01-01T00:00:09Z")),
            shard("OPEN#1", 2, Some("2026-01-01T00:00:00Z")),
            shard("OPEN#2", 0, None),
            shard("OPEN", 0, None),
        ];
        let report = json!({
            "unfinished_predictions": backlog(&open),
            "unfinished_work": backlog(&[shard("WORK#0", 0, None), shard("WORK", 0, None)]),
            "work_queue": {"visible": 3, "in_flight": 1},
            "dead_letter_queue": Value::Null,
            "last_reconciler_run": {"ran_at": "2026-01-01T00:05:00Z", "summary": {"examined": 2}},
        });
        assert_eq!(report["unfinished_predictions"]["count"], 3);
        assert_eq!(report["unfinished_predictions"]["by_partition"].as_array().unwrap().len(), 2);
        let text = render(&report);
        assert_eq!(
            text,
            "unfinished predictions: 3 (oldest: OPEN#1, since 2026-01-01T00:00:00Z)\n  \
             by shard, of 4: OPEN#1 2, OPEN#0 1\n\
             unfinished work: 0\n\
             work queue: 3 waiting, 1 in flight\n\
             dead-letter queue: DLQ_URL not set\n\
             last reconciler run: 2026-01-01T00:05:00Z {\"examined\":2}"
        );
    }
}
