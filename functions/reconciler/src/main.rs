//! Reconciler Lambda: wiring only. Invoked on a schedule; walks what webhooks left
//! unfinished (see `shared::reconcile`), stops before its own timeout, and logs and
//! returns one summary line.

use std::time::{Duration, Instant};

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::adapters::{aws_config, dynamo::DynamoLedger, secrets, sqs::SqsQueue, tls::TrustRoots};
use shared::config::{Env, IngestConfig};
use shared::deadline::time_left;
use shared::ingest::Ingest;
use shared::metrics::Metrics;
use shared::reconcile::{ReconcileConfig, Reconciler, Summary};
use shared::wriftai::{ApiConfig, WriftAi};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env::process();
    let ingest_config = IngestConfig::from_env(&env)?;
    let config = ReconcileConfig::from_env(&env)?;
    // Time kept back from the deadline to save the cursor and answer.
    let margin = Duration::from_secs(env.parsed("RECONCILE_SAFETY_MARGIN_SECS", 10)?);
    let aws = aws_config(TrustRoots::from_env(&env)?).await;
    let mut api_config = ApiConfig::from_env(&env)?;
    api_config.token = secrets::resolve(&aws, &api_config.token).await?;
    let api = WriftAi::new(api_config)?;
    let ledger = DynamoLedger::from_config(&aws, &ingest_config.table_name);
    let ingest = Ingest::new(
        ledger.clone(),
        SqsQueue::from_config(&aws, &ingest_config.queue_url),
        ingest_config.act_on,
        ingest_config.event_ttl,
    );
    let reconciler = Reconciler { ingest: &ingest, store: &ledger, source: &api, config: &config };
    let reconciler = &reconciler;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let left = time_left(event.context.deadline);
        let stop_at = Instant::now() + left.saturating_sub(margin);
        let summary: Summary = reconciler.run(|| Instant::now() >= stop_at).await.inspect_err(|err| {
            tracing::error!(error = %shared::error::chain(err), "reconcile run failed; the next one starts over");
        })?;
        tracing::info!(
            examined = summary.examined,
            advanced = summary.advanced,
            enqueued = summary.enqueued,
            expired = summary.expired,
            requeued = summary.requeued,
            errors = summary.errors,
            cut_short = summary.cut_short,
            budget_ms = left.saturating_sub(margin).as_millis() as u64,
            "reconcile run"
        );
        let mut metrics = Metrics::new("reconciler");
        metrics
            .count("Examined", summary.examined as u64)
            .count("Advanced", summary.advanced as u64)
            .count("Enqueued", summary.enqueued as u64)
            .count("Expired", summary.expired as u64)
            .count("Requeued", summary.requeued as u64)
            .count("Errors", summary.errors as u64);
        metrics.emit();
        Ok::<_, Error>(serde_json::to_value(summary)?)
    }))
    .await
}
