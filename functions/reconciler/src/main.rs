//! Reconciler Lambda: wiring only. Invoked on a schedule; each run walks what webhooks
//! left unfinished (see `shared::reconcile`) in [`handler::handle`].

mod config;
mod handler;

use lambda_runtime::{Error, run, service_fn};
use shared::adapters::{aws_config, dynamo::DynamoLedger, secrets, sqs::SqsQueue};
use shared::config::Env;
use shared::ingest::Ingest;
use shared::wriftai::WriftAi;

use crate::config::ReconcilerConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut config = ReconcilerConfig::from_env(&Env::process())?;
    config.metrics.clone().install();
    let aws = aws_config(&config.aws).await;
    config.api.token = secrets::resolve_var(&aws, "WRIFTAI_ACCESS_TOKEN", &config.api.token).await?;
    let app = handler::App {
        ingest: Ingest::new(
            DynamoLedger::from_config(&aws, &config.ingest.table_name),
            SqsQueue::from_config(&aws, &config.ingest.queue_url),
            config.ingest.act_on,
            config.ingest.event_ttl,
        ),
        dead_letters: SqsQueue::from_config(&aws, &config.dlq_url),
        api: WriftAi::new(config.api)?,
        reconcile: config.reconcile,
        safety_margin: config.safety_margin,
    };
    let app = &app;
    run(service_fn(move |event| handler::handle(app, event))).await
}
