//! How one prediction behaves: the optional `input.sim` object, the model-name
//! shortcuts, and the deterministic output derived from the input.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::prediction::{ModelRef, Status};

/// Largest `output_bytes` accepted: big enough for "huge payload" tests, small enough
/// that one request cannot exhaust memory.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024 * 1024;
/// Size of a served output file when `output_bytes` is not given.
pub const DEFAULT_FILE_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Stays `started` until cancelled (or the maximum run time fails it).
    Never,
}

/// How the file of an `output_url` prediction goes wrong, when it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFault {
    /// 404, as once the prediction's data is gone.
    Missing,
    /// The connection drops halfway through the body.
    Cut,
    /// The first KiB, then nothing, ever.
    Stall,
    /// Served whole once, then 404, as a URL that expires after its first use.
    Once,
    /// 503 the first time, then served whole: an origin that fails for a moment.
    #[serde(rename = "error_once")]
    ErrorOnce,
    /// Served whole with a 16 KiB `Content-Type`, as an origin may write one.
    #[serde(rename = "long_type")]
    LongType,
}

/// The `sim` object as sent; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimInput {
    outcome: Option<Outcome>,
    step_ms: Option<u64>,
    expire_after_ms: Option<u64>,
    drop_webhooks: Option<bool>,
    drop_statuses: Option<Vec<Status>>,
    output_bytes: Option<usize>,
    output_url: Option<bool>,
    file_fault: Option<FileFault>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Behaviour {
    pub outcome: Outcome,
    pub step: Duration,
    pub expire_after: Option<Duration>,
    pub drop_webhooks: bool,
    pub drop_statuses: Vec<Status>,
    pub output_bytes: Option<usize>,
    pub output_url: bool,
    pub file_fault: Option<FileFault>,
}

impl Behaviour {
    /// Model names `fail`, `never` and `slow` choose a behaviour for clients that cannot
    /// shape `input` (the official client in a notebook); `sim` fields override them.
    pub fn parse(input: &Value, model: &ModelRef, default_step: Duration) -> Result<Self, ApiError> {
        let sim = match input.get("sim") {
            None | Some(Value::Null) => SimInput::default(),
            Some(raw) => SimInput::deserialize(raw).map_err(|e| ApiError::unprocessable(format!("input.sim: {e}")))?,
        };
        let (model_outcome, model_step) = match model.name.as_str() {
            "fail" => (Outcome::Failed, None),
            "never" => (Outcome::Never, None),
            "slow" => (Outcome::Succeeded, Some(Duration::from_secs(1))),
            _ => (Outcome::Succeeded, None),
        };
        let output_bytes = sim.output_bytes;
        if output_bytes.is_some_and(|n| n > MAX_OUTPUT_BYTES) {
            return Err(ApiError::unprocessable(format!("input.sim.output_bytes must be at most {MAX_OUTPUT_BYTES}")));
        }
        Ok(Self {
            outcome: sim.outcome.unwrap_or(model_outcome),
            step: sim.step_ms.map(Duration::from_millis).or(model_step).unwrap_or(default_step),
            expire_after: sim.expire_after_ms.map(Duration::from_millis),
            drop_webhooks: sim.drop_webhooks.unwrap_or(false),
            drop_statuses: sim.drop_statuses.unwrap_or_default(),
            output_bytes,
            output_url: sim.output_url.unwrap_or(false),
            file_fault: sim.file_fault,
        })
    }

    /// Whether every delivery of this status is to be dropped.
    pub fn drops(&self, status: Status) -> bool {
        self.drop_webhooks || self.drop_statuses.contains(&status)
    }

    /// The output of a succeeded prediction. `file_url` is where `/_sim/files/<id>` is
    /// served, used when `output_url` is set.
    pub fn output(&self, input: &Value, file_url: &str) -> Value {
        if self.output_url {
            return Value::String(file_url.to_owned());
        }
        if let Some(n) = self.output_bytes {
            return Value::String(repeat_to(&echo_text(input), n));
        }
        match prompt(input) {
            Some(p) => Value::String(format!("echo: {p}")),
            None => without_sim(input),
        }
    }

    /// The content served at `/_sim/files/<id>`.
    pub fn file_content(&self, input: &Value) -> String {
        repeat_to(&echo_text(input), self.output_bytes.unwrap_or(DEFAULT_FILE_BYTES))
    }
}

fn prompt(input: &Value) -> Option<&str> {
    input.get("prompt").and_then(Value::as_str)
}

/// The input with its `sim` key removed: chaos knobs are not part of the "real" input.
fn without_sim(input: &Value) -> Value {
    match input {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(k, _)| k.as_str() != "sim").map(|(k, v)| (k.clone(), v.clone())).collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// The text an output is made of: `echo: <prompt>`, or the input (without `sim`) as
/// JSON. Never empty, so it can be repeated to any length.
fn echo_text(input: &Value) -> String {
    match prompt(input) {
        Some(p) => format!("echo: {p}"),
        None => without_sim(input).to_string(),
    }
}

/// `text` repeated and cut to exactly `n` characters (characters, not bytes, so a
/// multi-byte prompt never splits a code point).
fn repeat_to(text: &str, n: usize) -> String {
    text.chars().cycle().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(name: &str) -> ModelRef {
        ModelRef { owner: "acme".into(), name: name.into(), version_number: 1 }
    }

    fn parse(input: Value, name: &str) -> Result<Behaviour, ApiError> {
        Behaviour::parse(&input, &model(name), Duration::from_millis(50))
    }

    #[test]
    fn a_prompt_is_echoed_and_other_input_is_returned_without_sim() {
        let b = parse(json!({}), "echo").ok();
        let out = b.as_ref().map(|b| b.output(&json!({"prompt": "hi", "sim": {}}), "u"));
        assert_eq!(out, Some(json!("echo: hi")));
        let out = b.map(|b| b.output(&json!({"n": 1, "sim": {"step_ms": 1}}), "u"));
        assert_eq!(out, Some(json!({"n": 1})));
    }

    #[test]
    fn output_bytes_gives_exactly_that_many_characters() {
        let input = json!({"prompt": "é", "sim": {"output_bytes": 1001}});
        let out = parse(input.clone(), "echo").map(|b| b.output(&input, "u")).ok();
        let text = out.as_ref().and_then(Value::as_str).unwrap_or_default();
        assert_eq!(text.chars().count(), 1001);
        assert!(text.starts_with("echo: éecho: é"));
    }

    #[test]
    fn model_names_choose_a_behaviour_and_sim_overrides_them() {
        assert_eq!(parse(json!({}), "fail").map(|b| b.outcome).ok(), Some(Outcome::Failed));
        assert_eq!(parse(json!({}), "never").map(|b| b.outcome).ok(), Some(Outcome::Never));
        assert_eq!(parse(json!({}), "slow").map(|b| b.step).ok(), Some(Duration::from_secs(1)));
        let b = parse(json!({"sim": {"outcome": "succeeded", "step_ms": 5}}), "fail").ok();
        assert_eq!(b.map(|b| (b.outcome, b.step)), Some((Outcome::Succeeded, Duration::from_millis(5))));
    }

    #[test]
    fn an_unknown_sim_field_or_status_is_refused() {
        assert!(parse(json!({"sim": {"outcom": "failed"}}), "echo").is_err());
        assert!(parse(json!({"sim": {"drop_statuses": ["done"]}}), "echo").is_err());
    }
}
