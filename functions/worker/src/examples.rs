//! Worked examples that [`work::handle`](crate::work::handle) runs, each when the
//! prediction asks for it. They run in the end-to-end tests (`infra/e2e/tests/work/`).
//! - A succeeded prediction's output files (every URL in `output`): copy each to the
//!   stack's bucket (outputs.rs) and note its key, size, type and SHA-256 in `files`.
//! - An input with `"then": {"model": "..."}`: create the next prediction from this
//!   one's output, with our webhook, so its events come back through the receiver and
//!   its work runs here in turn.
//! - A failed prediction: keep a `triage` record beside its result, with what someone
//!   looking into failures wants first (model, error source and message, input).

use serde_json::{Value, json};
use shared::error::BoxError;
use shared::ports::{Ledger, Outputs, WorkQueue};
use shared::prediction::{Prediction, Status};
use shared::wriftai::CreatePrediction;

use crate::outputs;
use crate::work::Context;

/// Adds what the examples did to `record`, the prediction's `result`.
pub async fn run<T: Ledger + Outputs, Q: WorkQueue>(
    prediction: &Prediction,
    record: &mut Value,
    ctx: &Context<T, Q>,
) -> Result<(), BoxError> {
    if prediction.status == Status::Failed {
        keep_for_triage(prediction, ctx.table()).await?;
    }
    if prediction.status != Status::Succeeded {
        return Ok(());
    }
    if let Some(bucket) = &ctx.outputs {
        let mut files = Vec::new();
        for (position, url) in outputs::urls(&prediction.output) {
            files.push(bucket.copy(url, &outputs::key(prediction.id, &position, url), &position).await?);
        }
        if !files.is_empty() {
            record["files"] = json!(files);
        }
    }
    if let Some(next) = chain(prediction, ctx).await? {
        record["next"] = json!(next);
    }
    Ok(())
}

/// Creates the next prediction of a pipeline: input `{"prompt": <this output>}`, plus
/// the rest of the chain. Returns its ID.
///
/// The client never sends a create again after a 5xx, since WriftAI may have created
/// the prediction before failing. Two can still start: a create that WriftAI applied
/// but whose answer was lost (a 5xx, a timeout, a dropped connection) fails this run,
/// and the run's retry creates the next prediction again. WriftAI offers no idempotency
/// key that would let the retry find the first.
async fn chain<T: Ledger, Q: WorkQueue>(
    prediction: &Prediction,
    ctx: &Context<T, Q>,
) -> Result<Option<String>, BoxError> {
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

/// Keeps a failed prediction's `triage` record: a put under its own name, so a rerun
/// replaces it. The message and the input are kept whole up to `TRIAGE_FIELD_BYTES`
/// each, and as their size beyond: a record must fit in a DynamoDB item.
async fn keep_for_triage(prediction: &Prediction, table: &impl Outputs) -> Result<(), BoxError> {
    let error = prediction.error.as_ref();
    let triage = json!({
        "model": prediction.model.as_ref().map(|m| format!("{}/{}", m.owner, m.name)),
        "source": error.and_then(|e| e.source.as_deref()),
        "message": bounded(json!(error.and_then(|e| e.message.as_deref()))),
        "input": bounded(prediction.input.clone()),
    });
    table.store(prediction.id, "triage", &triage).await?;
    Ok(())
}

const TRIAGE_FIELD_BYTES: usize = 16 * 1024;

fn bounded(value: Value) -> Value {
    let bytes = value.to_string().len();
    if bytes > TRIAGE_FIELD_BYTES { json!({"omitted_bytes": bytes}) } else { value }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::work::tests::{context, prediction};

    #[tokio::test]
    async fn a_plain_output_is_neither_downloaded_nor_chained() {
        let ctx = context();
        let p = prediction("succeeded", json!({"prompt": "hi"}), json!("hello"), Value::Null);
        let mut record = json!({"status": "succeeded"});
        run(&p, &mut record, &ctx).await.unwrap();
        assert_eq!(record, json!({"status": "succeeded"}));
    }

    #[tokio::test]
    async fn a_failed_prediction_is_kept_for_triage_and_a_succeeded_one_is_not() {
        let ctx = context();
        let error = json!({"source": "external", "message": "prompt too long", "detail": null});
        let failed = prediction("failed", json!({"prompt": "long"}), Value::Null, error);
        run(&failed, &mut json!({}), &ctx).await.unwrap();
        let (triage, _) = ctx.table().output(failed.id, "triage").expect("a triage record");
        assert_eq!(
            triage,
            json!({"model": "acme/echo", "source": "external", "message": "prompt too long", "input": {"prompt": "long"}})
        );

        let succeeded = prediction("succeeded", json!({}), json!("fine"), Value::Null);
        run(&succeeded, &mut json!({}), &ctx).await.unwrap();
        assert_eq!(ctx.table().output(succeeded.id, "triage"), None);
    }

    #[tokio::test]
    async fn a_chain_without_a_model_fails_the_run() {
        let ctx = context();
        let p = prediction("succeeded", json!({"then": {"model": 7}}), json!("hello"), Value::Null);
        let err = run(&p, &mut json!({}), &ctx).await.unwrap_err();
        assert_eq!(err.to_string(), "input.then.model must be a string");
    }
}
