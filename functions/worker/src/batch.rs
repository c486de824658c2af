//! One SQS batch: its messages worked on concurrently (bounded), each in its own span,
//! each failure reported alone (`ReportBatchItemFailures`), so one bad message never
//! makes the good ones run again, and a panic fails only its own message.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::{FutureExt, StreamExt, stream};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use shared::adapters::dynamo::DynamoLedger;
use shared::adapters::sqs::SqsQueue;
use shared::claim::{self as unit, ClaimError, Outcome};
use shared::deadline::{ANSWER_MARGIN, time_left, within};
use shared::error::BoxError;
use shared::ingest::Ingest;
use shared::message::Message;
use shared::metrics::Metrics;
use shared::ports::{Ledger, RecordTable, WorkQueue};
use shared::prediction::{Prediction, PredictionId};
use shared::wriftai::WriftAi;
use time::OffsetDateTime;
use tokio::time::{Instant, timeout_at};
use tracing::{Instrument, field};

use crate::config::{Clients, WorkerConfig};
use crate::work;

/// What runs for each claimed message. [`work::Context`] is one: it calls
/// [`work::handle`]. The end-to-end tests' worker wraps it with crash hooks.
pub trait Job: Sync {
    /// `attempt` counts the claims of this unit of work, 1 for the first.
    fn run(&self, prediction: Prediction, attempt: u32) -> impl Future<Output = Result<Value, BoxError>> + Send;
}

impl<T: Ledger + RecordTable, Q: WorkQueue> Job for work::Context<T, Q> {
    async fn run(&self, prediction: Prediction, _attempt: u32) -> Result<Value, BoxError> {
        work::handle(&prediction, self).await
    }
}

pub struct Worker<J> {
    /// The table (claims) and the queue a check's answer may enqueue work on.
    ingest: Ingest<DynamoLedger, SqsQueue>,
    /// Fetches a prediction that came by reference (too large for a message).
    api: WriftAi,
    concurrency: usize,
    job: J,
}

impl<J: Job> Worker<J> {
    pub fn new(clients: &Clients, config: &WorkerConfig, job: J) -> Self {
        Self {
            ingest: Ingest::new(
                DynamoLedger::from_config(&clients.aws, &config.ingest.table_name),
                SqsQueue::from_config(&clients.aws, &config.ingest.queue_url),
                config.ingest.act_on.clone(),
                config.ingest.event_ttl,
            ),
            api: clients.api.clone(),
            concurrency: config.concurrency.max(1),
            job,
        }
    }

    /// What runs for each claimed message.
    pub fn job(&self) -> &J {
        &self.job
    }

    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        // The claim on each unit expires when this invocation is stopped. Every call a
        // message makes ends `ANSWER_MARGIN` before that, so the batch is always reported:
        // a message still going then fails alone.
        let left = time_left(event.context.deadline);
        let deadline = OffsetDateTime::now_utc() + left;
        let answer_by = Instant::now() + left.saturating_sub(ANSWER_MARGIN);
        let results: Vec<Result<&'static str, (&'static str, String)>> = stream::iter(event.payload.records)
            .map(|record| {
                let message_id = record.message_id.clone().unwrap_or_default();
                let bounded = timeout_at(answer_by, within(answer_by, self.process(record, deadline)));
                bounded.map(|done| done.unwrap_or(Err(("WorkFailed", message_id))))
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        let mut metrics = Metrics::new("worker");
        for result in results {
            match result {
                Ok(counted) => metrics.count(counted, 1),
                Err((counted, message_id)) => {
                    response.add_failure(message_id);
                    metrics.count(counted, 1)
                }
            };
        }
        metrics.emit();
        Ok(response)
    }

    /// Works one message: the metric it counts towards, and when it failed its ID.
    async fn process(
        &self,
        record: SqsMessage,
        deadline: OffsetDateTime,
    ) -> Result<&'static str, (&'static str, String)> {
        let message_id = record.message_id.unwrap_or_default();
        let body = record.body.unwrap_or_default();
        let span = tracing::info_span!("message", %message_id, prediction_id = field::Empty, status = field::Empty);
        if let Ok(Message::Check { check }) = Message::decode(&body) {
            span.record("prediction_id", field::display(check));
            return self.check(check).instrument(span).await.map_err(|counted| (counted, message_id));
        }
        if let Some((id, status)) = unit::peek(&body) {
            span.record("prediction_id", field::display(id));
            span.record("status", field::display(status));
        }
        let run = unit::run(self.ingest.ledger(), &self.api, &body, deadline, |prediction, attempt| {
            self.job.run(prediction, attempt)
        });
        let outcome = AssertUnwindSafe(run).catch_unwind().instrument(span.clone()).await;
        let _entered = span.enter();
        match outcome {
            Ok(Ok(outcome)) => {
                tracing::info!(?outcome, "message done");
                Ok(match outcome {
                    Outcome::Done { .. } => "WorkDone",
                    Outcome::AlreadyDone => "WorkAlreadyDone",
                })
            }
            Ok(Err(ClaimError::Busy)) => {
                // Contention, not failure: counted apart, so WorkFailed alarms on failures.
                tracing::info!("another run holds this work; it comes back later");
                Err(("WorkBusy", message_id))
            }
            Ok(Err(err @ ClaimError::MissingEvent { .. })) => {
                tracing::error!(error = %err, "work without its event record: it goes to the DLQ, redrive it once understood");
                Err(("MissingEvent", message_id))
            }
            Ok(Err(err)) => {
                tracing::error!(error = %shared::error::chain(&err), "message failed");
                Err(("WorkFailed", message_id))
            }
            Err(_) => {
                tracing::error!("message handling panicked");
                Err(("WorkFailed", message_id))
            }
        }
    }

    /// An unsigned delivery's check: what WriftAI says of the prediction is recorded,
    /// and its work enqueued if it moved it forward. Safe to repeat.
    async fn check(&self, id: PredictionId) -> Result<&'static str, &'static str> {
        match self.ingest.refresh(&self.api, id, OffsetDateTime::now_utc()).await {
            Ok(Some(outcome)) => {
                tracing::info!(outcome = outcome.as_str(), "checked with WriftAI");
                Ok("Checked")
            }
            Ok(None) => {
                tracing::warn!("WriftAI does not know this prediction: nothing to record");
                Ok("Checked")
            }
            Err(err) => {
                tracing::error!(error = %shared::error::chain(&err), "check failed; it comes back");
                Err("CheckFailed")
            }
        }
    }
}
