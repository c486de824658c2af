//! Receiver Lambda: wiring only. Reads the configuration, builds the AWS clients and
//! resolves the webhook secrets once, and serves Function URL requests with
//! [`handler::handle`].

mod config;
mod handler;

use lambda_http::{Error, run, service_fn};
use shared::adapters::{aws_config, dynamo::DynamoLedger, secrets, sqs::SqsQueue};
use shared::config::Env;
use shared::ingest::Ingest;
use shared::signature::Verifier;
use shared::webhook::Checks;

use crate::config::ReceiverConfig;

/// One thread: Lambda hands an instance one request at a time, and the handler only
/// waits on DynamoDB and SQS. Without worker threads every hand-off between the handler
/// and the HTTP connections stays on this thread: `make bench` measured 30 context
/// switches per request on the multi-thread runtime and 5 on this one, and a third less
/// CPU per request.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = ReceiverConfig::from_env(&Env::process())?;
    config.metrics.clone().install();
    let aws = aws_config(&config.aws).await;
    let mut keys = Vec::with_capacity(config.secrets.len());
    for (var, secret) in &config.secrets {
        keys.push(secrets::resolve_var(&aws, var, secret).await?);
    }
    let checks = Checks { limits: config.limits, verifier: Verifier::new(keys, config.tolerance) };
    if config.allow_unsigned {
        tracing::warn!(
            "ALLOW_UNSIGNED_WEBHOOKS=true and no WRIFTAI_WEBHOOK_SECRET: signatures are not checked, only prediction IDs"
        );
    }
    let ingest = Ingest::new(
        DynamoLedger::from_config(&aws, &config.ingest.table_name),
        SqsQueue::from_config(&aws, &config.ingest.queue_url),
        config.ingest.act_on,
        config.ingest.event_ttl,
    );
    let (ingest, checks) = (&ingest, &checks);
    run(service_fn(move |request| handler::handle(ingest, checks, request))).await
}
