//! YOUR WORK. This is the file to edit.
//!
//! [`handle`] is called once per prediction that reaches a status the worker acts on
//! (`ACT_ON_STATUSES`, the terminal ones by default), with the typed prediction. What it
//! returns is kept with the event as the work's result.
//!
//! Duplicates, ordering and crashes are handled around it: the worker runs `handle` to
//! completion once per (prediction, status). An `Err` or a panic fails only this
//! message: it is tried again, and lands in the dead-letter queue after five tries. A
//! run that fails or crashes halfway runs again from the top, so run each side effect
//! as a step: `ctx.steps(prediction).once("name", || async { ... })` runs it at most
//! once per (prediction, status, name), and a run done again gets the outcome the first
//! recorded. A put that writes a whole record is safe without one.
//!
//! To call another service: a setting in [`Settings`] (and in `template.yaml`), and the
//! call in `handle`, in a step; `ctx.http()` is an HTTP client, and `send_step()` says
//! whether a failed request may have had its effect. For an AWS service, build its
//! client in [`Settings::new`] from `setup.aws()`.

use serde_json::{Value, json};
use wriftai_hooks::{BoxError, Context, Prediction, Setup, Status, examples};

/// Your settings, read once at cold start from the function's environment: a missing or
/// malformed one stops the start, named. `template.yaml` sets them on AWS, `infra/local.env`
/// locally.
pub struct Settings {
    /// Where failed predictions are posted (`NOTIFY_URL`); none: they are not.
    pub notify_url: Option<String>,
}

impl Settings {
    pub fn new(setup: &Setup) -> Result<Self, BoxError> {
        Ok(Self { notify_url: setup.var("NOTIFY_URL") })
    }
}

/// Each finished prediction's outcome is kept as its `result` record, after the worked
/// examples (`wriftai_hooks::examples`) did what the prediction asks of them. Replace
/// them with your own work; the tests below hold whatever `handle` does to "it ends".
pub async fn handle(prediction: &Prediction, ctx: &Context<Settings>) -> Result<Value, BoxError> {
    let mut result = match prediction.status {
        Status::Succeeded => json!({"status": "succeeded", "output": prediction.output}),
        Status::Failed | Status::Cancelled | Status::Abandoned => {
            json!({"status": prediction.status.as_str(), "error": prediction.error})
        }
        // Only reached if you add non-terminal statuses to ACT_ON_STATUSES.
        _ => return Ok(Value::Null),
    };
    // Copy the output's files to the stack's bucket; chain the next prediction when the
    // input asks (`"then": {"model": ...}`); keep a failure for triage; tell someone.
    let copied = examples::copy_files(prediction, ctx).await?;
    if !copied.is_empty() {
        result["files"] = json!(copied);
    }
    if let Some(next) = examples::chain(prediction, ctx).await? {
        result["next"] = json!(next);
    }
    examples::triage(prediction, ctx).await?;
    if let Some(url) = &ctx.settings().notify_url {
        examples::notify(prediction, ctx, url).await?;
    }
    ctx.records().store(prediction.id, "result", &result).await?;
    Ok(json!({"stored": true, "next": result.get("next")}))
}

#[cfg(test)]
mod tests {
    use wriftai_hooks::testing::prediction;

    use super::*;

    fn context() -> Context<Settings> {
        Context::in_memory(Settings { notify_url: None })
    }

    #[tokio::test]
    async fn a_succeeded_prediction_keeps_its_output_as_the_result() {
        let ctx = context();
        let p = prediction("succeeded").input(json!({"prompt": "hi"})).output("hello").build();
        handle(&p, &ctx).await.unwrap();
        let kept = ctx.records().load(p.id, "result").await.unwrap();
        assert_eq!(kept, Some(json!({"status": "succeeded", "output": "hello"})));
    }

    #[tokio::test]
    async fn a_failed_prediction_keeps_its_error() {
        let ctx = context();
        let p = prediction("failed").error("internal", "out of memory").build();
        handle(&p, &ctx).await.unwrap();
        let kept = ctx.records().load(p.id, "result").await.unwrap().unwrap();
        assert_eq!(kept["error"]["message"], "out of memory");
    }

    #[tokio::test]
    async fn a_status_that_is_not_terminal_stores_nothing() {
        let ctx = context();
        let p = prediction("started").build();
        assert_eq!(handle(&p, &ctx).await.unwrap(), Value::Null);
        assert_eq!(ctx.records().load(p.id, "result").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_run_done_again_ends_as_the_first_did() {
        let ctx = context();
        let p = prediction("succeeded").input(json!({"then": {"model": "acme/next"}})).output("hi").build();
        let first = handle(&p, &ctx).await.unwrap();
        assert_eq!(handle(&p, &ctx).await.unwrap(), first, "a rerun's steps give their recorded outcomes");
    }

    #[test]
    fn the_settings_are_read_from_the_environment() {
        let settings = Settings::new(&Setup::of(&[("NOTIFY_URL", "https://example.com/hook")])).unwrap();
        assert_eq!(settings.notify_url.as_deref(), Some("https://example.com/hook"));
        assert_eq!(Settings::new(&Setup::of(&[])).unwrap().notify_url, None);
    }
}
