//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout per
//! invocation, which CloudWatch Logs turns into metrics: counts, and durations (a
//! batch's values of one metric as one array). No SDK call and no extra latency on the
//! hot path; the alarms in template.yaml read them.

use std::sync::OnceLock;
use std::time::Duration;

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
    pub fn from_env(env: &Env) -> Self {
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

/// The most values EMF takes for one metric in one document; more go in the next.
pub const MAX_VALUES: usize = 100;

/// The counts and durations of one invocation, by function and, where it has one, by
/// status.
#[derive(Debug)]
pub struct Metrics {
    function: &'static str,
    status: Option<String>,
    counts: Vec<(&'static str, u64)>,
    /// Each duration metric's values, in milliseconds, in the order measured.
    durations: Vec<(&'static str, Vec<f64>)>,
}

impl Metrics {
    pub fn new(function: &'static str) -> Self {
        Self { function, status: None, counts: Vec::new(), durations: Vec::new() }
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

    /// Adds one value of a duration metric (Unit `Milliseconds`): CloudWatch keeps each
    /// value, so its percentiles (p50, p99) are of the units of work themselves.
    pub fn duration(&mut self, name: &'static str, value: Duration) -> &mut Self {
        let ms = value.as_secs_f64() * 1000.0;
        match self.durations.iter_mut().find(|(existing, _)| *existing == name) {
            Some((_, values)) => values.push(ms),
            None => self.durations.push((name, vec![ms])),
        }
        self
    }

    /// The values of duration metric `name` so far, in milliseconds.
    pub fn durations(&self, name: &str) -> &[f64] {
        self.durations.iter().find(|(existing, _)| *existing == name).map_or(&[], |(_, values)| values)
    }

    /// The count of `name` so far.
    pub fn counted(&self, name: &str) -> Option<u64> {
        self.counts.iter().find(|(existing, _)| *existing == name).map(|(_, n)| *n)
    }

    /// The EMF document at unix time `now_ms`: every count, and every duration's values.
    pub fn document(&self, now_ms: i64) -> Value {
        self.part(now_ms, 0)
    }

    /// Part `part` of the documents that hold it all: the counts and the first
    /// [`MAX_VALUES`] values of each duration in part 0, the next ones in part 1...
    fn part(&self, now_ms: i64, part: usize) -> Value {
        let mut dimensions = vec![json!(["Function"])];
        if self.status.is_some() {
            dimensions.push(json!(["Function", "Status"]));
        }
        let counts = if part == 0 { &self.counts[..] } else { &[] };
        let durations: Vec<(&str, &[f64])> = self
            .durations
            .iter()
            .filter_map(|(name, values)| Some((*name, values.chunks(MAX_VALUES).nth(part)?)))
            .collect();
        let definitions: Vec<Value> = counts
            .iter()
            .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
            .chain(durations.iter().map(|(name, _)| json!({"Name": name, "Unit": "Milliseconds"})))
            .collect();
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
        for (name, n) in counts {
            doc.insert((*name).into(), json!(n));
        }
        for (name, values) in durations {
            doc.insert(name.into(), json!(values));
        }
        Value::Object(doc)
    }

    /// Writes the document to stdout, where Lambda's log capture picks it up: one line,
    /// or more when a duration has over [`MAX_VALUES`] values.
    pub fn emit(&self) {
        #[cfg(any(test, feature = "test-util"))]
        if captured::take(self) {
            return;
        }
        let longest = self.durations.iter().map(|(_, values)| values.len()).max().unwrap_or(0);
        if self.counts.is_empty() && longest == 0 {
            return;
        }
        let now_ms = crate::clock::now().unix_timestamp_nanos() / 1_000_000;
        let now_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
        for part in 0..longest.div_ceil(MAX_VALUES).max(1) {
            println!("{}", self.part(now_ms, part));
        }
    }
}

/// Metrics a simulation keeps instead of printing: every count emitted on this thread,
/// added up by function and name, while a capture runs.
#[cfg(any(test, feature = "test-util"))]
pub mod captured {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::Metrics;

    thread_local! {
        static COUNTS: RefCell<Option<BTreeMap<(&'static str, &'static str), u64>>> = const { RefCell::new(None) };
    }

    /// From now on this thread's metrics are added up here, not printed.
    pub fn start() {
        COUNTS.set(Some(BTreeMap::new()));
    }

    /// The counts so far, by (function, name).
    pub fn counts() -> BTreeMap<(&'static str, &'static str), u64> {
        COUNTS.with_borrow(|counts| counts.clone().unwrap_or_default())
    }

    /// Metrics are printed again.
    pub fn end() {
        COUNTS.set(None);
    }

    pub(super) fn take(metrics: &Metrics) -> bool {
        COUNTS.with_borrow_mut(|counts| {
            let Some(counts) = counts else { return false };
            for (name, n) in &metrics.counts {
                *counts.entry((metrics.function, *name)).or_default() += n;
            }
            true
        })
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
    fn a_batchs_durations_go_in_one_document_as_arrays_beside_its_counts() {
        let mut metrics = Metrics::new("worker");
        metrics.count("WorkDone", 2);
        metrics.duration("QueueWait", Duration::from_millis(40)).duration("QueueWait", Duration::from_micros(1500));
        metrics.duration("EndToEnd", Duration::from_secs(2));
        let doc = metrics.document(0);
        assert_eq!(doc["WorkDone"], 2);
        assert_eq!(doc["QueueWait"], json!([40.0, 1.5]));
        assert_eq!(doc["EndToEnd"], json!([2000.0]));
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([
                {"Name": "WorkDone", "Unit": "Count"},
                {"Name": "QueueWait", "Unit": "Milliseconds"},
                {"Name": "EndToEnd", "Unit": "Milliseconds"},
            ])
        );
        assert_eq!(metrics.durations("QueueWait"), [40.0, 1.5]);
        assert_eq!(metrics.durations("WorkDuration"), [] as [f64; 0]);
    }

    #[test]
    fn values_past_what_emf_takes_in_one_document_go_in_the_next_without_the_counts() {
        let mut metrics = Metrics::new("worker");
        metrics.count("WorkDone", 1);
        for ms in 0..(MAX_VALUES as u64 + 3) {
            metrics.duration("WorkDuration", Duration::from_millis(ms));
        }
        let (first, second) = (metrics.part(0, 0), metrics.part(0, 1));
        assert_eq!(first["WorkDuration"].as_array().map(Vec::len), Some(MAX_VALUES));
        assert_eq!(first["WorkDone"], 1);
        assert_eq!(second["WorkDuration"], json!([100.0, 101.0, 102.0]));
        assert!(second.get("WorkDone").is_none(), "a count is written once");
        assert_eq!(
            second["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "WorkDuration", "Unit": "Milliseconds"}])
        );
    }

    #[test]
    fn without_a_status_only_the_function_dimension_is_declared() {
        let mut metrics = Metrics::new("worker");
        metrics.count("WorkDone", 3);
        assert_eq!(metrics.document(0)["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function"]]));
    }
}
