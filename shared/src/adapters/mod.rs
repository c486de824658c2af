//! Adapters for the ports: AWS (DynamoDB, SQS) and in-memory twins for tests.

pub mod backend;
pub mod dynamo;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod s3;
pub mod secrets;
pub mod sqs;
pub mod tls;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
use aws_config::timeout::TimeoutConfig;

pub use aws_config::SdkConfig;
use backend::{Queue, Table};
use dynamo::DynamoLedger;
use sqs::SqsQueue;
use tls::TrustRoots;

use crate::config::{ConfigError, Env, IngestConfig};
use crate::error::BoxError;
use crate::ingest::Ingest;
use crate::wriftai::{ApiConfig, WriftAi};

/// The most one try of an AWS call may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// The most a whole AWS call may take, the SDK's own retries (three tries) included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The most connecting to an AWS endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How the AWS clients are set up: read with the function's configuration, at cold start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// The roots the HTTPS client trusts (`TLS_ROOTS`, see [`tls`]).
    pub roots: TrustRoots,
    /// `AWS_REGION` or `AWS_DEFAULT_REGION` is set.
    region_in_env: bool,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are set.
    credentials_in_env: bool,
}

impl AwsSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let set = |name| env.optional(name).is_some();
        Ok(Self {
            roots: TrustRoots::from_env(env)?,
            region_in_env: set("AWS_REGION") || set("AWS_DEFAULT_REGION"),
            credentials_in_env: set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"),
        })
    }

    /// The same, trusting the platform's roots: for tools that run on laptops, where a
    /// TLS-inspecting proxy may sit between them and AWS.
    pub fn system_roots(self) -> Self {
        Self { roots: TrustRoots::System, ..self }
    }
}

/// Loads the AWS configuration once, from the standard environment: region,
/// credentials and endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`,
/// `AWS_ENDPOINT_URL_SQS`), so one binary runs on AWS and on the local stack.
///
/// Lambda puts the region and the role's credentials in the environment. When they are
/// there, they are taken from there and the loader's provider chains are never built:
/// they would find the same values, but building them costs init time (the credentials
/// chain alone builds an STS client for web identity, with its own TLS set-up). Without
/// them (a laptop with a profile, a container with a credentials endpoint) the chains
/// run as usual.
///
/// The HTTPS client trusts `settings.roots` (see [`tls`]). Timeouts are short: a webhook
/// answered late is retried by WriftAI anyway, and a hung call must not hold the
/// receiver until the Lambda timeout.
pub async fn aws_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).http_client(tls::https_client(settings.roots)).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if settings.region_in_env {
        loader = loader.region(EnvironmentVariableRegionProvider::new());
    }
    if settings.credentials_in_env {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader.load().await
}

impl Ingest<Table, Queue> {
    /// Record-and-enqueue on the stack's table and work queue.
    pub fn on_aws(aws: &SdkConfig, config: &IngestConfig) -> Self {
        Ingest::new(
            DynamoLedger::from_config(aws, &config.table_name, config.index_shards)
                .keeping_records(config.record_ttl)
                .into(),
            SqsQueue::from_config(aws, &config.queue_url).into(),
            config.act_on.clone(),
            config.event_ttl,
        )
    }
}

impl WriftAi {
    /// The WriftAI client, its token resolved: a Secrets Manager ARN in
    /// `WRIFTAI_ACCESS_TOKEN` is read now, so the secret never sits in the environment.
    #[doc(hidden)]
    pub async fn connect(aws: &SdkConfig, config: &ApiConfig) -> Result<Self, BoxError> {
        let mut config = config.clone();
        config.token = secrets::resolve_var(aws, "WRIFTAI_ACCESS_TOKEN", &config.token).await?;
        Ok(WriftAi::new(config)?)
    }
}
