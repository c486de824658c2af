//! What a test of your work needs (feature `test-util`, for `[dev-dependencies]` only):
//! predictions as WriftAI sends them ([`prediction`]), and the context your `handle`
//! gets, in memory ([`Context::in_memory`](crate::Context::in_memory)).
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

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::prediction::{Prediction, PredictionId};

/// A prediction at `status` as WriftAI would send it: a fresh ID, model `acme/echo`,
/// empty input, no output, no error, created and updated now. Change what your test is
/// about, then [`build`](PredictionBuilder::build) it.
pub fn prediction(status: &str) -> PredictionBuilder {
    let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
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
