//! One scheduled invocation: a reconcile run that stops before the invocation's
//! deadline, logged and counted as one summary.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use shared::adapters::{dynamo::DynamoLedger, sqs::SqsQueue};
use shared::deadline::{time_left, within};
use shared::ingest::Ingest;
use shared::metrics::Metrics;
use shared::reconcile::{ReconcileConfig, Reconciler, Summary};
use shared::wriftai::WriftAi;
use tokio::time::Instant;

/// What a run needs, built once per cold start.
pub struct App {
    pub ingest: Ingest<DynamoLedger, SqsQueue>,
    /// The work queue's dead-letter queue, for work requeued too often.
    pub dead_letters: SqsQueue,
    pub api: WriftAi,
    pub reconcile: ReconcileConfig,
    pub safety_margin: Duration,
}

pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let budget = time_left(event.context.deadline).saturating_sub(app.safety_margin);
    let reconciler = Reconciler {
        ingest: &app.ingest,
        store: app.ingest.ledger(),
        source: &app.api,
        dead_letters: &app.dead_letters,
        config: &app.reconcile,
    };
    let deadline = Instant::now() + budget;
    let run = within(deadline, reconciler.run(deadline)).await;
    let mut metrics = Metrics::new("reconciler");
    let summary: Summary = match run {
        Ok(summary) => summary,
        Err(err) => {
            // Counted before it fails the invocation (the Errors alarm), so the run's
            // failure is on the dashboard beside its siblings.
            tracing::error!(error = %shared::error::chain(&err), "reconcile run failed; the next one starts over");
            metrics.count("RunFailed", 1).emit();
            return Err(err.into());
        }
    };
    tracing::info!(
        examined = summary.examined,
        advanced = summary.advanced,
        enqueued = summary.enqueued,
        expired = summary.expired,
        requeued = summary.requeued,
        dead_lettered = summary.dead_lettered,
        errors = summary.errors,
        cut_short = summary.cut_short,
        budget_ms = budget.as_millis() as u64,
        "reconcile run"
    );
    metrics
        .count("Examined", summary.examined as u64)
        .count("Advanced", summary.advanced as u64)
        .count("Enqueued", summary.enqueued as u64)
        .count("Expired", summary.expired as u64)
        .count("Requeued", summary.requeued as u64)
        .count("DeadLettered", summary.dead_lettered as u64)
        .count("Errors", summary.errors as u64);
    metrics.emit();
    let summary = serde_json::to_value(summary)?;
    // For `hooks status`. The run is done either way: a lost summary only shows an
    // older run there.
    if let Err(err) = app.ingest.ledger().save_last_run(&summary, time::OffsetDateTime::now_utc()).await {
        tracing::warn!(error = %shared::error::chain(&err), "the run's summary was not kept");
    }
    Ok(summary)
}
