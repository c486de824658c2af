//! YOUR WORK. This is the file to edit: `handle` is called once per prediction that
//! reaches a status the worker acts on (`ACT_ON_STATUSES`, terminal ones by default),
//! with the typed prediction. What it returns is kept with the event as the result.
//!
//! You need not worry about duplicates, ordering or crashes here: the claim around
//! `handle` runs it to completion once per (prediction, status). An `Err` or a panic
//! fails only this message: it is tried again, and lands in the DLQ after five tries.
//! Keep each side effect safe to repeat (a put, not an append): a run that crashes
//! halfway is run again from the start.
//!
//! The worked examples below run in the end-to-end tests:
//! - on `succeeded`: store the output, downloading it first when it is a URL;
//! - on `failed` (and `cancelled`, `abandoned`): record the error;
//! - chaining: when the input says `"then": {"model": "..."}`, create the next
//!   prediction from this one's output, with our webhook, so its events come back
//!   through the receiver and its work runs here in turn.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::adapters::{dynamo::DynamoLedger, sqs::SqsQueue};
use shared::error::BoxError;
use shared::ingest::Ingest;
use shared::ports::Outputs;
use shared::prediction::{Prediction, Status};
use shared::wriftai::{CreatePrediction, Webhook, WriftAi};

/// What the work can use; built once per cold start in `main.rs`. Add your own clients.
pub struct Context {
    pub outputs: DynamoLedger,
    pub api: WriftAi,
    /// Records a chained prediction as ours, so the receiver accepts its webhooks.
    pub ingest: Ingest<DynamoLedger, SqsQueue>,
    pub webhook: Option<Webhook>,
    /// For downloads; its timeout is `DOWNLOAD_TIMEOUT_SECS`.
    pub http: reqwest::Client,
    pub download_limit: u64,
}

pub async fn handle(prediction: &Prediction, ctx: &Context) -> Result<Value, BoxError> {
    match prediction.status {
        Status::Succeeded => on_success(prediction, ctx).await,
        Status::Failed | Status::Cancelled | Status::Abandoned => on_failure(prediction, ctx).await,
        // Only reached if you add non-terminal statuses to ACT_ON_STATUSES.
        _ => Ok(Value::Null),
    }
}

async fn on_success(prediction: &Prediction, ctx: &Context) -> Result<Value, BoxError> {
    let mut record = json!({"status": "succeeded", "output": prediction.output});
    if let Some(url) = prediction.output.as_str().filter(|s| s.starts_with("http://") || s.starts_with("https://")) {
        let (bytes, sha256) = download(ctx, url).await?;
        // A real app would put the bytes in S3; the digest shows they arrived whole.
        record["download"] = json!({"url": url, "bytes": bytes, "sha256": sha256});
    }
    if let Some(next) = chain(prediction, ctx).await? {
        record["next"] = json!(next);
    }
    // DynamoDB items stop at 400 KB: keep large outputs elsewhere, note their size here.
    if record.to_string().len() > 100_000 {
        record["output"] = json!({"omitted_bytes": prediction.output.to_string().len()});
    }
    ctx.outputs.store(prediction.id, &record).await?;
    Ok(json!({"stored": true, "next": record.get("next")}))
}

async fn on_failure(prediction: &Prediction, ctx: &Context) -> Result<Value, BoxError> {
    let record = json!({"status": prediction.status.as_str(), "error": prediction.error});
    ctx.outputs.store(prediction.id, &record).await?;
    Ok(json!({"stored": true}))
}

/// Creates the next prediction of a pipeline: input `{"prompt": <this output>}`, plus
/// the rest of the chain. Returns its ID.
async fn chain(prediction: &Prediction, ctx: &Context) -> Result<Option<String>, BoxError> {
    let Some(then) = prediction.input.get("then") else { return Ok(None) };
    let model = then.get("model").and_then(Value::as_str).ok_or("input.then.model must be a string")?;
    let prompt = match &prediction.output {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let mut input = json!({"prompt": prompt});
    if let Some(rest) = then.get("then") {
        input["then"] = rest.clone();
    }
    let request = CreatePrediction { model: model.to_owned(), input, webhook: ctx.webhook.clone(), wait: None };
    let next = shared::create::create(&ctx.api, &ctx.ingest, &request).await?;
    tracing::info!(next_id = %next.prediction.id, "chained the next prediction");
    Ok(Some(next.prediction.id.to_string()))
}

/// Downloads `url`, refusing more than `download_limit` bytes; returns the size and
/// SHA-256 of what arrived.
async fn download(ctx: &Context, url: &str) -> Result<(u64, String), BoxError> {
    let mut response = ctx.http.get(url).send().await?.error_for_status()?;
    if response.content_length().is_some_and(|len| len > ctx.download_limit) {
        return Err(format!("{url} is larger than {} bytes", ctx.download_limit).into());
    }
    let (mut bytes, mut digest) = (0u64, Sha256::new());
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        if bytes > ctx.download_limit {
            return Err(format!("{url} is larger than {} bytes", ctx.download_limit).into());
        }
        digest.update(&chunk);
    }
    Ok((bytes, hex::encode(digest.finalize())))
}
