//! One SQS batch: its messages worked on concurrently (bounded), each in its own span,
//! each failure reported alone (`ReportBatchItemFailures`), so one bad message never
//! makes the good ones run again. Each message is decoded once, here; a panic in the work
//! is caught once, by the claim around it, and fails only its own message.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::{FutureExt, StreamExt, stream};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::time::{Instant, timeout_at};
use tracing::{Instrument, field};

use super::claim::{self, ClaimError, Outcome};
use super::lags::{self, Lags};
use crate::adapters::backend::{Queue, Table};
use crate::deadline::{ANSWER_MARGIN, time_left, within};
use crate::error::BoxError;
use crate::ingest::Ingest;
use crate::message::Message;
use crate::metrics::Metrics;
use crate::ports::Ledger;
use crate::prediction::{Prediction, PredictionId};
use crate::trace::TraceHeader;
use crate::wriftai::WriftAi;

/// What one message came to: the metric it counts towards, and when it failed its ID.
type Counted = Result<&'static str, (&'static str, String)>;

/// What runs for each claimed message: the user's `handle` on its context, in a Lambda.
pub trait Job {
    fn run(&self, prediction: Prediction) -> impl Future<Output = Result<Value, BoxError>>;
}

tokio::task_local! {
    /// The claim's attempt of the work now running.
    static ATTEMPT: u32;
}

/// Which run of its unit of work this is, for the work now running: 1 for the first
/// claim, 2 for the run after one failed or was cut short, and so on; `None` outside a
/// run. Not part of the API's promise.
#[doc(hidden)]
pub fn attempt() -> Option<u32> {
    ATTEMPT.try_with(|attempt| *attempt).ok()
}

/// The worker: the table (claims) and the queue a check's answer may enqueue work on,
/// WriftAI (a prediction that came by reference, a check's answer), and the job.
pub struct Worker<J> {
    ingest: Ingest<Table, Queue>,
    source: WriftAi,
    concurrency: usize,
    job: J,
}

impl<J: Job> Worker<J> {
    pub fn new(ingest: Ingest<Table, Queue>, source: WriftAi, concurrency: usize, job: J) -> Self {
        Self { ingest, source, concurrency: concurrency.max(1), job }
    }

    /// What runs for each claimed message.
    pub fn job(&self) -> &J {
        &self.job
    }

    /// The table and the queue it works with.
    pub fn ingest(&self) -> &Ingest<Table, Queue> {
        &self.ingest
    }

    /// Where it fetches predictions and asks its checks.
    pub fn source(&self) -> &WriftAi {
        &self.source
    }

    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let (response, metrics) = self.batch(event).await;
        metrics.emit();
        Ok(response)
    }

    /// Works one batch: its failures, and its metrics (one document for the batch).
    pub async fn batch(&self, event: LambdaEvent<SqsEvent>) -> (SqsBatchResponse, Metrics) {
        // The claim on each unit expires when this invocation is stopped. Every call a
        // message makes ends `ANSWER_MARGIN` before that, so the batch is always reported:
        // a message still going then fails alone.
        let left = time_left(event.context.deadline);
        let deadline = crate::clock::now() + left;
        let answer_by = Instant::now() + left.saturating_sub(ANSWER_MARGIN);
        let invocation = event.context.xray_trace_id.as_deref().and_then(TraceHeader::parse);
        let results: Vec<(Counted, Lags)> = stream::iter(event.payload.records)
            .map(|record| {
                let message_id = record.message_id.clone().unwrap_or_default();
                let work = self.process(record, deadline, invocation.as_ref());
                let bounded = timeout_at(answer_by, within(answer_by, work));
                bounded.map(|done| done.unwrap_or((Err(("WorkFailed", message_id)), Lags::default())))
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        let mut metrics = Metrics::new("worker");
        for (result, lags) in results {
            lags.add_to(&mut metrics);
            match result {
                Ok(counted) => metrics.count(counted, 1),
                Err((counted, message_id)) => {
                    response.add_failure(message_id);
                    metrics.count(counted, 1)
                }
            };
        }
        (response, metrics)
    }

    /// Works one message: the metric it counts towards, and when it failed its ID; and
    /// its lags. Its span names the trace its work belongs to (`lags::trace_of`): the
    /// sender's, which is how its lines join the receiver's.
    async fn process(
        &self,
        record: SqsMessage,
        deadline: OffsetDateTime,
        invocation: Option<&TraceHeader>,
    ) -> (Counted, Lags) {
        let trace = lags::trace_of(&record, invocation);
        let mut lags = Lags::received(&record, crate::clock::now());
        let message_id = record.message_id.unwrap_or_default();
        let trace_id = trace.as_ref().map(TraceHeader::root);
        let span =
            tracing::info_span!("message", %message_id, prediction_id = field::Empty, status = field::Empty, trace_id);
        let message = match Message::decode(record.body.as_deref().unwrap_or_default()) {
            Ok(Message::Check { check }) => {
                span.record("prediction_id", field::display(check));
                let checked = self.check(check, trace.as_ref()).instrument(span).await;
                return (checked.map_err(|counted| (counted, message_id)), lags);
            }
            Ok(Message::Work(message)) => message,
            Err(err) => {
                let _entered = span.enter();
                tracing::error!(error = %err, "poison message: not a work message; it goes to the DLQ");
                return (Err(("WorkFailed", message_id)), lags);
            }
        };
        span.record("prediction_id", field::display(message.prediction_id));
        span.record("status", field::display(&message.status));
        // How long the job ran, and when WriftAI completed what it ran on: WorkDuration
        // and EndToEnd.
        let ran = std::sync::Mutex::new(None);
        let outcome = claim::run(self.ingest.ledger(), &self.source, message, deadline, |prediction, attempt| {
            let ran = &ran;
            async move {
                let began = Instant::now();
                let completed = crate::lag::completed_at(&prediction);
                let result = ATTEMPT.scope(attempt, self.job.run(prediction)).await;
                *ran.lock().unwrap_or_else(|p| p.into_inner()) = Some((began.elapsed(), completed));
                result
            }
        })
        .instrument(span.clone())
        .await;
        let ran = ran.into_inner().unwrap_or_else(|p| p.into_inner());
        lags.work = ran.as_ref().map(|(took, _)| *took);
        // A message may outlive its prediction's erasure (`hooks forget`): in flight then,
        // or redriven since. A read error counts as not forgotten: the message fails loudly.
        let forgotten = match &outcome {
            Err(ClaimError::MissingEvent { id, .. }) => {
                self.ingest.ledger().forgotten(*id).instrument(span.clone()).await.unwrap_or(false)
            }
            _ => false,
        };
        let _entered = span.enter();
        let counted = match outcome {
            Ok(outcome) => {
                tracing::info!(?outcome, "message done");
                Ok(match outcome {
                    Outcome::Done { rerun, .. } => {
                        lags.done(ran.and_then(|(_, completed)| completed), rerun, crate::clock::now());
                        "WorkDone"
                    }
                    Outcome::AlreadyDone => "WorkAlreadyDone",
                })
            }
            Err(ClaimError::Busy) => {
                // Contention, not failure: counted apart, so WorkFailed alarms on failures.
                tracing::info!("another run holds this work; it comes back later");
                Err(("WorkBusy", message_id))
            }
            Err(ClaimError::Forgotten(_)) => {
                tracing::info!("the prediction was forgotten: its message is dropped");
                Ok("WorkForgotten")
            }
            Err(ClaimError::MissingEvent { .. }) if forgotten => {
                // Nothing to run, and nothing of it may be written back.
                tracing::info!("the prediction was forgotten: its message is dropped");
                Ok("WorkForgotten")
            }
            Err(err @ ClaimError::MissingEvent { .. }) => {
                tracing::error!(error = %err, "work without its event record: it goes to the DLQ, redrive it once understood");
                Err(("MissingEvent", message_id))
            }
            Err(err) => {
                tracing::error!(error = %crate::error::chain(&err), "message failed");
                Err(("WorkFailed", message_id))
            }
        };
        (counted, lags)
    }

    /// An unsigned delivery's check: what WriftAI says of the prediction is recorded,
    /// and its work enqueued if it moved it forward, in the check's trace. Safe to repeat.
    async fn check(&self, id: PredictionId, trace: Option<&TraceHeader>) -> Result<&'static str, &'static str> {
        match self.ingest.traced(trace).refresh(&self.source, id, crate::clock::now()).await {
            Ok(Some(outcome)) => {
                tracing::info!(outcome = outcome.as_str(), "checked with WriftAI");
                Ok("Checked")
            }
            Ok(None) => {
                tracing::warn!("WriftAI does not know this prediction: nothing to record");
                Ok("Checked")
            }
            Err(err) => {
                tracing::error!(error = %crate::error::chain(&err), "check failed; it comes back");
                Err("CheckFailed")
            }
        }
    }
}

// The tests stay the file's last part: infra/tests reads what the worker emits from the
// code before them.
#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use crate::adapters::memory::{MemoryLedger, MemoryQueue};
    use crate::config::ActOn;
    use crate::message::WorkMessage;
    use crate::ports::Claims;
    use crate::prediction::Status;
    use aws_lambda_events::event::sqs::SqsMessage;
    use serde_json::json;

    use super::*;

    /// Counts its runs per prediction; fails or panics when the input's `then` asks.
    #[derive(Default)]
    struct Counting(Mutex<BTreeMap<PredictionId, u32>>);

    impl Counting {
        fn runs(&self, id: PredictionId) -> u32 {
            self.0.lock().unwrap().get(&id).copied().unwrap_or(0)
        }
    }

    impl Job for Counting {
        async fn run(&self, prediction: Prediction) -> Result<Value, BoxError> {
            *self.0.lock().unwrap().entry(prediction.id).or_default() += 1;
            match prediction.input["then"].as_str() {
                Some("fail") => Err("asked to fail".into()),
                Some("panic") => panic!("asked to panic"),
                _ => Ok(json!({"ran": true})),
            }
        }
    }

    type TestWorker = Worker<Counting>;

    fn worker() -> TestWorker {
        let (table, queue) = (MemoryLedger::default().into(), MemoryQueue::default().into());
        let ingest = Ingest::new(table, queue, ActOn::terminal(), Duration::from_secs(3600));
        Worker::new(ingest, WriftAi::in_memory(), 4, Counting::default())
    }

    fn table(worker: &TestWorker) -> &MemoryLedger {
        worker.ingest.ledger().memory().unwrap()
    }

    fn succeeded(id: PredictionId, then: &str) -> String {
        json!({"id": id.to_string(), "status": "succeeded", "input": {"then": then}, "output": "out"}).to_string()
    }

    /// A registered prediction whose `succeeded` event the receiver recorded: the
    /// message it enqueued.
    async fn delivered(worker: &TestWorker, then: &str) -> (PredictionId, String) {
        let (id, now) = (PredictionId::random(), crate::clock::now());
        worker.ingest.ledger().register(id, now).await.unwrap();
        let raw = succeeded(id, then);
        worker.ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, now).await.unwrap();
        (id, WorkMessage::encode(id, &Status::Succeeded, &raw))
    }

    /// An SQS batch of `bodies`, with message IDs `m0`, `m1`, ..., 30 s before its deadline.
    fn batch(bodies: &[&str]) -> LambdaEvent<SqsEvent> {
        let mut event = SqsEvent::default();
        for (n, body) in bodies.iter().enumerate() {
            let mut message = SqsMessage::default();
            (message.message_id, message.body) = (Some(format!("m{n}")), Some((*body).to_owned()));
            event.records.push(message);
        }
        let mut context = lambda_runtime::Context::default();
        let now_ms = u64::try_from(crate::clock::now().unix_timestamp_nanos() / 1_000_000).unwrap();
        context.deadline = now_ms + 30_000;
        LambdaEvent::new(event, context)
    }

    async fn failures(worker: &TestWorker, bodies: &[&str]) -> Vec<String> {
        let response = worker.handle(batch(bodies)).await.unwrap();
        let mut failed: Vec<String> =
            response.batch_item_failures.into_iter().map(|failure| failure.item_identifier).collect();
        failed.sort();
        failed
    }

    #[tokio::test]
    async fn each_message_runs_its_work_once_and_a_repeat_runs_nothing() {
        let worker = worker();
        let (a, body_a) = delivered(&worker, "succeed").await;
        let (b, body_b) = delivered(&worker, "succeed").await;
        assert!(failures(&worker, &[&body_a, &body_b]).await.is_empty());
        assert!(failures(&worker, &[&body_a]).await.is_empty(), "a repeat is done, not failed");
        assert_eq!((worker.job.runs(a), worker.job.runs(b)), (1, 1));
        assert_eq!(table(&worker).event(a, "succeeded").unwrap().done, Some(json!({"ran": true})));
    }

    #[tokio::test]
    async fn a_message_that_is_not_a_work_message_fails_alone() {
        let worker = worker();
        let (id, body) = delivered(&worker, "succeed").await;
        let failed = failures(&worker, &["not json", &body, r#"{"prediction_id":"x"}"#]).await;
        assert_eq!(failed, ["m0", "m2"]);
        assert_eq!(worker.job.runs(id), 1);
    }

    #[tokio::test]
    async fn work_that_fails_or_panics_fails_only_its_message_and_runs_again() {
        let worker = worker();
        let (failing, fail) = delivered(&worker, "fail").await;
        let (panicking, panic) = delivered(&worker, "panic").await;
        let (fine, ok) = delivered(&worker, "succeed").await;
        assert_eq!(failures(&worker, &[&fail, &panic, &ok]).await, ["m0", "m1"]);
        // Their claims were given back: the next delivery runs them again.
        assert_eq!(failures(&worker, &[&fail, &panic, &ok]).await, ["m0", "m1"]);
        assert_eq!([failing, panicking, fine].map(|id| worker.job.runs(id)), [2, 2, 1]);
        assert_eq!(table(&worker).event(panicking, "succeeded").unwrap().done, None);
    }

    #[tokio::test]
    async fn work_another_run_holds_is_not_run_and_comes_back() {
        let worker = worker();
        let (id, body) = delivered(&worker, "succeed").await;
        let until = crate::clock::now() + Duration::from_secs(60);
        let held = worker.ingest.ledger().claim(id, &Status::Succeeded, until, crate::clock::now()).await;
        assert!(matches!(held.unwrap(), crate::ports::Claim::Acquired { .. }));
        assert_eq!(failures(&worker, &[&body]).await, ["m0"]);
        assert_eq!(worker.job.runs(id), 0);
    }

    #[tokio::test]
    async fn a_work_message_for_an_event_never_recorded_fails() {
        let worker = worker();
        let id = PredictionId::random();
        let stray = WorkMessage::encode(id, &Status::Succeeded, &succeeded(id, "succeed"));
        assert_eq!(failures(&worker, &[&stray]).await, ["m0"]);
        assert_eq!(worker.job.runs(id), 0);
    }

    #[tokio::test]
    async fn a_message_for_a_forgotten_prediction_is_dropped_and_runs_nothing() {
        let worker = worker();
        let (id, body) = delivered(&worker, "succeed").await;
        table(&worker).forget(id);
        assert!(failures(&worker, &[&body]).await.is_empty(), "not sent to the DLQ to come back");
        assert_eq!(worker.job.runs(id), 0);
        assert!(table(&worker).event(id, "succeeded").is_none(), "nothing written back");
    }

    #[tokio::test]
    async fn a_check_records_what_wriftai_says_and_enqueues_its_work() {
        let worker = worker();
        let id = PredictionId::random();
        worker.ingest.ledger().register(id, crate::clock::now()).await.unwrap();
        worker.source.memory().unwrap().set(&succeeded(id, "succeed"));
        assert!(failures(&worker, &[&Message::check(id)]).await.is_empty());
        assert!(table(&worker).event(id, "succeeded").is_some(), "WriftAI's status is recorded");
        let enqueued = worker.ingest.queue().memory().unwrap().messages();
        assert_eq!(enqueued.len(), 1);
        // The work it enqueued then runs as any other.
        assert!(failures(&worker, &[&enqueued[0]]).await.is_empty());
        assert_eq!(worker.job.runs(id), 1);
        // A prediction WriftAI does not know: nothing to record, and nothing to retry.
        let unknown = PredictionId::random();
        assert!(failures(&worker, &[&Message::check(unknown)]).await.is_empty());
        assert!(table(&worker).event(unknown, "succeeded").is_none());
    }

    /// Runs `work` as the `attempt`-th run of its unit of work: a test's way to be one.
    pub(crate) async fn as_attempt<F: Future>(attempt: u32, work: F) -> F::Output {
        super::ATTEMPT.scope(attempt, work).await
    }
}
