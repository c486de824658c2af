//! Receiver Lambda: wiring only. Reads the configuration, builds the AWS clients once,
//! and serves Function URL requests with [`handler::handle`].

mod handler;

use lambda_http::{Error, run, service_fn};
use shared::adapters::{aws_config, dynamo::DynamoLedger, sqs::SqsQueue};
use shared::config::{Env, ReceiverConfig};
use shared::ingest::Ingest;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = ReceiverConfig::from_env(&Env::process())?;
    let aws = aws_config().await;
    let ingest = Ingest::new(
        DynamoLedger::from_config(&aws, &config.ingest.table_name),
        SqsQueue::from_config(&aws, &config.ingest.queue_url),
        config.ingest.act_on,
        config.ingest.event_ttl,
    );
    let (ingest, limits) = (&ingest, &config.limits);
    run(service_fn(move |request| {
        handler::handle(ingest, limits, request)
    }))
    .await
}
