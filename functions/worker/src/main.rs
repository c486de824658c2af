//! Worker Lambda: wiring only. Reads the configuration, builds the clients and your
//! [`work::Context`] once, and hands each SQS batch to [`Worker::handle`].

use lambda_runtime::{Error, run, service_fn};
use shared::adapters::{dynamo::DynamoLedger, sqs::SqsQueue};
use shared::config::Env;
use worker::batch::Worker;
use worker::config::{Clients, WorkerConfig};
use worker::work;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = WorkerConfig::from_env(&Env::process())?;
    config.metrics.clone().install();
    let clients = Clients::new(&config).await?;
    let table = DynamoLedger::from_config(&clients.aws, &config.ingest.table_name);
    let queue = SqsQueue::from_config(&clients.aws, &config.ingest.queue_url);
    let context = work::Context::new(&clients, &config, table, queue)?;
    let worker = &Worker::new(&clients, &config, context);
    run(service_fn(move |event| worker.handle(event))).await
}
