//! One SQS batch: its messages worked on concurrently (bounded), each in its own span,
//! each failure reported alone (`ReportBatchItemFailures`), so one bad message never
//! makes the good ones run again, and a panic fails only its own message.

use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::{FutureExt, StreamExt, stream};
use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::dynamo::DynamoLedger;
use shared::deadline::time_left;
use shared::work::{self as unit, WorkError};
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
    let failed: Vec<String> = stream::iter(event.payload.records)
        .map(|record| process(app, record, deadline))
        .buffer_unordered(app.concurrency.max(1))
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for message_id in failed {
        response.add_failure(message_id);
    }
    Ok(response)
}

/// Works one message; returns its ID when it failed.
async fn process(app: &App, record: SqsMessage, deadline: OffsetDateTime) -> Option<String> {
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
            None
        }
        Ok(Err(WorkError::Busy)) => {
            tracing::info!("another run holds this work; it comes back later");
            Some(message_id)
        }
        Ok(Err(err)) => {
            tracing::error!(error = %shared::error::chain(&err), "message failed");
            Some(message_id)
        }
        Err(_) => {
            tracing::error!("message handling panicked");
            Some(message_id)
        }
    }
}
