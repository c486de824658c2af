//! Worked examples of work, each an `async fn` of a prediction and the [`Context`],
//! each doing what it does only when the prediction asks for it. A project's `work.rs`
//! calls them from its `handle`; read them as patterns for your own. Each side effect
//! runs as a step ([`Steps`](crate::Steps)), so a run done again after a crash does not
//! do it twice.
//!
//! - [`copy_files`]: a succeeded prediction's output files (every URL in `output`) are
//!   copied to the stack's bucket, each once;
//! - [`chain`]: an input with `"then": {"model": "..."}` creates the next prediction
//!   from this one's output, once, with our webhook, so its work runs here in turn;
//! - [`triage`]: a failed prediction keeps a `triage` record beside its result, with
//!   what someone looking into failures wants first;
//! - [`notify`]: a failed prediction is posted to a URL, once.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::BoxError;
use crate::files::{self, CopyError, FINISH_MARGIN, File};
use crate::prediction::{Prediction, PredictionId, Status};
use crate::steps::{Failure, SendStep, StepError};
use crate::worker::Context;
use crate::wriftai::{CreatePrediction, WriftAi};

/// Tries of one file that fails in a way a retry may mend (a 5xx, a cut, a stall, the
/// run's time running out while it arrived), one per run of the work, before it is
/// recorded as failed and the work goes on. In the work's first two runs a file the run
/// had no time left to begin is not tried, and not charged: it waits for the next run
/// (issue 33, defect 5). From the third on it is charged, as a try cut short: so every
/// file has had its three tries by the fifth run, under the queue's five receives, and
/// the files alone never send the work to the DLQ.
pub const FILE_TRIES: u32 = 3;

/// Copies each file a succeeded prediction's output points at to the bucket, and says
/// what became of each. Whatever the links do, the work ends:
/// - a file copied by an earlier run (its step recorded with its key, size and SHA-256)
///   is not fetched again: WriftAI's URL may have expired since;
/// - a URL the checks refuse, a file that cannot be had (a 4xx, a host that does not
///   resolve or refuses the connection) or is past the limits (`OUTPUT_MAX_FILES`,
///   `DOWNLOAD_MAX_BYTES`, `OUTPUT_MAX_BYTES`) is recorded as refused, and never fetched
///   again;
/// - a file that fails in a way a retry may mend (a 5xx, a cut, a stall, the run's time
///   running out before it arrived) fails this run of the work, which tries it again, and
///   is recorded as failed after [`FILE_TRIES`] tries. A failure of the bucket itself
///   (nothing the file did) is not held against the file, nor, in the work's first two
///   runs, is the run's time running out before a file began: the files after it wait
///   for the next run untried.
///
/// Each download must end [`FINISH_MARGIN`] before the time the work has left. Without
/// a bucket ([`Context::files`] is `None`) nothing is copied.
pub async fn copy_files<S>(prediction: &Prediction, ctx: &Context<S>) -> Result<Vec<File>, BoxError> {
    let Some(files) = ctx.files().filter(|_| prediction.status == Status::Succeeded) else {
        return Ok(Vec::new());
    };
    let steps = ctx.steps(prediction);
    let limits = files.limits();
    let urls = files::urls(&prediction.output, limits.files);
    let deadline = crate::deadline::current().map(|by| by.checked_sub(FINISH_MARGIN).unwrap_or(by));
    let (mut copied, mut bytes, mut waiting) = (Vec::new(), 0, 0);
    for found in &urls.found {
        // No time left to begin it: the next run does, this one charges it nothing; but
        // from the work's FILE_TRIES-th run on it is charged, so that every file has had
        // its tries by the fifth run and the files alone never send the work to the DLQ.
        let first_runs = crate::worker::batch::attempt().unwrap_or(1) < FILE_TRIES;
        if first_runs && deadline.is_some_and(|by| tokio::time::Instant::now() >= by) {
            waiting += 1;
            continue;
        }
        let limit = limits.per_file.min(limits.per_prediction.saturating_sub(bytes));
        let copy = |tries| async move {
            match files.copy(prediction.id, found, limit, deadline).await {
                Ok(file) => Ok(file),
                Err(err @ CopyError::Origin { .. }) if tries + 1 >= FILE_TRIES => {
                    Ok(File::failed(found, tries + 1, &err))
                }
                Err(err @ CopyError::Origin { .. }) => Err(Failure::tried(err)),
                // The bucket failed, not the file: tried again, not counted.
                Err(CopyError::Bucket(err)) => Err(Failure::Unknown(err)),
            }
        };
        // A copy writes a whole object under a fixed key: safe to repeat until done.
        match steps.once_repeatable(&format!("file output{}", found.pointer), copy).await {
            Ok(file) => {
                bytes += file.bytes();
                copied.push(file);
            }
            Err(StepError::Failed { name, source }) => {
                tracing::warn!(step = name, error = %crate::error::chain(source.as_ref()), "a file is not copied yet");
                waiting += 1;
            }
            Err(err) => return Err(err.into()),
        }
    }
    if waiting > 0 {
        return Err(format!("{waiting} file(s) of the output not copied yet: the work tries them again").into());
    }
    if urls.past_limit > 0 {
        copied.push(File::past_limit(urls.past_limit, limits.files));
    }
    Ok(copied)
}

/// Creates the next prediction of a pipeline: input `{"prompt": <this output>}`, plus
/// the rest of the chain. Returns its ID.
///
/// At most once: the intent is recorded before the create, and the new prediction's ID
/// straight after. A run done again that finds the intent and no ID (the create's answer
/// was lost, or the run died before recording it) looks for the prediction among
/// WriftAI's recent ones (by the mark it left); found, it is taken as this one's; not
/// found, the work fails to the DLQ saying so, rather than create a second one.
pub async fn chain<S>(prediction: &Prediction, ctx: &Context<S>) -> Result<Option<PredictionId>, BoxError> {
    let Some(then) = prediction.input.get("then").filter(|_| prediction.status == Status::Succeeded) else {
        return Ok(None);
    };
    let model = then.get("model").and_then(Value::as_str).ok_or("input.then.model must be a string")?;
    let prompt = match &prediction.output {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let mut input = json!({"prompt": prompt});
    if let Some(rest) = then.get("then") {
        input["then"] = rest.clone();
    }
    let request = CreatePrediction { model: model.to_owned(), input, webhook: ctx.webhook().cloned(), wait: None };
    let api = ctx.wriftai();
    // The new prediction carries this step's mark, which WriftAI gives back in its input:
    // what a rerun looks for, since another prediction's chain may create one with the
    // same model and input.
    let create = |mark: String| {
        let mut request = request.clone();
        request.input["chained_from"] = json!({"prediction_id": prediction.id, "mark": mark});
        async move {
            let created = api.create(&request).await;
            let created =
                created.map_err(|e| if e.did_nothing() { Failure::not_done(e) } else { Failure::Unknown(e.into()) });
            created.map(|c| c.prediction.id)
        }
    };
    let find = |since, mark| find_created(api, &request.model, since, mark);
    let next: PredictionId = ctx.steps(prediction).once_or_find("chain", create, find).await?;
    // Ours, so its webhooks are accepted. Registering again is harmless.
    ctx.register(next).await?;
    tracing::info!(next_id = %next, "chained the next prediction");
    Ok(Some(next))
}

/// Whether a listed model's `version_number` (a number, as WriftAI writes it; or text)
/// is the version a model name pins (`owner/name:3`).
fn same_version(listed: &Value, pinned: &str) -> bool {
    match listed {
        Value::String(text) => text == pinned,
        Value::Number(number) => number.to_string() == pinned,
        _ => false,
    }
}

/// Clocks differ: a prediction created this long before the intent was recorded still
/// counts as created after it.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(2);
/// Pages of WriftAI's predictions looked through at most, 100 each.
const PAGES: usize = 10;

/// The prediction a chain step created under `mark`, if WriftAI knows one: among the
/// predictions of `model` it lists (at most [`PAGES`] pages, in no order WriftAI
/// promises) created since `since`, the one whose input carries the mark. A listed
/// prediction without its input is read with a `GET`: on a busy account the look can
/// outlast the work's time, and the step then fails as unknown.
async fn find_created(
    api: &WriftAi,
    model: &str,
    since: OffsetDateTime,
    mark: String,
) -> Result<Option<PredictionId>, BoxError> {
    let (name, version) = model.split_once(':').unwrap_or((model, ""));
    let mut cursor = None;
    for _ in 0..PAGES {
        let page = api.list(&[], cursor.as_deref(), 100).await?;
        for item in page.items {
            let created = item.created_at.as_deref().and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok());
            let same_model = item.model.as_ref().is_some_and(|m| {
                format!("{}/{}", m.owner, m.name) == name
                    && (version.is_empty() || m.version_number.as_ref().is_some_and(|v| same_version(v, version)))
            });
            if !same_model || created.is_some_and(|at| at < since - CLOCK_SKEW) {
                continue;
            }
            // A list may leave the input out: then it is read from the prediction itself.
            let input = match item.input {
                Value::Null => api.get(item.id).await?.map(|full| full.prediction.input).unwrap_or_default(),
                input => input,
            };
            // A mark is unique to one beginning of one step: the first is the one.
            if input["chained_from"]["mark"].as_str() == Some(mark.as_str()) {
                return Ok(Some(item.id));
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(None)
}

/// Keeps a failed prediction's `triage` record: a put under its own name, so a rerun
/// replaces it. Any size: a record too large for an item goes to the bucket.
pub async fn triage<S>(prediction: &Prediction, ctx: &Context<S>) -> Result<(), BoxError> {
    if prediction.status != Status::Failed {
        return Ok(());
    }
    let error = prediction.error.as_ref();
    let triage = json!({
        "model": prediction.model.as_ref().map(|m| format!("{}/{}", m.owner, m.name)),
        "source": error.and_then(|e| e.source.as_deref()),
        "message": error.and_then(|e| e.message.as_deref()),
        "input": prediction.input,
    });
    ctx.records().store(prediction.id, "triage", &triage).await?;
    Ok(())
}

/// Tells someone a prediction failed: POSTs `{"prediction_id", "status", "model",
/// "error"}` to `url`, at most once per prediction. [`SendStep::send_step`] says what a
/// failed post left: one that surely did not arrive (no connection; the sink refused it
/// with a 4xx or a 503) is tried again with the work; one that may have arrived (no
/// answer, another 5xx) is not, and the work fails to the DLQ saying so.
pub async fn notify<S>(prediction: &Prediction, ctx: &Context<S>, url: &str) -> Result<(), BoxError> {
    if prediction.status != Status::Failed {
        return Ok(());
    }
    let message = json!({
        "prediction_id": prediction.id,
        "status": prediction.status.as_str(),
        "model": prediction.model.as_ref().map(|m| format!("{}/{}", m.owner, m.name)),
        "error": prediction.error.as_ref().and_then(|e| e.message.as_deref()),
    });
    ctx.steps(prediction)
        .once("notify", || async {
            let answer = ctx.http().post(url).json(&message).send_step().await?;
            Ok(answer.status().as_u16())
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ports::{RecordTable, StepKey, StepState};
    use crate::testing::prediction;

    /// A local WriftAI (the simulator), and its base URL.
    async fn wriftai() -> (wriftai_sim::Running, String) {
        let mut config = wriftai_sim::Config::new("test");
        config.port = 0;
        let running = wriftai_sim::start(config).await.unwrap();
        let base = format!("{}/v1", running.base_url);
        (running, base)
    }

    /// A context in memory whose WriftAI is the simulator at `base`.
    fn on_sim(base: &str) -> Context {
        let config = crate::wriftai::ApiConfig::for_tests(base);
        Context::in_memory(()).with_wriftai(WriftAi::new(config).unwrap())
    }

    /// The predictions WriftAI holds for `model` whose prompt is `prompt`.
    async fn created(api: &WriftAi, model: &str, prompt: &str) -> Vec<PredictionId> {
        let page = api.list(&[], None, 100).await.unwrap();
        let mut found = Vec::new();
        for item in page.items.iter().filter(|i| i.model.as_ref().is_some_and(|m| m.name == model)) {
            if api.get(item.id).await.unwrap().unwrap().prediction.input["prompt"] == prompt {
                found.push(item.id);
            }
        }
        found
    }

    /// Records the intent of `p`'s chain step, as a run that then died would have left
    /// it; its mark.
    async fn chain_begun(ctx: &Context, p: &Prediction) -> String {
        let key = StepKey { id: p.id, status: &p.status, name: "chain" };
        match ctx.ingest.ledger().begin_step(key, crate::clock::now()).await.unwrap() {
            StepState::Begun { token } => token,
            other => panic!("not begun: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_plain_output_is_neither_copied_nor_chained() {
        let ctx = Context::in_memory(());
        let p = prediction("succeeded").input(json!({"prompt": "hi"})).output("hello").build();
        assert_eq!(copy_files(&p, &ctx).await.unwrap(), []);
        assert_eq!(chain(&p, &ctx).await.unwrap(), None);
        assert!(ctx.wriftai().memory().unwrap().predictions().is_empty(), "nothing created");
    }

    #[tokio::test]
    async fn a_failed_prediction_is_kept_for_triage_and_a_succeeded_one_is_not() {
        let ctx = Context::in_memory(());
        let failed = prediction("failed").input(json!({"prompt": "long"})).error("external", "prompt too long").build();
        triage(&failed, &ctx).await.unwrap();
        let (triage_record, _) = ctx.memory_table().record(failed.id, "triage").expect("a triage record");
        assert_eq!(
            triage_record,
            json!({"model": "acme/echo", "source": "external", "message": "prompt too long", "input": {"prompt": "long"}})
        );
        let succeeded = prediction("succeeded").output("fine").build();
        triage(&succeeded, &ctx).await.unwrap();
        assert_eq!(ctx.memory_table().record(succeeded.id, "triage"), None);
    }

    #[tokio::test]
    async fn an_error_or_output_too_large_for_an_item_is_kept_as_its_size_without_a_bucket() {
        let ctx = Context::in_memory(()).without_files();
        let failed = prediction("failed").error("external", &"e".repeat(500_000)).build();
        triage(&failed, &ctx).await.unwrap();
        ctx.records().store(failed.id, "result", &json!({"output": "x".repeat(500_000)})).await.unwrap();
        for name in ["triage", "result"] {
            let (kept, writes) = ctx.memory_table().kept(failed.id, name).unwrap();
            assert!(matches!(kept, crate::ports::Kept::Cut { bytes, .. } if bytes > 500_000), "{name}: {kept:?}");
            assert_eq!(writes, 1);
        }
    }

    #[tokio::test]
    async fn a_chain_without_a_model_fails_the_run() {
        let ctx = Context::in_memory(());
        let p = prediction("succeeded").input(json!({"then": {"model": 7}})).output("hello").build();
        let err = chain(&p, &ctx).await.unwrap_err();
        assert_eq!(err.to_string(), "input.then.model must be a string");
    }

    #[tokio::test]
    async fn a_chain_run_again_creates_the_next_prediction_once_and_registers_it() {
        let ctx = Context::in_memory(());
        let p = prediction("succeeded").input(json!({"then": {"model": "acme/next:3"}})).output("again").build();
        // The first run chains, then dies; the retry runs the work again.
        let first = chain(&p, &ctx).await.unwrap().unwrap();
        assert_eq!(chain(&p, &ctx).await.unwrap(), Some(first));
        let made = ctx.wriftai().memory().unwrap().predictions();
        assert_eq!(made.iter().map(|m| m.id).collect::<Vec<_>>(), [first], "one next prediction");
        assert_eq!(made[0].input["prompt"], "again");
        assert!(ctx.memory_table().prediction(first).is_some(), "registered as ours");
    }

    #[tokio::test]
    async fn a_crash_after_the_chain_creates_the_next_prediction_once_on_the_simulator() {
        let (_wriftai, base) = wriftai().await;
        let ctx = on_sim(&base);
        let p = prediction("succeeded").input(json!({"then": {"model": "acme/next"}})).output("crash test").build();
        let first = chain(&p, &ctx).await.unwrap().unwrap();
        assert_eq!(chain(&p, &ctx).await.unwrap(), Some(first), "the retry finds the recorded outcome");
        assert_eq!(created(ctx.wriftai(), "next", "crash test").await, [first], "one next prediction");
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_is_found_at_wriftai_and_not_made_again() {
        let (_wriftai, base) = wriftai().await;
        let ctx = on_sim(&base);
        let p = prediction("succeeded").input(json!({"then": {"model": "acme/lost"}})).output("lost answer").build();
        // An earlier run recorded its intent, created the prediction with its mark, and
        // died before the answer came back.
        let mark = chain_begun(&ctx, &p).await;
        let input = json!({"prompt": "lost answer", "chained_from": {"prediction_id": p.id, "mark": mark}});
        let request = CreatePrediction { model: "acme/lost".into(), input, webhook: None, wait: None };
        let made = ctx.wriftai().create(&request).await.unwrap().prediction.id;
        let next = chain(&p, &ctx).await.unwrap();
        assert_eq!(next, Some(made), "the lost prediction is found and taken as this one's");
        assert_eq!(created(ctx.wriftai(), "lost", "lost answer").await, [made]);
        assert!(ctx.memory_table().prediction(made).is_some(), "and registered as ours");
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_is_found_for_a_model_pinned_to_a_version() {
        // WriftAI (and the simulator) write `version_number` as a number.
        let ctx = Context::in_memory(());
        let p = prediction("succeeded").input(json!({"then": {"model": "acme/lost:3"}})).output("pinned").build();
        let mark = chain_begun(&ctx, &p).await;
        let input = json!({"prompt": "pinned", "chained_from": {"prediction_id": p.id, "mark": mark}});
        let request = CreatePrediction { model: "acme/lost:3".into(), input, webhook: None, wait: None };
        let made = ctx.wriftai().create(&request).await.unwrap().prediction;
        assert_eq!(made.model.as_ref().and_then(|m| m.version_number.clone()), Some(json!(3)));
        assert_eq!(chain(&p, &ctx).await.unwrap(), Some(made.id), "found, not failed as unknown");
        assert_eq!(ctx.wriftai().memory().unwrap().predictions().len(), 1, "and not made again");
    }

    #[tokio::test]
    async fn another_parents_child_with_the_same_model_and_input_is_never_taken_as_this_ones() {
        let (_wriftai, base) = wriftai().await;
        let ctx = on_sim(&base);
        let then = json!({"then": {"model": "acme/twin"}});
        let (p1, p2) = (
            prediction("succeeded").input(then.clone()).output("same output").build(),
            prediction("succeeded").input(then).output("same output").build(),
        );
        // P1's create was recorded as begun and never reached WriftAI; P2, with the same
        // output and `then`, creates its child.
        chain_begun(&ctx, &p1).await;
        let c2 = chain(&p2, &ctx).await.unwrap().unwrap();
        // P1's rerun finds no child of its own: unknown, and it does not take P2's.
        let err = chain(&p1, &ctx).await.unwrap_err();
        assert!(matches!(err.downcast_ref::<StepError>(), Some(StepError::Unknown { .. })), "{err}");
        assert_eq!(created(ctx.wriftai(), "twin", "same output").await, [c2]);
        let child = ctx.wriftai().get(c2).await.unwrap().unwrap().prediction;
        assert_eq!(child.input["chained_from"]["prediction_id"], json!(p2.id), "the child says whose it is");
    }

    #[tokio::test]
    async fn an_intent_whose_prediction_wriftai_does_not_have_fails_as_unknown_and_creates_nothing() {
        let (_wriftai, base) = wriftai().await;
        let ctx = on_sim(&base);
        let p = prediction("succeeded").input(json!({"then": {"model": "acme/never"}})).output("never made").build();
        chain_begun(&ctx, &p).await;
        let err = chain(&p, &ctx).await.unwrap_err();
        let unknown = err.downcast_ref::<StepError>();
        assert!(matches!(unknown, Some(StepError::Unknown { .. })), "{err}");
        assert!(err.to_string().contains("may have had its effect"), "{err}");
        assert!(created(ctx.wriftai(), "never", "never made").await.is_empty());
    }

    /// A notification sink that counts the posts it gets.
    async fn sink() -> (wriftai_sim::Running, String) {
        let (running, base) = wriftai().await;
        (running, format!("{}/_sim/notify", base.trim_end_matches("/v1")))
    }

    #[tokio::test]
    async fn a_failed_prediction_is_notified_once_whatever_crashes_around_it() {
        let (sim, url) = sink().await;
        let ctx = Context::in_memory(());
        let p = prediction("failed").error("internal", "boom").build();
        // The first run notifies, then dies; the work runs twice more.
        for _ in 0..3 {
            notify(&p, &ctx, &url).await.unwrap();
        }
        let posts = sim.state.notifications.posts(Some(&p.id.to_string()));
        assert_eq!(posts.len(), 1, "{posts:?}");
        assert_eq!(posts[0]["error"], "boom");
        // A succeeded prediction is not notified.
        let ok = prediction("succeeded").output("fine").build();
        notify(&ok, &ctx, &url).await.unwrap();
        assert!(sim.state.notifications.posts(Some(&ok.id.to_string())).is_empty());
    }

    #[tokio::test]
    async fn a_notification_that_never_arrived_is_sent_by_the_retry() {
        // Nothing listens here: the post is refused before it is sent.
        let url = "http://127.0.0.1:9/_sim/notify";
        let ctx = Context::in_memory(());
        let p = prediction("failed").error("internal", "boom").build();
        let err = notify(&p, &ctx, url).await.unwrap_err();
        assert!(matches!(err.downcast_ref::<StepError>(), Some(StepError::Failed { .. })), "{err}");
        let (sim, url) = sink().await;
        notify(&p, &ctx, &url).await.unwrap();
        assert_eq!(sim.state.notifications.posts(Some(&p.id.to_string())).len(), 1);
    }
}
