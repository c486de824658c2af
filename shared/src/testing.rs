//! What a test of your work needs (feature `test-util`, for `[dev-dependencies]` only):
//! predictions as WriftAI sends them ([`prediction`]), the context your `handle` gets, in
//! memory ([`Context::in_memory`](crate::Context::in_memory)), and the local stack your
//! project's end-to-end tests run against ([`LocalStack`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use serde_json::json;
//! use wriftai_hooks::Context;
//! use wriftai_hooks::testing::prediction;
//!
//! let ctx = Context::in_memory(());
//! let failed = prediction("failed").model("acme/echo").error("internal", "out of memory").build();
//! wriftai_hooks::examples::triage(&failed, &ctx).await.unwrap();
//! let triage = ctx.records().load(failed.id, "triage").await.unwrap().unwrap();
//! assert_eq!(triage["message"], json!("out of memory"));
//! # }
//! ```

use std::time::Duration;

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

pub use crate::adapters::memory::MemoryWriftAi;
use crate::error::BoxError;
use crate::ops::{self, Ops};
use crate::prediction::{Prediction, PredictionId, Status};

/// A prediction at `status` as WriftAI would send it: a fresh ID, model `acme/echo`,
/// empty input, no output, no error, created and updated now. Change what your test is
/// about, then [`build`](PredictionBuilder::build) it.
pub fn prediction(status: &str) -> PredictionBuilder {
    let now = crate::clock::now().format(&Rfc3339).unwrap_or_default();
    PredictionBuilder {
        body: json!({
            "id": PredictionId::random().to_string(), "status": status,
            "created_at": now, "updated_at": now,
            "model": {"owner": "acme", "name": "echo", "version_number": null},
            "input": {}, "output": null, "error": null, "metrics": null,
            "setup_time": null, "execution_time": null, "stream": false,
        }),
    }
}

/// A prediction's body, being written: see [`prediction`].
#[derive(Clone, Debug)]
pub struct PredictionBuilder {
    body: Value,
}

impl PredictionBuilder {
    /// Its ID.
    pub fn id(mut self, id: PredictionId) -> Self {
        self.body["id"] = json!(id);
        self
    }

    /// Its model, `owner/name` or `owner/name:version`.
    pub fn model(mut self, model: &str) -> Self {
        let (name, version) = model.split_once(':').map_or((model, None), |(name, v)| (name, Some(v)));
        let (owner, name) = name.split_once('/').unwrap_or(("", name));
        let version = version.map(|v| v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n)));
        self.body["model"] = json!({"owner": owner, "name": name, "version_number": version});
        self
    }

    /// Its input.
    pub fn input(mut self, input: Value) -> Self {
        self.body["input"] = input;
        self
    }

    /// Its output: text, a URL, a list of them, any JSON.
    pub fn output(mut self, output: impl Into<Value>) -> Self {
        self.body["output"] = output.into();
        self
    }

    /// Its error, as WriftAI reports a failed prediction's: `source` is `internal` or
    /// `external`.
    pub fn error(mut self, source: &str, message: &str) -> Self {
        self.body["error"] = json!({"source": source, "message": message, "detail": null});
        self
    }

    /// Any other field, as WriftAI might add one.
    pub fn field(mut self, name: &str, value: Value) -> Self {
        self.body[name] = value;
        self
    }

    /// Its JSON text, as the webhook's body.
    pub fn json(&self) -> String {
        self.body.to_string()
    }

    /// The prediction, parsed as the receiver parses a webhook's body.
    ///
    /// # Panics
    ///
    /// When a field set above makes the body unreadable (an `id` that is not a UUID, a
    /// `status` too long): a test's mistake.
    pub fn build(&self) -> Prediction {
        Prediction::from_json(self.json().as_bytes()).expect("the test's prediction reads as WriftAI's")
    }
}

/// The local stack a project's `make test` starts (`make e2e` alone): DynamoDB Local,
/// moto, the WriftAI simulator, the functions under `cargo lambda watch` and the glue
/// between them, its endpoints exported to the tests from `.local/stack.env`. An
/// end-to-end test of your worker creates a prediction through WriftAI and waits for
/// its work:
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use wriftai_hooks::testing::LocalStack;
///
/// let stack = LocalStack::from_env().await.unwrap();
/// let id = stack.create("acme/echo", serde_json::json!({"prompt": "hi"})).await.unwrap();
/// let report = stack.worked(id, Duration::from_secs(60)).await.unwrap();
/// assert_eq!(report["status"], "succeeded");
/// # }
/// ```
pub struct LocalStack {
    ops: Ops,
}

impl LocalStack {
    /// The stack the environment names (the variables `.local/stack.env` holds, which
    /// `make test` exports): the same the functions and `hooks` read.
    pub async fn from_env() -> Result<Self, BoxError> {
        Ok(Self { ops: Ops::from_env().await? })
    }

    /// Creates a prediction of `model` on `input` through WriftAI (the simulator,
    /// locally) with the stack's webhook, recorded as ours first, as `make create` does.
    pub async fn create(&self, model: &str, input: Value) -> Result<PredictionId, BoxError> {
        let created = ops::create(&self.ops, model.to_owned(), input, None).await?;
        let id = created["id"].as_str().ok_or("WriftAI's answer has no id")?;
        Ok(PredictionId::parse(id)?)
    }

    /// Waits, at most `within`, until the receiver has recorded the prediction finished
    /// and the worker has done the work of each of its events it acts on; then gives its
    /// timeline as `hooks inspect --json` does (`status`, `events` with each one's
    /// `work`, `records`, `steps`). Past `within`, an error says what it was waiting for.
    pub async fn worked(&self, id: PredictionId, within: Duration) -> Result<Value, BoxError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let waiting = match ops::inspect(&self.ops, id).await {
                Ok(report) => match waiting_for(&report) {
                    None => return Ok(report),
                    Some(what) => what,
                },
                Err(ops::OpsError::NoSuchPrediction(_)) => "the prediction to be recorded".to_owned(),
                Err(err) => return Err(err.into()),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("{id}: after {within:?}, still waiting for {waiting}").into());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// What a prediction's report still waits for: its finished status, or the work of an
/// event; `None` when it is worked.
fn waiting_for(report: &Value) -> Option<String> {
    let finished = report["status"].as_str().and_then(|s| Status::parse(s).ok()).is_some_and(|s| s.is_terminal());
    if !finished {
        return Some(format!("a finished status (it is {})", report["status"]));
    }
    let events = report["events"].as_array().map(Vec::as_slice).unwrap_or_default();
    let undone = events.iter().find(|event| !event["work"].is_null() && event["work"]["state"] != "done")?;
    Some(format!(
        "the work of {} (it is {}, its last error {})",
        undone["status"], undone["work"]["state"], undone["work"]["last_error"]
    ))
}
