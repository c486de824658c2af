//! One scheduled invocation: a reconcile run that stops before the invocation's
//! deadline, logged and counted as one summary.

use std::time::Duration;

use crate::adapters::SdkConfig;
use crate::adapters::backend::{Queue, Table};
use crate::adapters::sqs::SqsQueue;
use crate::deadline::{time_left, within};
use crate::error::BoxError;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::ports::{Ledger, PredictionSource, ReconcileStore, WorkQueue};
use crate::reconciler::run::{ReconcileConfig, Reconciler, Summary};
use crate::trace::TraceHeader;
use crate::wriftai::WriftAi;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use tokio::time::Instant;

use super::config::ReconcilerConfig;

/// What a run needs, built once per cold start: on Lambda, DynamoDB, SQS and WriftAI
/// ([`App::on_aws`]); the tests below use the in-memory adapters.
pub struct App<L, Q, P, D> {
    pub ingest: Ingest<L, Q>,
    /// The work queue's dead-letter queue, for work requeued too often.
    pub dead_letters: D,
    pub source: P,
    pub reconcile: ReconcileConfig,
    pub safety_margin: Duration,
}

impl App<Table, Queue, WriftAi, Queue> {
    pub async fn on_aws(aws: &SdkConfig, config: ReconcilerConfig) -> Result<Self, BoxError> {
        Ok(Self {
            ingest: Ingest::on_aws(aws, &config.ingest),
            dead_letters: SqsQueue::from_config(aws, &config.dlq_url).into(),
            source: WriftAi::connect(aws, &config.api).await?,
            reconcile: config.reconcile,
            safety_margin: config.safety_margin,
        })
    }
}

impl<L, Q, P, D> App<L, Q, P, D>
where
    L: Ledger + ReconcileStore,
    Q: WorkQueue,
    P: PredictionSource,
    D: WorkQueue,
{
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let budget = time_left(event.context.deadline).saturating_sub(self.safety_margin);
        // This run's X-Ray trace: on every line about a prediction, and on every message
        // it sends, so the worker's lines for what it found join it.
        let trace = event.context.xray_trace_id.as_deref().and_then(TraceHeader::parse);
        let ingest = self.ingest.traced(trace.as_ref());
        let reconciler = Reconciler {
            ingest: &ingest,
            store: self.ingest.ledger(),
            source: &self.source,
            dead_letters: &self.dead_letters,
            config: &self.reconcile,
        };
        let deadline = Instant::now() + budget;
        let run = within(deadline, reconciler.run(deadline)).await;
        let summary: Summary = match run {
            Ok(summary) => summary,
            Err(err) => {
                // Counted before it fails the invocation (the Errors alarm), so the run's
                // failure is on the dashboard beside its siblings.
                tracing::error!(error = %crate::error::chain(&err), "reconcile run failed; the next one starts over");
                Metrics::new("reconciler").count("RunFailed", 1).emit();
                return Err(err.into());
            }
        };
        // A run that found nothing says so at debug: one line every few minutes that
        // says nothing happened is noise in the logs (the metrics still count it).
        macro_rules! run_line {
            ($level:ident) => {
                tracing::$level!(
                    examined = summary.examined,
                    advanced = summary.advanced,
                    enqueued = summary.enqueued,
                    expired = summary.expired,
                    missed_webhooks = summary.missed_webhooks,
                    requeued = summary.requeued,
                    dead_lettered = summary.dead_lettered,
                    errors = summary.errors,
                    unanswered = summary.unanswered,
                    cut_short = summary.cut_short,
                    budget_ms = budget.as_millis() as u64,
                    "reconcile run"
                )
            };
        }
        if summary.idle() {
            run_line!(debug);
        } else {
            run_line!(info);
        }
        if summary.learned_nothing() {
            tracing::error!(
                unanswered = summary.unanswered,
                "WriftAI answered no question of this run (a revoked token answers 401 to every GET): \
                 nothing webhooks left unfinished can be learned or closed until it does"
            );
        }
        run_metrics(&summary).emit();
        let summary = serde_json::to_value(summary)?;
        // For `hooks status`. The run is done either way: a lost summary only shows an
        // older run there.
        if let Err(err) = self.ingest.ledger().save_last_run(&summary, crate::clock::now()).await {
            tracing::warn!(error = %crate::error::chain(&err), "the run's summary was not kept");
        }
        Ok(summary)
    }
}

/// A run's counts. `LearnedNothing` is 1 for a run that asked WriftAI and got no answer
/// (its alarm's metric); `Errors` and `Unanswered` count the calls that failed.
fn run_metrics(summary: &Summary) -> Metrics {
    let mut metrics = Metrics::new("reconciler");
    metrics
        .count("Examined", summary.examined as u64)
        .count("Advanced", summary.advanced as u64)
        .count("Enqueued", summary.enqueued as u64)
        .count("Expired", summary.expired as u64)
        .count("MissedWebhooks", summary.missed_webhooks as u64)
        .count("Requeued", summary.requeued as u64)
        .count("DeadLettered", summary.dead_lettered as u64)
        .count("Errors", summary.errors as u64)
        .count("Unanswered", summary.unanswered as u64)
        .count("LearnedNothing", u64::from(summary.learned_nothing()));
    metrics
}

#[cfg(test)]
mod tests {
    use crate::adapters::memory::{MemoryLedger, MemoryQueue, MemoryWriftAi};
    use crate::config::ActOn;
    use crate::prediction::PredictionId;
    use serde_json::json;

    use super::*;

    type TestApp = App<MemoryLedger, MemoryQueue, MemoryWriftAi, MemoryQueue>;

    fn app() -> TestApp {
        App {
            ingest: Ingest::new(
                MemoryLedger::default(),
                MemoryQueue::default(),
                ActOn::terminal(),
                Duration::from_secs(3600),
            ),
            dead_letters: MemoryQueue::default(),
            source: MemoryWriftAi::default(),
            reconcile: ReconcileConfig {
                min_age: Duration::from_secs(60),
                overdue_after: Duration::from_secs(35 * 60),
                work_stale_after: Duration::from_secs(600),
                max_requeues: 3,
                concurrency: 4,
                page_size: 10,
                save_margin: Duration::from_millis(100),
            },
            safety_margin: Duration::from_secs(6),
        }
    }

    /// The scheduler's event, `seconds` before the invocation's deadline.
    fn invocation(seconds: u64) -> LambdaEvent<Value> {
        let mut context = lambda_runtime::Context::default();
        let now_ms = u64::try_from(crate::clock::now().unix_timestamp_nanos() / 1_000_000).unwrap();
        context.deadline = now_ms + seconds * 1000;
        LambdaEvent::new(json!({"source": "aws.scheduler"}), context)
    }

    #[tokio::test]
    async fn a_run_brings_a_prediction_webhooks_left_unfinished_to_its_end_and_keeps_its_summary() {
        let app = app();
        let id = PredictionId::random();
        let ten_minutes_ago = crate::clock::now() - Duration::from_secs(600);
        app.ingest.ledger().register(id, ten_minutes_ago).await.unwrap();
        app.source.set(&json!({"id": id.to_string(), "status": "succeeded", "output": "o"}).to_string());

        let summary = app.handle(invocation(60)).await.unwrap();
        assert_eq!((summary["examined"].as_u64(), summary["advanced"].as_u64()), (Some(1), Some(1)), "{summary}");
        assert_eq!(summary["enqueued"], 1);
        assert!(app.ingest.ledger().event(id, "succeeded").is_some(), "recorded through the receiver's path");
        assert_eq!(app.ingest.queue().messages().len(), 1, "its work enqueued");
        let kept = app.ingest.ledger().last_run().await.unwrap().expect("the run's summary is kept");
        assert_eq!(kept["summary"], summary);
    }

    #[tokio::test]
    async fn a_run_counts_the_finished_predictions_no_webhook_told_of_and_its_messages_carry_its_trace() {
        let app = app();
        let long_ago = crate::clock::now() - Duration::from_secs(600);
        let [silent, started, running] = [PredictionId::random(), PredictionId::random(), PredictionId::random()];
        for id in [silent, started, running] {
            app.ingest.ledger().register(id, long_ago).await.unwrap();
        }
        // `started`'s webhook came, its `failed` one never did; `running` is still going.
        let raw = json!({"id": started.to_string(), "status": "started"}).to_string();
        let prediction = crate::prediction::Prediction::from_json(raw.as_bytes()).unwrap();
        app.ingest.ingest(&prediction, &raw, long_ago).await.unwrap();
        app.source.set(&json!({"id": silent.to_string(), "status": "succeeded", "output": "o"}).to_string());
        app.source.set(&json!({"id": started.to_string(), "status": "failed"}).to_string());
        app.source.set(&json!({"id": running.to_string(), "status": "started"}).to_string());
        let mut event = invocation(60);
        let header = "Root=1-6b122b2b-7e84985b80e10a6d3445f0e7;Parent=fdf084341e6f2ccf;Sampled=1";
        event.context.xray_trace_id = Some(header.into());

        let summary = app.handle(event).await.unwrap();
        assert_eq!(
            (summary["examined"].as_u64(), summary["missed_webhooks"].as_u64()),
            (Some(3), Some(2)),
            "{summary}"
        );
        let counted = run_metrics(&serde_json::from_value(summary).unwrap()).document(0);
        assert_eq!(counted["MissedWebhooks"], json!(2));
        let traces: Vec<_> = app.ingest.queue().sent().into_iter().map(|(_, trace)| trace).collect();
        assert_eq!(traces, [TraceHeader::parse(header), TraceHeader::parse(header)], "both works join the run's trace");
        // A later run finds nothing missed: what it found is recorded now.
        let again = app.handle(invocation(60)).await.unwrap();
        assert_eq!((again["examined"].as_u64(), again["missed_webhooks"].as_u64()), (Some(1), Some(0)), "{again}");
    }

    #[tokio::test]
    async fn a_run_that_finds_nothing_is_idle_and_one_that_finds_anything_is_not() {
        let app = app();
        let idle: Summary = serde_json::from_value(app.handle(invocation(60)).await.unwrap()).unwrap();
        assert!(idle.idle(), "{idle:?}");
        let id = PredictionId::random();
        app.ingest.ledger().register(id, crate::clock::now() - Duration::from_secs(600)).await.unwrap();
        app.source.set(&json!({"id": id.to_string(), "status": "started"}).to_string());
        let busy: Summary = serde_json::from_value(app.handle(invocation(60)).await.unwrap()).unwrap();
        assert!(!busy.idle(), "{busy:?}");
    }

    #[test]
    fn a_summary_kept_before_missed_webhooks_were_counted_still_reads() {
        let old: Summary = serde_json::from_value(json!({"examined": 2, "advanced": 1, "enqueued": 1, "expired": 0,
            "requeued": 0, "dead_lettered": 0, "errors": 0, "unanswered": 0, "cut_short": false}))
        .unwrap();
        assert_eq!((old.examined, old.missed_webhooks), (2, 0));
    }

    #[tokio::test]
    async fn a_run_whose_every_get_is_refused_says_it_learned_nothing_and_counts_it() {
        let app = app();
        let ids = [PredictionId::random(), PredictionId::random()];
        for id in ids {
            app.ingest.ledger().register(id, crate::clock::now() - Duration::from_secs(600)).await.unwrap();
        }
        // The token was revoked: 401 on every GET.
        app.source.refuse(Some(401));
        let summary = app.handle(invocation(60)).await.unwrap();
        assert_eq!((summary["examined"].as_u64(), summary["unanswered"].as_u64()), (Some(0), Some(2)), "{summary}");
        let counted = run_metrics(&serde_json::from_value(summary).unwrap()).document(0);
        assert_eq!((&counted["LearnedNothing"], &counted["Unanswered"]), (&json!(1), &json!(2)));
        assert!(app.ingest.ledger().prediction(ids[0]).unwrap().open, "nothing closed on no answer");
        // Once WriftAI answers again, a run learns.
        app.source.refuse(None);
        app.source.set(&json!({"id": ids[0].to_string(), "status": "succeeded", "output": "o"}).to_string());
        let summary = app.handle(invocation(60)).await.unwrap();
        let counted = run_metrics(&serde_json::from_value(summary).unwrap()).document(0);
        assert_eq!(counted["LearnedNothing"], json!(0));
    }

    #[tokio::test]
    async fn a_run_with_no_time_past_its_margin_asks_nothing_and_still_keeps_its_summary() {
        let app = app();
        let id = PredictionId::random();
        app.ingest.ledger().register(id, crate::clock::now() - Duration::from_secs(600)).await.unwrap();
        app.source.set(&json!({"id": id.to_string(), "status": "succeeded"}).to_string());

        // 5 s left, less than the 6 s safety margin: no time to walk.
        let summary = app.handle(invocation(5)).await.unwrap();
        assert_eq!(app.source.asked(id), 0, "{summary}");
        assert!(app.ingest.queue().messages().is_empty());
        assert!(app.ingest.ledger().last_run().await.unwrap().is_some());
    }
}
