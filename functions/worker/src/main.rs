//! Worker Lambda: wiring only. Reads the configuration, builds the clients once, and
//! hands each SQS batch to [`batch::handle`]; the work itself is in [`work`].

mod batch;
mod config;
mod test_hooks;
mod work;

use lambda_runtime::{Error, run, service_fn};
use shared::adapters::{aws_config, dynamo::DynamoLedger, secrets, sqs::SqsQueue, tls::TrustRoots};
use shared::config::Env;
use shared::ingest::Ingest;
use shared::wriftai::{Webhook, WriftAi};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::process();
    let mut config = config::WorkerConfig::from_env(&env)?;
    let aws = aws_config(TrustRoots::from_env(&env)?).await;
    config.api.token = secrets::resolve(&aws, &config.api.token).await?;
    let ledger = DynamoLedger::from_config(&aws, &config.ingest.table_name);
    let webhook = match config.webhook {
        Some((url, Some(secret))) => Some(Webhook { url, secret: Some(secrets::resolve(&aws, &secret).await?) }),
        Some((url, None)) => Some(Webhook { url, secret: None }),
        None => None,
    };
    // One client, cloned: they share a connection pool and load the TLS roots once.
    let api = WriftAi::new(config.api)?;
    let app = batch::App {
        claims: ledger.clone(),
        api: api.clone(),
        concurrency: config.concurrency,
        test_hooks: config.test_hooks,
        context: work::Context {
            outputs: ledger.clone(),
            api,
            ingest: Ingest::new(
                ledger,
                SqsQueue::from_config(&aws, &config.ingest.queue_url),
                config.ingest.act_on,
                config.ingest.event_ttl,
            ),
            webhook,
            http: reqwest::Client::builder().timeout(config.download_timeout).build()?,
            download_limit: config.download_limit,
        },
    };
    let app = &app;
    run(service_fn(move |event| batch::handle(app, event))).await
}
