//! The reconciler: nothing depends on a webhook arriving. It asks WriftAI about every
//! prediction still unfinished after a while and feeds the answer through the same
//! record-and-enqueue path as the receiver; it re-enqueues work that was recorded but
//! never finished; and it gives up, for good and on the record, on predictions WriftAI
//! no longer knows or that ran past WriftAI's own time limit.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::{Instant, timeout_at};
use tracing::Instrument;

use crate::config::{ConfigError, Env};
use crate::ingest::{Ingest, Ingested};
use crate::ports::{Ledger, OpenPrediction, PredictionSource, ReconcileStore, StaleWork, WorkQueue};

/// Why a prediction was taken out of the unfinished set (the `closed` attribute).
pub const CLOSED_NOT_FOUND: &str = "not_found";
pub const CLOSED_OVERDUE: &str = "overdue";

#[derive(Clone, Debug)]
pub struct ReconcileConfig {
    /// Predictions younger than this are left to their webhooks.
    pub min_age: Duration,
    /// WriftAI fails a prediction after 30 minutes; one still unfinished past this is
    /// given up on.
    pub overdue_after: Duration,
    /// Work recorded this long ago and still not done is enqueued again.
    pub work_stale_after: Duration,
    pub concurrency: usize,
    pub page_size: u32,
}

impl ReconcileConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            min_age: Duration::from_secs(env.parsed("RECONCILE_MIN_AGE_SECS", 300)?),
            overdue_after: Duration::from_secs(env.parsed("RECONCILE_OVERDUE_SECS", 35 * 60)?),
            work_stale_after: Duration::from_secs(env.parsed("RECONCILE_WORK_STALE_SECS", 15 * 60)?),
            concurrency: env.parsed("RECONCILE_CONCURRENCY", 8)?,
            page_size: env.parsed("RECONCILE_PAGE_SIZE", 50)?,
        })
    }
}

/// One run, as logged on one line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Unfinished predictions asked about.
    pub examined: usize,
    /// ... whose answer moved them forward.
    pub advanced: usize,
    /// Work messages sent: for predictions advanced, and for stale work.
    pub enqueued: usize,
    /// Predictions given up on (`not_found`, `overdue`).
    pub expired: usize,
    /// Unfinished work found and enqueued again.
    pub requeued: usize,
    pub errors: usize,
    /// The run stopped before its deadline with work left; the next one resumes.
    pub cut_short: bool,
}

enum Step {
    Examined { advanced: bool, enqueued: bool, expired: bool },
    Requeued,
    Failed,
}

pub struct Reconciler<'a, L, Q, S, P> {
    pub ingest: &'a Ingest<L, Q>,
    pub store: &'a S,
    pub source: &'a P,
    pub config: &'a ReconcileConfig,
}

impl<L: Ledger, Q: WorkQueue, S: ReconcileStore, P: PredictionSource> Reconciler<'_, L, Q, S, P> {
    /// Walks both indexes from where the last run stopped, until `deadline`. The walk of
    /// unfinished predictions gets two thirds of the time and the walk of unfinished
    /// work the rest (or more, when the first ends early): the second needs only
    /// DynamoDB and SQS, and must not starve when WriftAI is slow. Every call ends by its
    /// walk's deadline; the place is saved after each page.
    pub async fn run(&self, deadline: Instant) -> crate::Result<Summary> {
        let mut summary = Summary::default();
        let now = OffsetDateTime::now_utc();
        let open_until = Instant::now() + deadline.saturating_duration_since(Instant::now()) * 2 / 3;
        let (open_before, work_before) = (now - self.config.min_age, now - self.config.work_stale_after);
        let open_page = |after: Option<String>, limit| async move {
            self.store.open_predictions(open_before, after.as_deref(), limit).await
        };
        self.walk("open", &mut summary, open_until, open_page, |item| self.examine(item, now)).await?;
        let work_page = |after: Option<String>, limit| async move {
            self.store.stale_work(work_before, after.as_deref(), limit).await
        };
        self.walk("work", &mut summary, deadline, work_page, |item| self.requeue(item, now)).await?;
        Ok(summary)
    }

    /// One walk, a page at a time until `until`. A page is one wave of concurrent calls
    /// (at most `concurrency` items), and the place after it is saved at once: a run cut
    /// short loses at most one wave, which the next run does again.
    async fn walk<T, Pg, PgFut, It, ItFut>(
        &self,
        name: &str,
        summary: &mut Summary,
        until: Instant,
        page: Pg,
        item: It,
    ) -> crate::Result<()>
    where
        Pg: Fn(Option<String>, u32) -> PgFut,
        PgFut: Future<Output = crate::Result<crate::ports::Page<T>>>,
        It: Fn(T) -> ItFut,
        ItFut: Future<Output = Step>,
    {
        let wave = self.config.concurrency.max(1);
        let limit = self.config.page_size.min(u32::try_from(wave).unwrap_or(u32::MAX)).max(1);
        let mut cursor = self.store.cursor(name).await?;
        loop {
            let Ok(page) = timeout_at(until, page(cursor.clone(), limit)).await else {
                summary.cut_short = true;
                return Ok(());
            };
            let page = page?;
            let mut steps = stream::iter(page.items).map(&item).buffer_unordered(wave);
            let mut whole = true;
            loop {
                match timeout_at(until, steps.next()).await {
                    Ok(Some(step)) => summary.add(step),
                    Ok(None) => break,
                    Err(_) => {
                        whole = false;
                        break;
                    }
                }
            }
            if !whole {
                // Cut mid-page: the place stays before it, and the next run does it again
                // (a repeated examination is a GET and a duplicate record: harmless).
                summary.cut_short = true;
                return Ok(());
            }
            // A full pass (`None`): the next run starts again from the oldest.
            cursor = page.next;
            self.store.save_cursor(name, cursor.as_deref()).await?;
            if cursor.is_none() {
                return Ok(());
            }
        }
    }

    async fn examine(&self, open: OpenPrediction, now: OffsetDateTime) -> Step {
        let span = tracing::info_span!("examine", prediction_id = %open.id);
        self.examine_in(open, now).instrument(span).await
    }

    async fn examine_in(&self, open: OpenPrediction, now: OffsetDateTime) -> Step {
        let fetched = match self.source.get(open.id).await {
            Ok(Some(fetched)) => fetched,
            Ok(None) => return self.give_up(open, CLOSED_NOT_FOUND, now).await,
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), "WriftAI did not answer");
                return Step::Failed;
            }
        };
        let status = fetched.prediction.status.clone();
        let outcome = match self.ingest.ingest(&fetched.prediction, &fetched.raw, now).await {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), %status, "not recorded");
                return Step::Failed;
            }
        };
        tracing::info!(%status, outcome = outcome.as_str(), "examined");
        if !status.is_terminal() && now - open.registered_at > self.config.overdue_after {
            return self.give_up(open, CLOSED_OVERDUE, now).await;
        }
        let enqueued =
            matches!(outcome, Ingested::Recorded { enqueued: true } | Ingested::Duplicate { enqueued: true });
        Step::Examined { advanced: matches!(outcome, Ingested::Recorded { .. }), enqueued, expired: false }
    }

    async fn give_up(&self, open: OpenPrediction, reason: &str, now: OffsetDateTime) -> Step {
        match self.store.close(open.id, reason, now).await {
            Ok(()) => {
                tracing::warn!(closed = reason, registered_at = %open.registered_at, "prediction given up on");
                Step::Examined { advanced: false, enqueued: false, expired: true }
            }
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), "not closed");
                Step::Failed
            }
        }
    }

    async fn requeue(&self, work: StaleWork, now: OffsetDateTime) -> Step {
        let span = tracing::info_span!("requeue", prediction_id = %work.id, status = %work.status);
        self.requeue_in(work, now).instrument(span).await
    }

    async fn requeue_in(&self, work: StaleWork, now: OffsetDateTime) -> Step {
        let sent = async {
            let payload = self.store.work_payload(work.id, &work.status).await?;
            self.ingest.resend(work.id, &work.status, payload.as_deref()).await?;
            self.store.touch_work(work.id, &work.status, now).await
        };
        match sent.await {
            Ok(()) => {
                tracing::info!("unfinished work enqueued again");
                Step::Requeued
            }
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), "work not enqueued again");
                Step::Failed
            }
        }
    }
}

impl Summary {
    fn add(&mut self, step: Step) {
        match step {
            Step::Examined { advanced, enqueued, expired } => {
                self.examined += 1;
                self.advanced += usize::from(advanced);
                self.enqueued += usize::from(enqueued);
                self.expired += usize::from(expired);
            }
            Step::Requeued => {
                self.requeued += 1;
                self.enqueued += 1;
            }
            Step::Failed => self.errors += 1,
        }
    }
}
