//! Adapters for the ports: AWS (DynamoDB, SQS) and in-memory twins for tests.

pub mod dynamo;
pub mod memory;
pub mod secrets;
pub mod sqs;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

/// Loads the AWS configuration once, from the standard environment: region,
/// credentials and endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`,
/// `AWS_ENDPOINT_URL_SQS`), so one binary runs on AWS and on the local stack.
///
/// Timeouts are short: a webhook answered late is retried by WriftAI anyway, and a
/// hung call must not hold the receiver until the Lambda timeout.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await
}
