//! The receiver's settings, read once at cold start.

use std::time::Duration;

use crate::adapters::AwsSettings;
use crate::config::{ConfigError, Env, IngestConfig};
use crate::metrics::Namespace;
use crate::receiver::checks::{DEFAULT_MAX_BODY_BYTES, Limits};
use crate::receiver::signature::DEFAULT_TOLERANCE;

/// Everything the receiver reads from its environment (see docs/configuration.md): the
/// record-and-enqueue path, plus the checks on each request.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    pub aws: AwsSettings,
    /// The CloudWatch namespace (`METRICS_NAMESPACE`; the stack's name on AWS).
    pub metrics: Namespace,
    pub ingest: IngestConfig,
    pub limits: Limits,
    /// Webhook secrets by variable, current first, then the one being rotated out:
    /// plain values, or Secrets Manager ARNs resolved at cold start. At least one,
    /// unless `allow_unsigned`.
    pub secrets: Vec<(&'static str, String)>,
    /// `ALLOW_UNSIGNED_WEBHOOKS=true`: no secret is set, so no signature is checked,
    /// only prediction IDs. Said at every cold start and counted per delivery.
    pub allow_unsigned: bool,
    pub tolerance: Duration,
}

impl ReceiverConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let path = env.optional("WEBHOOK_PATH").unwrap_or_else(|| "/".into());
        if !path.starts_with('/') {
            return Err(ConfigError::Invalid { var: "WEBHOOK_PATH", reason: "must start with '/'".into() });
        }
        let secrets: Vec<_> = ["WRIFTAI_WEBHOOK_SECRET", "WRIFTAI_WEBHOOK_PREVIOUS_SECRET"]
            .into_iter()
            .filter_map(|var| Some((var, env.optional(var)?)))
            .collect();
        let allow_unsigned = env.parsed("ALLOW_UNSIGNED_WEBHOOKS", false)?;
        if secrets.is_empty() && !allow_unsigned {
            return Err(ConfigError::MissingSecret("WRIFTAI_WEBHOOK_SECRET"));
        }
        Ok(Self {
            aws: AwsSettings::from_env(env)?,
            metrics: Namespace::from_env(env),
            ingest: IngestConfig::from_env(env)?,
            limits: Limits { max_body_bytes: env.parsed("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?, path },
            secrets,
            allow_unsigned,
            tolerance: Duration::from_secs(env.parsed("WEBHOOK_TOLERANCE_SECS", DEFAULT_TOLERANCE.as_secs())?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_secrets_are_kept_current_first() {
        let config = ReceiverConfig::from_env(&Env::of(&[
            ("TABLE_NAME", "t"),
            ("QUEUE_URL", "q"),
            ("WRIFTAI_WEBHOOK_PREVIOUS_SECRET", "old"),
            ("WRIFTAI_WEBHOOK_SECRET", "new"),
        ]))
        .unwrap();
        assert_eq!(
            config.secrets,
            [("WRIFTAI_WEBHOOK_SECRET", "new".into()), ("WRIFTAI_WEBHOOK_PREVIOUS_SECRET", "old".into())]
        );
        assert_eq!((config.limits.path.as_str(), config.tolerance), ("/", DEFAULT_TOLERANCE));
    }

    #[test]
    fn without_a_secret_the_receiver_does_not_start_unless_unsigned_webhooks_are_allowed() {
        let err = ReceiverConfig::from_env(&Env::of(&[("TABLE_NAME", "t"), ("QUEUE_URL", "q")])).unwrap_err();
        assert!(err.to_string().starts_with("environment variable WRIFTAI_WEBHOOK_SECRET is required"), "{err}");
        let config = ReceiverConfig::from_env(&Env::of(&[
            ("TABLE_NAME", "t"),
            ("QUEUE_URL", "q"),
            ("ALLOW_UNSIGNED_WEBHOOKS", "true"),
        ]))
        .unwrap();
        assert!(config.allow_unsigned && config.secrets.is_empty());
    }

    #[test]
    fn a_webhook_path_must_be_absolute() {
        let err =
            ReceiverConfig::from_env(&Env::of(&[("TABLE_NAME", "t"), ("QUEUE_URL", "q"), ("WEBHOOK_PATH", "hooks")]))
                .unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_PATH"), "{err}");
    }
}
