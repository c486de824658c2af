//! What to break and how often: the fault rules, the seeded random source that decides,
//! and the counts of what was injected, all behind one lock so a run replays from its seed.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The ways AWS calls fail that the proxy can play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 400 with the service's throttling error (`ProvisionedThroughputExceededException`
    /// or `ThrottlingException` for DynamoDB, `RequestThrottled` for SQS); not forwarded.
    Throttle,
    /// 500 `InternalServerError` / `InternalError`; not forwarded.
    ServerError,
    /// Holds the call for `hold_ms` (default 3000, past the SDK's attempt timeout), then
    /// closes the connection without an answer; not forwarded.
    Timeout,
    /// Closes the connection at once without an answer; not forwarded.
    Reset,
    /// Forwarded, so the write happens, but the answer is dropped and the connection
    /// closed: the caller cannot tell it from a timeout. The hardest case for idempotency.
    LostAnswer,
    /// Forwarded at once, and its answer held for `hold_ms` (default 3000) before it is
    /// sent: a slow service, whose writes land while their callers wait.
    Delay,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Which calls: `*`, a service (`DynamoDB_20120810`, `AmazonSQS`), an operation
    /// (`TransactWriteItems`, `SendMessage`) or the whole `X-Amz-Target` value.
    #[serde(default = "any")]
    pub operation: String,
    pub kind: Kind,
    /// Probability in [0, 1] that a matching call gets this fault.
    pub rate: f64,
    #[serde(default)]
    pub hold_ms: Option<u64>,
    /// At most this many faults from this rule, then it lets calls through (default: no
    /// limit). `rate` 1 with `times` 3 fails exactly the next three matching calls.
    #[serde(default)]
    pub times: Option<u64>,
    /// Only calls whose body holds this text (`":done"` picks the worker's completions
    /// among its `UpdateItem`s).
    #[serde(default)]
    pub contains: Option<String>,
}

fn any() -> String {
    "*".into()
}

impl Rule {
    fn matches(&self, target: &str, body: &[u8]) -> bool {
        let (service, operation) = target.split_once('.').unwrap_or((target, ""));
        let named = self.operation == "*"
            || self.operation == target
            || self.operation == service
            || self.operation == operation;
        let holds = |text: &str| body.windows(text.len().max(1)).any(|w| w == text.as_bytes());
        named && self.contains.as_deref().is_none_or(holds)
    }
}

/// The settings `PUT /_faults` takes and `FAULT_RULES`/`FAULT_SEED` give at start.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Restarts the random sequence: the same seed and the same calls give the same faults.
    #[serde(default)]
    pub seed: Option<u64>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error)]
pub enum InvalidSettings {
    #[error("rule {index}: rate {rate} is outside [0, 1]")]
    Rate { index: usize, rate: f64 },
}

impl Settings {
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        match self.rules.iter().enumerate().find(|(_, r)| !(0.0..=1.0).contains(&r.rate)) {
            Some((index, rule)) => Err(InvalidSettings::Rate { index, rate: rule.rate }),
            None => Ok(()),
        }
    }
}

/// What was done, readable over `GET /_faults`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Calls that reached the emulator (including `lost_answer` ones).
    pub forwarded: u64,
    pub injected: BTreeMap<Kind, u64>,
    pub by_operation: BTreeMap<String, BTreeMap<Kind, u64>>,
    pub calls_by_operation: BTreeMap<String, u64>,
}

struct Inner {
    rules: Vec<Rule>,
    /// Faults injected by each rule, by its index: what `times` is held to.
    spent: Vec<u64>,
    seed: u64,
    state: u64,
    stats: Stats,
}

pub struct Faults(Mutex<Inner>);

impl Faults {
    pub fn new(settings: Settings) -> Self {
        let seed = settings.seed.unwrap_or(0);
        let spent = vec![0; settings.rules.len()];
        Self(Mutex::new(Inner { rules: settings.rules, spent, seed, state: seed, stats: Stats::default() }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides the fate of one call to `target` with `body`: `None` forwards it untouched.
    pub fn decide(&self, target: &str, body: &[u8]) -> Option<(Kind, u64)> {
        let mut inner = self.lock();
        *inner.stats.calls_by_operation.entry(target.to_owned()).or_default() += 1;
        let rules: Vec<(usize, Rule)> = inner
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matches(target, body))
            .map(|(i, r)| (i, r.clone()))
            .collect();
        for (index, rule) in rules {
            if rule.times.is_some_and(|times| inner.spent[index] >= times) {
                continue;
            }
            // One draw per matching rule, so a run's sequence depends only on the seed
            // and the order of calls.
            if next_unit(&mut inner.state) < rule.rate {
                inner.spent[index] += 1;
                *inner.stats.injected.entry(rule.kind).or_default() += 1;
                *inner.stats.by_operation.entry(target.to_owned()).or_default().entry(rule.kind).or_default() += 1;
                return Some((rule.kind, rule.hold_ms.unwrap_or(3000)));
            }
        }
        None
    }

    pub fn forwarded(&self) {
        self.lock().stats.forwarded += 1;
    }

    pub fn replace(&self, settings: Settings) {
        let mut inner = self.lock();
        inner.spent = vec![0; settings.rules.len()];
        inner.rules = settings.rules;
        if let Some(seed) = settings.seed {
            (inner.seed, inner.state) = (seed, seed);
        }
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let inner = self.lock();
        serde_json::json!({"seed": inner.seed, "rules": inner.rules, "stats": inner.stats})
    }
}

/// splitmix64: tiny, seedable, and good enough to pick faults.
fn next_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(operation: &str, kind: Kind, rate: f64) -> Rule {
        Rule { operation: operation.into(), kind, rate, hold_ms: None, times: None, contains: None }
    }

    #[test]
    fn a_rule_with_times_stops_after_that_many_faults() {
        let limited = Rule { times: Some(3), ..rule("UpdateItem", Kind::LostAnswer, 1.0) };
        let faults = Faults::new(Settings { seed: None, rules: vec![limited] });
        let fates: Vec<_> = (0..5).map(|_| faults.decide("DynamoDB_20120810.UpdateItem", b"")).collect();
        assert_eq!(fates, [Some((Kind::LostAnswer, 3000)); 3].into_iter().chain([None, None]).collect::<Vec<_>>());
        // New rules start their counts afresh.
        faults.replace(Settings { seed: None, rules: vec![Rule { times: Some(1), ..rule("*", Kind::Reset, 1.0) }] });
        assert_eq!(faults.decide("AmazonSQS.SendMessage", b""), Some((Kind::Reset, 3000)));
        assert_eq!(faults.decide("AmazonSQS.SendMessage", b""), None);
    }

    #[test]
    fn a_rule_matches_its_service_its_operation_or_the_whole_target() {
        for name in ["*", "DynamoDB_20120810", "PutItem", "DynamoDB_20120810.PutItem"] {
            assert!(rule(name, Kind::Throttle, 1.0).matches("DynamoDB_20120810.PutItem", b""), "{name}");
        }
        assert!(!rule("AmazonSQS", Kind::Throttle, 1.0).matches("DynamoDB_20120810.PutItem", b""));
        assert!(!rule("GetItem", Kind::Throttle, 1.0).matches("DynamoDB_20120810.PutItem", b""));
    }

    #[test]
    fn a_rule_with_contains_matches_only_calls_whose_body_holds_it() {
        let done = Rule { contains: Some(":done".into()), ..rule("UpdateItem", Kind::Delay, 1.0) };
        assert!(done.matches("DynamoDB_20120810.UpdateItem", br#"{"UpdateExpression":"SET #work = :done"}"#));
        assert!(!done.matches("DynamoDB_20120810.UpdateItem", br#"{"UpdateExpression":"SET work_token = :token"}"#));
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_they_are_counted() {
        let settings = Settings { seed: Some(7), rules: vec![rule("*", Kind::Reset, 0.3)] };
        let run = || {
            let faults = Faults::new(settings.clone());
            (0..200).map(|_| faults.decide("AmazonSQS.SendMessage", b"").is_some()).collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        let hits = first.iter().filter(|hit| **hit).count();
        assert!((30..90).contains(&hits), "about 30% of 200: {hits}");
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        let settings = Settings { seed: None, rules: vec![rule("*", Kind::Timeout, 1.5)] };
        assert!(settings.validate().is_err());
    }
}
