//! Configuration, read once at cold start into typed values. Missing or malformed
//! settings fail the start, naming the variable.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use crate::prediction::Status;

/// A setting that stops a function's start: missing or malformed, named.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable does not read as what it holds.
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Why it does not read.
        reason: String,
    },
    /// Webhooks are signed unless the deployment says otherwise, in so many words.
    #[error("environment variable {0} is required: set the webhook secret, or ALLOW_UNSIGNED_WEBHOOKS=true")]
    MissingSecret(&'static str),
}

/// `value` of `var` once resolved (a Secrets Manager ARN read at cold start), refused
/// when it is empty or only whitespace: such a key would check nothing, or sign with
/// one space.
pub fn non_blank(var: &'static str, value: String) -> Result<String, ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::Invalid { var, reason: "the secret is empty or blank".into() });
    }
    Ok(value)
}

/// The variables a function was started with, read once at cold start: a snapshot, so
/// tests never touch the process's own. A variable set to nothing counts as unset.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process's variables, now. One whose name or value is not UTF-8 is left out:
    /// none of ours is, and an unrelated one must not stop the start.
    pub fn process() -> Self {
        let vars =
            std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
        Self { vars: vars.filter(|(_, value)| !value.is_empty()).collect() }
    }

    /// An environment of fixed pairs, for tests.
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        let set = pairs.iter().filter(|(_, value)| !value.is_empty());
        Self { vars: set.map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect() }
    }

    /// The variable `var`; an error naming it when it is not set.
    pub fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.optional(var).ok_or(ConfigError::Missing(var))
    }

    /// The variable `var`, if it is set.
    pub fn optional(&self, var: &str) -> Option<String> {
        self.vars.get(var).cloned()
    }

    /// The variable `var` parsed, or `default` when it is not set.
    pub fn parsed<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.vars.get(var) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { var, reason: e.to_string() }),
        }
    }
}

/// Which statuses the worker acts on, and so which events the receiver enqueues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActOn(BTreeSet<String>);

impl ActOn {
    /// The terminal statuses: the default.
    pub fn terminal() -> Self {
        Self(Status::KNOWN.iter().filter(|s| s.is_terminal()).map(|s| s.to_string()).collect())
    }

    /// An unknown status is never acted on, whatever the list says.
    pub fn includes(&self, status: &Status) -> bool {
        !matches!(status, Status::Unknown(_)) && self.0.contains(status.as_str())
    }
}

impl FromStr for ActOn {
    type Err = String;

    fn from_str(list: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match Status::parse(name) {
                Ok(Status::Unknown(_)) | Err(_) => {
                    return Err(format!("{name:?} is not a WriftAI status"));
                }
                Ok(s) => set.insert(s.to_string()),
            };
        }
        if set.is_empty() {
            return Err("lists no status".into());
        }
        Ok(Self(set))
    }
}

/// What the record-and-enqueue path needs: shared by the three functions.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `QUEUE_URL`: the work queue.
    pub queue_url: String,
    /// `ACT_ON_STATUSES`.
    pub act_on: ActOn,
    /// How long event records are kept (DynamoDB TTL); the duplicate check looks back
    /// this far.
    pub event_ttl: Duration,
    /// The partition key values each sparse index spreads its items over
    /// (`INDEX_SHARDS`): docs/design.md, "Partition keys and their rates".
    pub index_shards: u16,
    /// How long the work's records are kept (`RECORD_TTL_DAYS`, DynamoDB TTL from their
    /// last write); `None` (0, the default) keeps them until `hooks forget`. Steps live
    /// with their event instead.
    pub record_ttl: Option<Duration>,
}

/// The shortest retention of records: longer than a message's 14 days in the queue, so
/// the work a message runs finds the records an earlier run of it stored. (A redrive
/// starts a message's 14 days afresh, and a replay may come at any time: steps, which
/// must never run twice, live with their event instead, not by this retention.)
pub const MIN_RECORD_TTL_DAYS: u64 = 15;

impl IngestConfig {
    /// Reads it from `env`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let ttl_days: u64 = env.parsed("EVENT_TTL_DAYS", 30)?;
        let index_shards: u16 = env.parsed("INDEX_SHARDS", crate::shards::DEFAULT)?;
        if !(1..=1000).contains(&index_shards) {
            let reason = format!("{index_shards} is not from 1 to 1000");
            return Err(ConfigError::Invalid { var: "INDEX_SHARDS", reason });
        }
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            queue_url: env.required("QUEUE_URL")?,
            act_on: env.parsed("ACT_ON_STATUSES", ActOn::terminal())?,
            event_ttl: Duration::from_secs(ttl_days * 86_400),
            index_shards,
            record_ttl: match env.parsed::<u64>("RECORD_TTL_DAYS", 0)? {
                0 => None,
                // A message waits up to 14 days in the queue, and its work reads its
                // records when it runs: they must outlive that.
                days if days < MIN_RECORD_TTL_DAYS => {
                    let reason = format!("{days} is neither 0 nor at least {MIN_RECORD_TTL_DAYS} (days)");
                    return Err(ConfigError::Invalid { var: "RECORD_TTL_DAYS", reason });
                }
                days => Some(Duration::from_secs(days.saturating_mul(86_400))),
            },
        })
    }
}

/// The webhook our create path gives WriftAI: `WRIFTAI_WEBHOOK_URL` (the receiver's
/// Function URL) and the secret WriftAI signs with. No URL: no webhooks, and the
/// reconciler alone brings each prediction to its end.
pub fn webhook_from_env(env: &Env) -> Option<(String, Option<String>)> {
    env.optional("WRIFTAI_WEBHOOK_URL").map(|url| (url, env.optional("WRIFTAI_WEBHOOK_SECRET")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_secret_is_refused_naming_its_variable() {
        let err = non_blank("WRIFTAI_ACCESS_TOKEN", " \n".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable WRIFTAI_ACCESS_TOKEN is invalid: the secret is empty or blank"
        );
        assert_eq!(non_blank("WRIFTAI_ACCESS_TOKEN", "t".into()).unwrap(), "t");
    }

    #[test]
    fn a_missing_table_name_is_named_in_the_error() {
        let err = IngestConfig::from_env(&Env::of(&[("QUEUE_URL", "q")])).unwrap_err();
        assert_eq!(err.to_string(), "environment variable TABLE_NAME is required");
    }

    #[test]
    fn defaults_act_on_terminal_statuses_only() {
        let cfg = IngestConfig::from_env(&Env::of(&[("TABLE_NAME", "t"), ("QUEUE_URL", "q")])).unwrap();
        assert!(cfg.act_on.includes(&Status::Succeeded));
        assert!(cfg.act_on.includes(&Status::Abandoned));
        assert!(!cfg.act_on.includes(&Status::Started));
        assert_eq!(cfg.event_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(cfg.record_ttl, None, "records are kept unless a retention is set");
    }

    #[test]
    fn a_record_retention_is_read_in_days_and_zero_keeps_them() {
        let with = |days: &str| {
            IngestConfig::from_env(&Env::of(&[("TABLE_NAME", "t"), ("QUEUE_URL", "q"), ("RECORD_TTL_DAYS", days)]))
        };
        assert_eq!(with("90").unwrap().record_ttl, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(with("0").unwrap().record_ttl, None);
        assert!(with("7").unwrap_err().to_string().contains("neither 0 nor at least 15"));
        assert!(with("-1").unwrap_err().to_string().contains("RECORD_TTL_DAYS"));
    }

    #[test]
    fn act_on_statuses_is_configurable_and_checked() {
        let cfg = IngestConfig::from_env(&Env::of(&[
            ("TABLE_NAME", "t"),
            ("QUEUE_URL", "q"),
            ("ACT_ON_STATUSES", "started, succeeded"),
        ]))
        .unwrap();
        assert!(cfg.act_on.includes(&Status::Started));
        assert!(!cfg.act_on.includes(&Status::Failed));

        let err =
            IngestConfig::from_env(&Env::of(&[("TABLE_NAME", "t"), ("QUEUE_URL", "q"), ("ACT_ON_STATUSES", "done")]))
                .unwrap_err();
        assert!(err.to_string().contains("ACT_ON_STATUSES"), "{err}");
    }

    #[test]
    fn index_shards_defaults_to_256_and_is_held_from_1_to_1000() {
        let with =
            |n: &str| IngestConfig::from_env(&Env::of(&[("TABLE_NAME", "t"), ("QUEUE_URL", "q"), ("INDEX_SHARDS", n)]));
        let unset = IngestConfig::from_env(&Env::of(&[("TABLE_NAME", "t"), ("QUEUE_URL", "q")])).unwrap();
        assert_eq!(unset.index_shards, 256);
        assert_eq!(with("100").unwrap().index_shards, 100);
        for bad in ["0", "1001", "-1", "many"] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains("INDEX_SHARDS"), "{bad}: {err}");
        }
    }
}
