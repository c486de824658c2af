//! The reconciler's settings, read once at cold start.

use std::time::Duration;

use crate::adapters::{AwsSettings, OPERATION_TIMEOUT};
use crate::config::{ConfigError, Env, IngestConfig};
use crate::deadline::ANSWER_MARGIN;
use crate::metrics::Namespace;
use crate::reconciler::run::ReconcileConfig;
use crate::wriftai::ApiConfig;

/// Everything the reconciler reads from its environment (see docs/configuration.md).
#[derive(Clone, Debug)]
pub struct ReconcilerConfig {
    pub aws: AwsSettings,
    /// The CloudWatch namespace (`METRICS_NAMESPACE`; the stack's name on AWS).
    pub metrics: Namespace,
    /// The record-and-enqueue path the answers go through.
    pub ingest: IngestConfig,
    pub api: ApiConfig,
    /// The walks: ages, page size, concurrency.
    pub reconcile: ReconcileConfig,
    /// The work queue's dead-letter queue (`DLQ_URL`): work requeued past
    /// `RECONCILE_MAX_REQUEUES` goes there.
    pub dlq_url: String,
    /// Time kept back from the invocation's deadline to keep the run's summary and
    /// answer: one DynamoDB call and the answer, 6 s by default.
    pub safety_margin: Duration,
}

impl ReconcilerConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsSettings::from_env(env)?,
            metrics: Namespace::from_env(env),
            ingest: IngestConfig::from_env(env)?,
            api: ApiConfig::from_env(env)?,
            reconcile: ReconcileConfig::from_env(env)?,
            dlq_url: env.required("DLQ_URL")?,
            safety_margin: match env.optional("RECONCILE_SAFETY_MARGIN_SECS") {
                Some(_) => Duration::from_secs(env.parsed("RECONCILE_SAFETY_MARGIN_SECS", 0)?),
                None => OPERATION_TIMEOUT.saturating_add(ANSWER_MARGIN),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reconciler_reads_its_settings_with_their_defaults() {
        let config = ReconcilerConfig::from_env(&Env::of(&[
            ("TABLE_NAME", "t"),
            ("QUEUE_URL", "q"),
            ("WRIFTAI_ACCESS_TOKEN", "x"),
            ("DLQ_URL", "d"),
        ]))
        .unwrap();
        assert_eq!(config.safety_margin, Duration::from_secs(6));
        assert_eq!(config.reconcile.min_age, Duration::from_secs(300));
    }

    #[test]
    fn a_missing_token_is_named_in_the_error() {
        let err = ReconcilerConfig::from_env(&Env::of(&[("TABLE_NAME", "t"), ("QUEUE_URL", "q")])).unwrap_err();
        assert_eq!(err.to_string(), "environment variable WRIFTAI_ACCESS_TOKEN is required");
    }
}
