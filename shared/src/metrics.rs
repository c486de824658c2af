//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout per
//! invocation, which CloudWatch Logs turns into metrics. No SDK call and no extra
//! latency on the hot path; the alarms in template.yaml read them.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::config::Env;

/// The namespace when `METRICS_NAMESPACE` is not set. The template sets the stack's
/// name, so two stacks in one account keep their metrics and alarms apart.
pub const DEFAULT_NAMESPACE: &str = "WriftaiHooks";

static NAMESPACE: OnceLock<String> = OnceLock::new();

/// The CloudWatch namespace this process writes to, read once at cold start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace(pub String);

impl Namespace {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Self {
        Self(env.optional("METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into()))
    }

    /// Makes this the namespace of every document the process writes from now on.
    pub fn install(self) {
        let _ = NAMESPACE.set(self.0);
    }
}

fn namespace() -> &'static str {
    NAMESPACE.get().map_or(DEFAULT_NAMESPACE, String::as_str)
}

/// The counts of one invocation, by function and, where it has one, by status.
#[derive(Debug)]
pub struct Metrics {
    function: &'static str,
    status: Option<String>,
    counts: Vec<(&'static str, u64)>,
}

impl Metrics {
    pub fn new(function: &'static str) -> Self {
        Self { function, status: None, counts: Vec::new() }
    }

    /// Adds a `Status` dimension (the prediction status the invocation was about).
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    pub fn count(&mut self, name: &'static str, n: u64) -> &mut Self {
        match self.counts.iter_mut().find(|(existing, _)| *existing == name) {
            Some((_, total)) => *total += n,
            None => self.counts.push((name, n)),
        }
        self
    }

    /// The EMF document at unix time `now_ms`.
    pub fn document(&self, now_ms: i64) -> Value {
        let mut dimensions = vec![json!(["Function"])];
        if self.status.is_some() {
            dimensions.push(json!(["Function", "Status"]));
        }
        let definitions: Vec<Value> =
            self.counts.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({"Timestamp": now_ms, "CloudWatchMetrics": [{
                "Namespace": namespace(), "Dimensions": dimensions, "Metrics": definitions,
            }]}),
        );
        doc.insert("Function".into(), json!(self.function));
        if let Some(status) = &self.status {
            doc.insert("Status".into(), json!(status));
        }
        for (name, n) in &self.counts {
            doc.insert((*name).into(), json!(n));
        }
        Value::Object(doc)
    }

    /// Writes the document to stdout, where Lambda's log capture picks it up.
    pub fn emit(&self) {
        if self.counts.is_empty() {
            return;
        }
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        println!("{}", self.document(i64::try_from(now_ms).unwrap_or(i64::MAX)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_declares_every_count_under_both_dimension_sets() {
        let mut metrics = Metrics::new("receiver").status("succeeded");
        metrics.count("Received", 1).count("Duplicate", 1).count("Received", 1);
        let doc = metrics.document(1_790_000_000_000);
        assert_eq!(doc["Function"], "receiver");
        assert_eq!(doc["Status"], "succeeded");
        assert_eq!(doc["Received"], 2);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], DEFAULT_NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function"], ["Function", "Status"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Received", "Unit": "Count"}, {"Name": "Duplicate", "Unit": "Count"}])
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_790_000_000_000_i64);
    }

    #[test]
    fn the_namespace_is_the_stacks_when_set() {
        assert_eq!(Namespace::from_env(&Env::of(&[("METRICS_NAMESPACE", "hooks-prod")])).0, "hooks-prod");
        assert_eq!(Namespace::from_env(&Env::of(&[])).0, DEFAULT_NAMESPACE);
    }

    #[test]
    fn without_a_status_only_the_function_dimension_is_declared() {
        let mut metrics = Metrics::new("worker");
        metrics.count("WorkDone", 3);
        assert_eq!(metrics.document(0)["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function"]]));
    }
}
