//! One SQS batch: its messages worked on concurrently (bounded), each in its own span,
//! each failure reported alone (`ReportBatchItemFailures`), so one bad message never
//! makes the good ones run again, and a panic fails only its own message.

use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::{FutureExt, StreamExt, stream};
use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::dynamo::DynamoLedger;
use shared::deadline::time_left;
use shared::metrics::Metrics;
use shared::work::{self as unit, Outcome, WorkError};
use shared::wriftai::WriftAi;
use time::OffsetDateTime;
use tracing::{Instrument, field};

use crate::{test_hooks, work};

pub struct App {
    pub claims: DynamoLedger,
    pub api: WriftAi,
    pub concurrency: usize,
    pub test_hooks: bool,
    pub context: work::Context,
}

pub async fn handle(app: &App, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    // The claim on each unit expires when this invocation is stopped.
    let deadline = OffsetDateTime::now_utc() + time_left(event.context.deadline);
    let results: Vec<Result<&'static str, String>> = stream::iter(event.payload.records)
        .map(|record| process(app, record, deadline))
        .buffer_unordered(app.concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    let mut metrics = Metrics::new("worker");
    for result in results {
        match result {
            Ok(counted) => metrics.count(counted, 1),
            Err(message_id) => {
                response.add_failure(message_id);
                metrics.count("WorkFailed", 1)
            }
        };
    }
    metrics.emit();
    Ok(response)
}

/// Works one message: `Ok` with the metric it counts towards, or `Err` with its ID
/// when it failed.
async fn process(app: &App, record: SqsMessage, deadline: OffsetDateTime) -> Result<&'static str, String> {
    let message_id = record.message_id.unwrap_or_default();
    let body = record.body.unwrap_or_default();
    let span = tracing::info_span!("message", %message_id, prediction_id = field::Empty, status = field::Empty);
    if let Some((id, status)) = unit::peek(&body) {
        span.record("prediction_id", field::display(id));
        span.record("status", field::display(status));
    }
    let job = |prediction, attempt| async move {
        if app.test_hooks {
            test_hooks::before_work(&prediction, attempt).await?;
        }
        work::handle(&prediction, &app.context).await
    };
    let run = unit::run(&app.claims, &app.api, &body, deadline, job);
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
        Ok(Err(WorkError::Busy)) => {
            tracing::info!("another run holds this work; it comes back later");
            Err(message_id)
        }
        Ok(Err(err)) => {
            tracing::error!(error = %shared::error::chain(&err), "message failed");
            Err(message_id)
        }
        Err(_) => {
            tracing::error!("message handling panicked");
            Err(message_id)
        }
    }
}
