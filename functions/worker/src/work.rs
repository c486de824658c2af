//! YOUR WORK. This is the file to edit.
//!
//! [`handle`] is called once per prediction that reaches a status the worker acts on
//! (`ACT_ON_STATUSES`, the terminal ones by default), with the typed prediction. What it
//! returns is kept with the event as the work's result.
//!
//! Duplicates, ordering and crashes are handled around it: the claim runs `handle` to
//! completion once per (prediction, status). An `Err` or a panic fails only this
//! message: it is tried again, and lands in the DLQ after five tries. So does a run
//! still going when the invocation has only `REPORT_MARGIN` left: it is stopped there.
//! A run that fails or crashes halfway is run again from the start, so run each side
//! effect as a step: `ctx.steps(prediction).once("notify", || async { ... })` runs it at
//! most once per (prediction, status, name), and a run done again gets the outcome the
//! first recorded (`wriftai_hooks::steps` says what is left: a crash between the effect and its
//! record). A put that writes a whole record or object is safe without one.
//!
//! To add a client (an AWS service, an HTTP API): a field on [`Context`], a line in
//! [`Context::new`] that builds it from `clients.aws` or the config (`config.rs`), the crate in
//! `Cargo.toml` and, where AWS needs it, an IAM policy on `WorkerFunction` in
//! `template.yaml`. The tests at the bottom run `handle` on the in-memory adapters:
//! copy them for your own work.

use std::time::Duration;

use serde_json::{Value, json};
use wriftai_hooks::adapters::{dynamo::DynamoLedger, sqs::SqsQueue};
use wriftai_hooks::error::BoxError;
use wriftai_hooks::ingest::Ingest;
use wriftai_hooks::ports::{Ledger, RecordTable, WorkQueue};
use wriftai_hooks::prediction::{Prediction, Status};
use wriftai_hooks::records::Records;
use wriftai_hooks::steps::Steps;
use wriftai_hooks::wriftai::{Webhook, WriftAi};

use crate::bucket::Files;
use crate::config::{Clients, WorkerConfig};
use crate::examples;

/// What your work can use, built once per cold start by [`Context::new`]. On Lambda the
/// table and queue are DynamoDB and SQS; the tests use the in-memory adapters.
pub struct Context<T = DynamoLedger, Q = SqsQueue> {
    /// Our table and work queue; a chained prediction is recorded there as ours.
    pub ingest: Ingest<T, Q>,
    /// WriftAI, and the webhook a chained prediction is created with.
    pub api: WriftAi,
    pub webhook: Option<Webhook>,
    /// The stack's bucket (`OUTPUT_BUCKET`): copies of output files, and records too
    /// large for an item. `None` without one.
    pub files: Option<Files>,
    /// An HTTP client for the services your work calls. Never for a URL that came in a
    /// webhook body: `files` fetches those, under its checks.
    pub http: reqwest::Client,
    /// Where the notification example posts (`NOTIFY_URL`).
    pub notify_url: Option<String>,
}

impl Context {
    /// The context on the stack's table and queue, built once per cold start (`main.rs`).
    pub fn on_aws(clients: &Clients, config: &WorkerConfig) -> Result<Self, BoxError> {
        Context::new(clients, config, Ingest::on_aws(&clients.aws, &config.ingest))
    }
}

impl<T: Ledger + RecordTable, Q: WorkQueue> Context<T, Q> {
    /// Builds the context on `ingest`'s table and queue: DynamoDB and SQS in the Lambda
    /// ([`Context::on_aws`]), in-memory adapters in the tests below.
    pub fn new(clients: &Clients, config: &WorkerConfig, ingest: Ingest<T, Q>) -> Result<Self, BoxError> {
        let files = match &config.output_bucket {
            Some(bucket) => Some(Files::new(
                &clients.aws,
                bucket.clone(),
                config.s3_path_style,
                config.url_policy.clone(),
                config.download_timeout,
                config.file_limits.clone(),
            )?),
            None => None,
        };
        Ok(Self {
            ingest,
            api: clients.api.clone(),
            webhook: clients.webhook.clone(),
            files,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .build()?,
            notify_url: config.notify_url.clone(),
        })
    }

    /// The work's named records, per prediction, of any size.
    pub fn records(&self) -> Records<'_, T, Files> {
        Records::new(self.ingest.ledger(), self.files.as_ref())
    }

    /// The steps of `prediction`'s work, each run at most once.
    pub fn steps<'a>(&'a self, prediction: &'a Prediction) -> Steps<'a, T, Files> {
        Steps::new(self.records(), prediction)
    }
}

/// The example: each prediction's outcome is kept as its `result` record.
pub async fn handle<T, Q>(prediction: &Prediction, ctx: &Context<T, Q>) -> Result<Value, BoxError>
where
    T: Ledger + RecordTable,
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
    // The worked examples (examples.rs). Delete these lines and that file to start from
    // a clean slate.
    let steps = ctx.steps(prediction);
    if let Some(files) = &ctx.files {
        let copied = examples::copy_files(prediction, files, &steps).await?;
        if !copied.is_empty() {
            record["files"] = json!(copied);
        }
    }
    if let Some(next) = examples::chain(prediction, &ctx.ingest, &ctx.api, ctx.webhook.as_ref(), &steps).await? {
        record["next"] = json!(next);
    }
    examples::triage(prediction, ctx.records()).await?;
    if let Some(url) = &ctx.notify_url {
        examples::notify(prediction, &ctx.http, url, &steps).await?;
    }
    ctx.records().store(prediction.id, "result", &record).await?;
    Ok(json!({"stored": true, "next": record.get("next")}))
}

#[cfg(test)]
pub(crate) mod tests {
    use wriftai_hooks::adapters::memory::{MemoryLedger, MemoryQueue};
    use wriftai_hooks::config::Env;
    use wriftai_hooks::prediction::PredictionId;

    use super::*;

    /// A context on the in-memory table and queue, with `settings` beside the required
    /// ones. Its clients point at nothing unless a setting says otherwise.
    pub(crate) fn context_with(settings: &[(&str, &str)]) -> Context<MemoryLedger, MemoryQueue> {
        // The first of a name wins: `settings` before the defaults.
        let mut pairs = settings.to_vec();
        pairs.extend([
            ("TABLE_NAME", "test"),
            ("QUEUE_URL", "test"),
            ("WRIFTAI_ACCESS_TOKEN", "test"),
            ("WRIFTAI_API_BASE_URL", "http://127.0.0.1:9/v1"),
        ]);
        let config = WorkerConfig::from_env(&Env::of(&pairs)).unwrap();
        let clients = Clients {
            aws: aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build(),
            api: WriftAi::new(config.api.clone()).unwrap(),
            webhook: None,
        };
        let ingest = Ingest::new(
            MemoryLedger::default(),
            MemoryQueue::default(),
            config.ingest.act_on.clone(),
            config.ingest.event_ttl,
        );
        Context::new(&clients, &config, ingest).unwrap()
    }

    pub(crate) fn context() -> Context<MemoryLedger, MemoryQueue> {
        context_with(&[])
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
        let stored = ctx.ingest.ledger().record(p.id, "result");
        assert_eq!(stored, Some((json!({"status": "succeeded", "output": "hello"}), 1)));
    }

    #[tokio::test]
    async fn a_failed_prediction_keeps_its_error() {
        let ctx = context();
        let error = json!({"source": "internal", "message": "out of memory", "detail": null});
        let p = prediction("failed", json!({}), Value::Null, error.clone());
        handle(&p, &ctx).await.unwrap();
        let (record, _) = ctx.ingest.ledger().record(p.id, "result").unwrap();
        assert_eq!(record, json!({"status": "failed", "error": error}));
    }

    #[tokio::test]
    async fn a_status_that_is_not_terminal_stores_nothing() {
        let ctx = context();
        let p = prediction("started", json!({}), Value::Null, Value::Null);
        assert_eq!(handle(&p, &ctx).await.unwrap(), Value::Null);
        assert_eq!(ctx.ingest.ledger().record(p.id, "result"), None);
    }

    #[tokio::test]
    async fn an_error_or_output_too_large_for_an_item_still_ends_done() {
        let ctx = context();
        let error = json!({"source": "external", "message": "e".repeat(500_000), "detail": null});
        let failed = prediction("failed", json!({}), Value::Null, error);
        handle(&failed, &ctx).await.unwrap();
        let succeeded = prediction("succeeded", json!({}), json!("x".repeat(500_000)), Value::Null);
        handle(&succeeded, &ctx).await.unwrap();
        for (id, name) in [(failed.id, "result"), (failed.id, "triage"), (succeeded.id, "result")] {
            let (kept, writes) = ctx.ingest.ledger().kept(id, name).unwrap();
            assert!(matches!(kept, wriftai_hooks::ports::Kept::Cut { bytes, .. } if bytes > 500_000), "{name}: {kept:?}");
            assert_eq!(writes, 1);
        }
    }
}
