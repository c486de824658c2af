//! YOUR WORK. This is the file to edit.
//!
//! [`handle`] is called once per prediction that reaches a status the worker acts on
//! (`ACT_ON_STATUSES`, the terminal ones by default), with the typed prediction. What it
//! returns is kept with the event as the work's result.
//!
//! You need not worry about duplicates, ordering or crashes here: the claim around
//! `handle` runs it to completion once per (prediction, status). An `Err` or a panic
//! fails only this message: it is tried again, and lands in the DLQ after five tries.
//! So does a run still going 6 s before the invocation's deadline (`REPORT_MARGIN`):
//! it is stopped there. Keep each side effect safe to repeat (a put, not an append): a
//! run that crashes halfway is run again from the start.
//!
//! To add a client (an AWS service, an HTTP API): a field on [`Context`], a line in
//! [`Context::new`] that builds it from `clients.aws` or the config, the crate in
//! `Cargo.toml` and, where AWS needs it, an IAM policy on `WorkerFunction` in
//! `template.yaml`. The S3 bucket of `outputs` was added that way (a resource in
//! `template.yaml` and a variable set to it exist on the local stack too). The tests at
//! the bottom run `handle` on the in-memory adapters: copy them for your own work.

use serde_json::{Value, json};
use shared::adapters::{dynamo::DynamoLedger, sqs::SqsQueue};
use shared::error::BoxError;
use shared::ingest::Ingest;
use shared::ports::{Ledger, Outputs, WorkQueue};
use shared::prediction::{Prediction, Status};
use shared::wriftai::{Webhook, WriftAi};

use crate::config::{Clients, WorkerConfig};
use crate::examples;
use crate::outputs::OutputBucket;

/// DynamoDB stops an item at 400 KB: an output larger than this is kept in the bucket
/// (or, without one, as its size), an error as its size.
const MAX_RECORD_BYTES: usize = 100_000;

/// What your work can use, built once per cold start by [`Context::new`]. On Lambda the
/// table and queue are DynamoDB and SQS; the tests use the in-memory adapters.
pub struct Context<T = DynamoLedger, Q = SqsQueue> {
    /// Our table and work queue. The work keeps its records in the table
    /// ([`Context::table`]); a chained prediction is recorded there as ours.
    pub ingest: Ingest<T, Q>,
    /// WriftAI, and the webhook a chained prediction is created with.
    pub api: WriftAi,
    pub webhook: Option<Webhook>,
    /// The bucket output files are copied to (`OUTPUT_BUCKET`), with the HTTP client
    /// that downloads them: at most `DOWNLOAD_MAX_BYTES` each, and no more than
    /// `DOWNLOAD_TIMEOUT_SECS` without a byte. `None` without a bucket.
    pub outputs: Option<OutputBucket>,
}

impl<T: Ledger, Q: WorkQueue> Context<T, Q> {
    /// Builds the context once per cold start, on `table` and `queue`: DynamoDB and SQS
    /// in the Lambda (`main.rs`), in-memory adapters in the tests below.
    pub fn new(clients: &Clients, config: &WorkerConfig, table: T, queue: Q) -> Result<Self, BoxError> {
        Ok(Self {
            ingest: Ingest::new(table, queue, config.ingest.act_on.clone(), config.ingest.event_ttl),
            api: clients.api.clone(),
            webhook: clients.webhook.clone(),
            outputs: match &config.output_bucket {
                Some(bucket) => {
                    let t = config.download_timeout;
                    let http = reqwest::Client::builder().connect_timeout(t).read_timeout(t).build()?;
                    Some(OutputBucket::new(
                        &clients.aws,
                        bucket.clone(),
                        config.s3_path_style,
                        http,
                        config.download_limit,
                    ))
                }
                None => None,
            },
        })
    }

    /// Where the work keeps its records: named records per prediction.
    pub fn table(&self) -> &T {
        self.ingest.ledger()
    }
}

/// The example: each prediction's outcome is kept as its `result` record.
pub async fn handle<T, Q>(prediction: &Prediction, ctx: &Context<T, Q>) -> Result<Value, BoxError>
where
    T: Ledger + Outputs,
    Q: WorkQueue,
{
    let mut record = match prediction.status {
        Status::Succeeded => json!({"status": "succeeded", "output": prediction.output}),
        Status::Failed | Status::Cancelled | Status::Abandoned => {
            json!({"status": prediction.status.as_str(), "error": prediction.error})
        }
        // Only reached if you add non-terminal statuses to ACT_ON_STATUSES.
        _ => return Ok(Value::Null),
    };
    // The worked examples: download, chain, triage (examples.rs). Delete this line and
    // that module to start from a clean slate.
    examples::run(prediction, &mut record, ctx).await?;
    for field in ["output", "error"] {
        let bytes = record[field].to_string().len();
        if bytes <= MAX_RECORD_BYTES {
            continue;
        }
        record[field] = match (&ctx.outputs, field) {
            (Some(bucket), "output") => {
                let key = format!("predictions/{}/output.json", prediction.id);
                json!({"kept": bucket.put_json(&key, "output", &record[field]).await?})
            }
            _ => json!({"omitted_bytes": bytes}),
        };
    }
    ctx.table().store(prediction.id, "result", &record).await?;
    Ok(json!({"stored": true, "next": record.get("next")}))
}

#[cfg(test)]
pub(crate) mod tests {
    use shared::adapters::memory::{MemoryLedger, MemoryQueue};
    use shared::config::Env;
    use shared::prediction::PredictionId;

    use super::*;

    /// A context on the in-memory table and queue. Its clients point at nothing:
    /// these tests never call out.
    pub(crate) fn context() -> Context<MemoryLedger, MemoryQueue> {
        let env = Env::of(&[
            ("TABLE_NAME", "test"),
            ("QUEUE_URL", "test"),
            ("WRIFTAI_ACCESS_TOKEN", "test"),
            ("WRIFTAI_API_BASE_URL", "http://127.0.0.1:9/v1"),
            ("DOWNLOAD_MAX_BYTES", "1024"),
        ]);
        let config = WorkerConfig::from_env(&env).unwrap();
        let clients = Clients {
            aws: aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build(),
            api: WriftAi::new(config.api.clone()).unwrap(),
            webhook: None,
        };
        Context::new(&clients, &config, MemoryLedger::default(), MemoryQueue::default()).unwrap()
    }

    /// A prediction as WriftAI sends it, at `status`, with `output` and `error`.
    pub(crate) fn prediction(status: &str, input: Value, output: Value, error: Value) -> Prediction {
        let body = json!({
            "id": PredictionId::random().to_string(), "status": status, "model": {"owner": "acme", "name": "echo"},
            "input": input, "output": output, "error": error,
        });
        Prediction::from_json(body.to_string().as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn a_succeeded_prediction_keeps_its_output_as_the_result() {
        let ctx = context();
        let p = prediction("succeeded", json!({"prompt": "hi"}), json!("hello"), Value::Null);
        let result = handle(&p, &ctx).await.unwrap();
        assert_eq!(result, json!({"stored": true, "next": null}));
        let stored = ctx.table().output(p.id, "result");
        assert_eq!(stored, Some((json!({"status": "succeeded", "output": "hello"}), 1)));
    }

    #[tokio::test]
    async fn a_failed_prediction_keeps_its_error() {
        let ctx = context();
        let error = json!({"source": "internal", "message": "out of memory", "detail": null});
        let p = prediction("failed", json!({}), Value::Null, error.clone());
        handle(&p, &ctx).await.unwrap();
        let (record, _) = ctx.table().output(p.id, "result").unwrap();
        assert_eq!(record, json!({"status": "failed", "error": error}));
    }

    #[tokio::test]
    async fn a_status_that_is_not_terminal_stores_nothing() {
        let ctx = context();
        let p = prediction("started", json!({}), Value::Null, Value::Null);
        assert_eq!(handle(&p, &ctx).await.unwrap(), Value::Null);
        assert_eq!(ctx.table().output(p.id, "result"), None);
    }

    #[tokio::test]
    async fn an_error_too_large_for_an_item_is_kept_as_its_size() {
        let ctx = context();
        let error = json!({"source": "external", "message": "e".repeat(500_000), "detail": null});
        let p = prediction("failed", json!({}), Value::Null, error.clone());
        handle(&p, &ctx).await.unwrap();
        let (record, _) = ctx.table().output(p.id, "result").unwrap();
        assert_eq!(record, json!({"status": "failed", "error": {"omitted_bytes": error.to_string().len()}}));
        let (triage, _) = ctx.table().output(p.id, "triage").unwrap();
        assert_eq!(triage["message"], json!({"omitted_bytes": 500_002}));
    }

    #[tokio::test]
    async fn an_output_too_large_for_an_item_is_kept_as_its_size() {
        let ctx = context();
        let p = prediction("succeeded", json!({}), json!("x".repeat(MAX_RECORD_BYTES)), Value::Null);
        handle(&p, &ctx).await.unwrap();
        let (record, _) = ctx.table().output(p.id, "result").unwrap();
        assert_eq!(record["output"], json!({"omitted_bytes": MAX_RECORD_BYTES + 2}));
    }
}
