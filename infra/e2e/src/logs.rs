//! The functions' log lines as the local stack keeps them: `cargo lambda watch` writes
//! every function's output to `.local/logs/lambda.log`, one JSON object a line when the
//! stack runs with `AWS_LAMBDA_LOG_FORMAT=JSON` (infra/e2e.sh does, as the template's
//! `LogFormat: JSON` does on AWS). A line's span fields are in `spans`, outermost first.

use std::path::PathBuf;

use serde_json::Value;
use wriftai_hooks::internals::prediction::PredictionId;

/// `.local/logs/lambda.log` of this checkout (the tests run from `infra/e2e`).
pub fn lambda_log() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local/logs/lambda.log")
}

/// One log line of a function, with its spans.
#[derive(Clone, Debug)]
pub struct Line(pub Value);

impl Line {
    pub fn message(&self) -> &str {
        self.0["fields"]["message"].as_str().unwrap_or_default()
    }

    /// The field `name` of the line's span called `span`, if it has one.
    pub fn span_field(&self, span: &str, name: &str) -> Option<&str> {
        let spans = self.0["spans"].as_array()?;
        spans.iter().find(|s| s["name"] == span).and_then(|s| s[name].as_str())
    }

    /// The Root of the invocation's own trace (lambda_runtime's "Lambda runtime invoke"
    /// span, `xrayTraceId`).
    pub fn invocation_trace(&self) -> Option<&str> {
        let header = self.span_field("Lambda runtime invoke", "xrayTraceId")?;
        header.split(';').find_map(|field| field.strip_prefix("Root="))
    }
}

/// Every log line inside a span called `span` whose `prediction_id` is `id`: the
/// receiver's `delivery`, the worker's `message`, the reconciler's `examine`.
pub fn lines_about(id: PredictionId, span: &str) -> Vec<Line> {
    let id = id.to_string();
    let text = std::fs::read_to_string(lambda_log()).unwrap_or_default();
    text.lines()
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(Line)
        .filter(|line| line.span_field(span, "prediction_id") == Some(id.as_str()))
        .collect()
}
