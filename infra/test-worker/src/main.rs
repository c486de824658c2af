//! `test-worker`: wiring only, as the worker's `main.rs`, with the test table and hooks
//! of this crate's library.

use lambda_runtime::{Error, run, service_fn};
use shared::adapters::dynamo::DynamoLedger;
use shared::adapters::sqs::SqsQueue;
use shared::config::Env;
use test_worker::{Counted, Hooked};
use worker::batch::Worker;
use worker::config::{Clients, WorkerConfig};
use worker::work::Context;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = WorkerConfig::from_env(&Env::process())?;
    config.metrics.clone().install();
    let clients = Clients::new(&config).await?;
    let table = Counted::new(DynamoLedger::from_config(&clients.aws, &config.ingest.table_name));
    let queue = SqsQueue::from_config(&clients.aws, &config.ingest.queue_url);
    let job = Hooked(Context::new(&clients, &config, table, queue)?);
    let worker = &Worker::new(&clients, &config, job);
    run(service_fn(move |event| worker.handle(event))).await
}
