//! The worker's settings, read once at cold start, and the clients built from them.

use std::time::Duration;

use aws_config::SdkConfig;

use crate::adapters::{AwsSettings, aws_config, secrets};
use crate::config::{ConfigError, Env, IngestConfig, webhook_from_env};
use crate::error::BoxError;
use crate::files::FileLimits;
use crate::files::fetch::UrlPolicy;
use crate::metrics::Namespace;
use crate::wriftai::{ApiConfig, Webhook, WriftAi};

/// Everything the worker reads from its environment (see docs/configuration.md).
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub aws: AwsSettings,
    /// The CloudWatch namespace (`METRICS_NAMESPACE`; the stack's name on AWS).
    pub metrics: Namespace,
    /// The table, and the queue a chained prediction's work goes to.
    pub ingest: IngestConfig,
    /// For predictions too large for a message, and for chaining.
    pub api: ApiConfig,
    /// The webhook a chained prediction is created with: the receiver's URL, and its
    /// secret (a value or a Secrets Manager ARN).
    pub webhook: Option<(String, Option<String>)>,
    /// Messages of one batch worked on at once.
    pub concurrency: usize,
    /// The bucket output files are kept in (`OUTPUT_BUCKET`; none: they are not kept).
    pub output_bucket: Option<String>,
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` is set (an emulator): address
    /// buckets in the path.
    pub s3_path_style: bool,
    /// Which URLs in an output may be fetched (`OUTPUT_URL_ALLOW_HTTP`,
    /// `OUTPUT_URL_HOSTS`), and how much of an output is copied.
    pub url_policy: UrlPolicy,
    pub file_limits: FileLimits,
    /// How long a download may connect, or go without a byte.
    pub download_timeout: Duration,
}

/// What one run copies at the template's memory when it copies one file at a time
/// (docs/configuration.md, "What one run can copy"): the messages of a batch share it.
const ONE_RUN_COPIES: u64 = 512 << 20;

impl WorkerConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let concurrency: usize = env.parsed("WORKER_CONCURRENCY", 10)?;
        Ok(Self {
            aws: AwsSettings::from_env(env)?,
            metrics: Namespace::from_env(env),
            ingest: IngestConfig::from_env(env)?,
            api: ApiConfig::from_env(env)?,
            webhook: webhook_from_env(env),
            concurrency,
            output_bucket: env.optional("OUTPUT_BUCKET"),
            s3_path_style: env.optional("AWS_ENDPOINT_URL_S3").or(env.optional("AWS_ENDPOINT_URL")).is_some(),
            url_policy: UrlPolicy::new(
                env.parsed("OUTPUT_URL_ALLOW_HTTP", false)?,
                env.optional("OUTPUT_URL_HOSTS").as_deref(),
            )?,
            file_limits: FileLimits {
                // A batch's messages copy at once and share the instance: each gets its
                // share of what one run copies (issue 33, defect 5).
                per_file: env.parsed("DOWNLOAD_MAX_BYTES", per_file_default(concurrency))?,
                per_prediction: env.parsed("OUTPUT_MAX_BYTES", 2 << 30)?,
                files: env.parsed("OUTPUT_MAX_FILES", 100)?,
            },
            download_timeout: Duration::from_secs(env.parsed("DOWNLOAD_TIMEOUT_SECS", 10)?),
        })
    }
}

/// The clients every part of the worker shares, built once: the AWS configuration, and
/// the WriftAI client and webhook with their secrets resolved (Secrets Manager ARNs are
/// read now, so no secret sits in the environment).
pub struct Clients {
    pub aws: SdkConfig,
    /// One client, cloned where needed: clones share a connection pool.
    pub api: WriftAi,
    pub webhook: Option<Webhook>,
}

impl Clients {
    pub async fn connect(config: &WorkerConfig) -> Result<Self, BoxError> {
        let aws = aws_config(&config.aws).await;
        let api = WriftAi::connect(&aws, &config.api).await?;
        let secret = match config.webhook.as_ref().and_then(|(_, secret)| secret.as_ref()) {
            Some(secret) => Some(secrets::resolve_var(&aws, "WRIFTAI_WEBHOOK_SECRET", secret).await?),
            None => None,
        };
        let webhook = config.webhook.as_ref().map(|(url, _)| Webhook { url: url.clone(), secret });
        Ok(Self { aws, api, webhook })
    }
}

/// `DOWNLOAD_MAX_BYTES` when it is not set: what one run copies, shared by the
/// `concurrency` copies of a batch.
fn per_file_default(concurrency: usize) -> u64 {
    ONE_RUN_COPIES / u64::try_from(concurrency.max(1)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUIRED: [(&str, &str); 3] = [("TABLE_NAME", "t"), ("QUEUE_URL", "q"), ("WRIFTAI_ACCESS_TOKEN", "x")];

    #[test]
    fn the_worker_reads_its_settings_with_their_defaults() {
        let config = WorkerConfig::from_env(&Env::of(&REQUIRED)).unwrap();
        assert_eq!(config.concurrency, 10);
        // Ten copies at once share what one run copies (issue 33, defect 5).
        let per_file = (512 << 20) / 10;
        assert_eq!(config.file_limits, FileLimits { per_file, per_prediction: 2 << 30, files: 100 });
        assert_eq!(config.download_timeout, Duration::from_secs(10));
        assert_eq!((config.webhook, config.output_bucket, config.s3_path_style), (None, None, false));
        assert_eq!(config.url_policy, UrlPolicy::default());
    }

    #[test]
    fn the_download_limit_is_one_runs_copy_shared_by_the_batchs_copies_unless_set() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let vars: Vec<(&str, &str)> = REQUIRED.iter().chain(extra).copied().collect();
            WorkerConfig::from_env(&Env::of(&vars)).unwrap().file_limits.per_file
        };
        assert_eq!(with(&[("WORKER_CONCURRENCY", "1")]), 512 << 20);
        assert_eq!(with(&[("WORKER_CONCURRENCY", "4")]), 128 << 20);
        assert_eq!(with(&[("WORKER_CONCURRENCY", "4"), ("DOWNLOAD_MAX_BYTES", "1000")]), 1000);
    }

    #[test]
    fn a_malformed_setting_is_named_in_the_error() {
        static BAD: [(&str, &str); 4] =
            [("TABLE_NAME", "t"), ("QUEUE_URL", "q"), ("WRIFTAI_ACCESS_TOKEN", "x"), ("WORKER_CONCURRENCY", "many")];
        let err = WorkerConfig::from_env(&Env::of(&BAD)).unwrap_err();
        assert!(err.to_string().contains("WORKER_CONCURRENCY"), "{err}");
    }
}
