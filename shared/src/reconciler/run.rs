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

use crate::adapters::OPERATION_TIMEOUT;
use crate::config::{ConfigError, Env};
use crate::ingest::{Ingest, Ingested};
use crate::message::WorkMessage;
use crate::ports::{Ledger, OpenPrediction, PageAsk, PredictionSource, ReconcileStore, StaleWork, WorkQueue};
use crate::reconciler::walk::{Dated, Merged, Place};
use crate::shards::Index;
use crate::trace::TraceHeader;

/// 404s to this many predictions of a run, and no prediction found: not believed until
/// WriftAI's list of the account's newest predictions shows one of ours.
pub const NOT_FOUND_QUORUM: usize = 3;

/// How many of the account's newest predictions are looked through for one of ours.
const NEWEST: u32 = 20;

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
    /// Work recorded this long ago and still not done is enqueued again...
    pub work_stale_after: Duration,
    /// ... at most this often; past it, it goes to the dead-letter queue instead.
    pub max_requeues: u32,
    pub concurrency: usize,
    pub page_size: u32,
    /// Time kept back from a walk's deadline to save its place: one DynamoDB call
    /// (`OPERATION_TIMEOUT`), not a setting.
    pub save_margin: Duration,
}

impl ReconcileConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            min_age: Duration::from_secs(env.parsed("RECONCILE_MIN_AGE_SECS", 300)?),
            overdue_after: Duration::from_secs(env.parsed("RECONCILE_OVERDUE_SECS", 35 * 60)?),
            work_stale_after: Duration::from_secs(env.parsed("RECONCILE_WORK_STALE_SECS", 15 * 60)?),
            max_requeues: env.parsed("RECONCILE_MAX_REQUEUES", 10)?,
            concurrency: env.parsed("RECONCILE_CONCURRENCY", 8)?,
            page_size: env.parsed("RECONCILE_PAGE_SIZE", 50)?,
            save_margin: OPERATION_TIMEOUT,
        })
    }
}

/// One run, as logged on one line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Unfinished predictions asked about.
    pub examined: usize,
    /// ... whose answer moved them forward.
    pub advanced: usize,
    /// Work messages sent: for predictions advanced, and for stale work.
    pub enqueued: usize,
    /// Predictions given up on (`not_found`, `overdue`).
    pub expired: usize,
    /// Of those advanced, predictions found finished whose finished status no webhook
    /// had brought: the terminal event this run recorded was new. A run of a stack whose
    /// webhooks arrive finds none.
    #[serde(default)]
    pub missed_webhooks: usize,
    /// Unfinished work found and enqueued again.
    pub requeued: usize,
    /// Unfinished work requeued `max_requeues` times already: sent to the dead-letter
    /// queue instead, and out of the `work` index.
    pub dead_lettered: usize,
    /// Calls that failed or timed out: their items are tried again on the next pass.
    pub errors: usize,
    /// Of those, unfinished predictions WriftAI gave no answer about (it refused the
    /// token, failed, or was too slow).
    pub unanswered: usize,
    /// The run stopped before its deadline with work left; the next one resumes.
    pub cut_short: bool,
    /// Predictions WriftAI answered about, found (not 404).
    #[serde(skip)]
    found: usize,
    /// Predictions WriftAI answered 404 about: closed as `not_found` once the run is done,
    /// unless every answer of the run was a 404.
    #[serde(skip)]
    missing: Vec<OpenPrediction>,
}

enum Step {
    Examined {
        advanced: bool,
        enqueued: bool,
        expired: bool,
        /// Found finished, and that news was new: its terminal webhook never came.
        missed: bool,
    },
    Requeued,
    DeadLettered,
    /// The work was done meanwhile.
    Nothing,
    Failed,
    /// WriftAI gave no answer about an unfinished prediction.
    Unanswered,
    /// WriftAI does not know it (404).
    NotFound(OpenPrediction),
}

pub struct Reconciler<'a, L, Q, S, P, D = Q> {
    pub ingest: &'a Ingest<L, Q>,
    pub store: &'a S,
    pub source: &'a P,
    /// The work queue's dead-letter queue, for work requeued too often.
    pub dead_letters: &'a D,
    pub config: &'a ReconcileConfig,
}

impl<L: Ledger, Q: WorkQueue, S: ReconcileStore, P: PredictionSource, D: WorkQueue> Reconciler<'_, L, Q, S, P, D> {
    /// Walks both indexes from where the last run stopped, until `deadline`. The walk of
    /// unfinished predictions gets two thirds of the time and the walk of unfinished
    /// work the rest (or more, when the first ends early): the second needs only
    /// DynamoDB and SQS, and must not starve when WriftAI is slow. Every call ends by its
    /// walk's deadline; the place is saved after each wave.
    pub async fn run(&self, deadline: Instant) -> crate::Result<Summary> {
        self.store.learn_shards().await?;
        let mut summary = Summary::default();
        let now = crate::clock::now();
        let open_until = Instant::now() + deadline.saturating_duration_since(Instant::now()) * 2 / 3;
        let (open_before, work_before) = (now - self.config.min_age, now - self.config.work_stale_after);
        let open_page = |partition: String, from, after: Option<String>, limit| async move {
            let ask = PageAsk { partition: &partition, from, before: open_before, after: after.as_deref(), limit };
            self.store.open_predictions(ask).await
        };
        // An examination cut short by the walk's deadline got no answer from WriftAI.
        let examine = |item| self.examine(item, now);
        let open = (Index::Open, open_until);
        self.walk(open, &mut summary, open_page, examine, || Step::Unanswered).await?;
        self.close_missing(&mut summary, open_until, now).await;
        let work_page = |partition: String, from, after: Option<String>, limit| async move {
            let ask = PageAsk { partition: &partition, from, before: work_before, after: after.as_deref(), limit };
            self.store.stale_work(ask).await
        };
        let requeue = |item| self.requeue(item, now);
        self.walk((Index::Work, deadline), &mut summary, work_page, requeue, || Step::Failed).await?;
        Ok(summary)
    }

    /// One walk of `index` until `until`, oldest first across its partitions
    /// (`wriftai_hooks::walk`), a wave of `page_size` items at a time (`concurrency` of them at
    /// once), the place after it saved at once; each item cut short is counted as `cut`.
    /// Each item ends `save_margin` before `until` whatever its calls would take (one
    /// `GET` can take minutes with the client's retries): one that has not ended by then
    /// is left for the next pass, and the wave is still whole, so the walk moves on and a
    /// slow item never pins it.
    async fn walk<T, Pg, PgFut, It, ItFut>(
        &self,
        (index, until): (Index, Instant),
        summary: &mut Summary,
        page: Pg,
        item: It,
        cut: fn() -> Step,
    ) -> crate::Result<()>
    where
        T: Dated,
        Pg: Fn(String, Option<OffsetDateTime>, Option<String>, u32) -> PgFut,
        PgFut: Future<Output = crate::Result<crate::ports::Page<T>>>,
        It: Fn(T) -> ItFut,
        ItFut: Future<Output = Step>,
    {
        let name = index.name();
        let at_once = self.config.concurrency.max(1);
        let limit = self.config.page_size.max(1);
        let wave = limit as usize;
        // What the store holds: a place that did not move is not written again (a run
        // that finds nothing writes nothing to its key).
        let mut saved = self.store.cursor(name).await?;
        let place = Place::parse(saved.as_deref());
        let from = place.from;
        let mut merged = Merged::new(self.store.partitions(index), place);
        let read = |partition, after| page(partition, from, after, limit);
        let margin = self.config.save_margin;
        let items_until = until.checked_sub(margin).unwrap_or(until);
        // The slowest item so far: a wave is begun only if that much time is left for it.
        let slowest = std::sync::Mutex::new(Duration::ZERO);
        loop {
            let longest = *slowest.lock().unwrap_or_else(|p| p.into_inner());
            if Instant::now() + longest.max(margin) >= items_until {
                summary.cut_short = true;
                return Ok(());
            }
            let Ok(items) = timeout_at(until, merged.next(wave, &read)).await else {
                summary.cut_short = true;
                return Ok(());
            };
            let items = items?;
            let bounded = |one| {
                let (step, slowest) = (item(one), &slowest);
                async move {
                    let began = Instant::now();
                    let step = timeout_at(items_until, step).await.unwrap_or_else(|_| {
                        tracing::warn!("an item outlived its share of the run; it is tried again on the next pass");
                        cut()
                    });
                    let mut slowest = slowest.lock().unwrap_or_else(|p| p.into_inner());
                    *slowest = (*slowest).max(began.elapsed());
                    step
                }
            };
            let mut steps = stream::iter(items).map(bounded).buffer_unordered(at_once);
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
                // Cut mid-wave: the place stays before it, and the next run does it again
                // (a repeated examination is a GET and a duplicate record: harmless).
                summary.cut_short = true;
                return Ok(());
            }
            // A full pass: the next run starts again from the oldest.
            let place = merged.place();
            if place != saved {
                self.store.save_cursor(name, place.as_deref()).await?;
                saved.clone_from(&place);
            }
            if place.is_none() {
                return Ok(());
            }
        }
    }

    async fn examine(&self, open: OpenPrediction, now: OffsetDateTime) -> Step {
        let span = tracing::info_span!("examine", prediction_id = %open.id, trace_id = self.trace_id());
        self.examine_in(open, now).instrument(span).await
    }

    /// The run's X-Ray trace ID, which every line about a prediction carries, and the
    /// messages it sends too: the worker's lines for them join this run's trace.
    fn trace_id(&self) -> Option<&str> {
        self.ingest.trace().map(TraceHeader::root)
    }

    async fn examine_in(&self, open: OpenPrediction, now: OffsetDateTime) -> Step {
        let fetched = match self.source.get(open.id).await {
            Ok(Some(fetched)) => fetched,
            Ok(None) => return Step::NotFound(open),
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), "WriftAI did not answer");
                return Step::Unanswered;
            }
        };
        let status = fetched.prediction.status.clone();
        // Stamped with its own time, never the run's start: the walks order the events
        // it records by it, and many items sharing one time is what they cannot order
        // (issue 33, defect 7).
        let outcome = match self.ingest.ingest(&fetched.prediction, &fetched.raw, crate::clock::now()).await {
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
        let advanced = matches!(outcome, Ingested::Recorded { .. });
        // A repeat means the webhook came (and its work was only waiting); an out of
        // order one, that another finished status did.
        let missed = advanced && status.is_terminal();
        if missed {
            tracing::warn!(%status, "finished, and no webhook said so: found by the reconciler's GET");
        }
        Step::Examined { advanced, enqueued, expired: false, missed }
    }

    /// Closes as `not_found` the predictions WriftAI answered 404 about, unless it answered
    /// 404 to all of at least [`NOT_FOUND_QUORUM`] and found none, and its list of the
    /// account's newest predictions shows none of ours: a token of another account, or
    /// the wrong base URL, answers so, and closing then would give up on every unfinished
    /// prediction. They are counted as unanswered instead, so the run learned nothing (its
    /// alarm), and kept for the next run. A stack whose predictions all finish by webhook
    /// within `min_age` finds none in a run: the list is what tells its purged
    /// predictions from a wrong token (issue 33, defect 3).
    async fn close_missing(&self, summary: &mut Summary, until: Instant, now: OffsetDateTime) {
        let missing = std::mem::take(&mut summary.missing);
        if summary.found == 0 && missing.len() >= NOT_FOUND_QUORUM && !self.ours_listed(until).await {
            tracing::error!(
                answered_404 = missing.len(),
                "WriftAI answered 404 to every prediction of this run and found none: a token of another account \
                 or a wrong WRIFTAI_API_BASE_URL answers so; none is closed"
            );
            summary.examined -= missing.len();
            summary.unanswered += missing.len();
            summary.errors += missing.len();
            return;
        }
        for open in missing {
            let span = tracing::info_span!("close", prediction_id = %open.id, trace_id = self.trace_id());
            let closing = self.give_up(open, CLOSED_NOT_FOUND, now).instrument(span);
            let closed = timeout_at(until, closing).await.unwrap_or(Step::Failed);
            summary.add(closed);
            // Counted as examined when its answer came, and not found.
            summary.examined -= 1;
            summary.found = summary.found.saturating_sub(1);
        }
    }

    /// Whether WriftAI's list of the account's newest predictions holds one this table
    /// knows: the token is this stack's account's, and the base URL WriftAI's.
    async fn ours_listed(&self, until: Instant) -> bool {
        let look = async {
            let newest = match self.source.newest(NEWEST).await {
                Ok(newest) => newest,
                Err(err) => {
                    tracing::warn!(error = %crate::error::chain(&err), "WriftAI's list of predictions failed");
                    return false;
                }
            };
            for id in newest {
                if matches!(self.ingest.ledger().lookup(id).await, Ok(lookup) if lookup != crate::ports::Lookup::Unknown)
                {
                    return true;
                }
            }
            false
        };
        timeout_at(until, look).await.unwrap_or(false)
    }

    async fn give_up(&self, open: OpenPrediction, reason: &str, now: OffsetDateTime) -> Step {
        match self.store.close(open.id, reason, now).await {
            Ok(()) => {
                tracing::warn!(closed = reason, registered_at = %open.registered_at, "prediction given up on");
                Step::Examined { advanced: false, enqueued: false, expired: true, missed: false }
            }
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), "not closed");
                Step::Failed
            }
        }
    }

    async fn requeue(&self, work: StaleWork, now: OffsetDateTime) -> Step {
        let span =
            tracing::info_span!("requeue", prediction_id = %work.id, status = %work.status, trace_id = self.trace_id());
        self.requeue_in(work, now).instrument(span).await
    }

    async fn requeue_in(&self, work: StaleWork, now: OffsetDateTime) -> Step {
        let (id, status) = (work.id, &work.status);
        let sent = async {
            // Its own time, not the run's: work requeued by one run must not share one
            // `work_since`, which the next walk's place would have to list whole.
            let touched = crate::clock::now();
            let Some(requeues) = self.store.touch_work(id, status, touched).await? else { return Ok(Step::Nothing) };
            let payload = self.store.work_payload(id, status).await?;
            if requeues <= self.config.max_requeues {
                self.ingest.resend(id, status, payload.as_deref()).await?;
                tracing::info!(requeues, "unfinished work enqueued again");
                return Ok(Step::Requeued);
            }
            // Failing every time it runs: into the DLQ, where `hooks redrive` says why,
            // rather than around the queue forever.
            let body = WorkMessage::encode(id, status, payload.as_deref().unwrap_or("null"));
            self.dead_letters.send(body, self.ingest.trace()).await?;
            let reason = format!("requeued {} times without completing", self.config.max_requeues);
            self.store.give_up_work(id, status, &reason, now).await?;
            tracing::error!(requeues, "unfinished work sent to the dead-letter queue: {reason}");
            Ok::<_, crate::Error>(Step::DeadLettered)
        };
        sent.await.unwrap_or_else(|err| {
            tracing::warn!(error = %crate::error::chain(&err), "work not enqueued again");
            Step::Failed
        })
    }
}

impl Summary {
    /// The run asked WriftAI about unfinished predictions and got no answer for any: a
    /// revoked token (401 on every `GET`), or WriftAI down. Nothing can be learned, or
    /// closed, until that changes.
    pub fn learned_nothing(&self) -> bool {
        self.unanswered > 0 && self.examined == 0
    }

    /// Whether the run found nothing to ask about and nothing to send: the common case
    /// of a stack whose webhooks arrive.
    pub fn idle(&self) -> bool {
        let Self {
            examined,
            advanced,
            enqueued,
            expired,
            missed_webhooks,
            requeued,
            dead_lettered,
            errors,
            unanswered,
            cut_short,
            ..
        } = *self;
        [examined, advanced, enqueued, expired, missed_webhooks, requeued, dead_lettered, errors, unanswered] == [0; 9]
            && !cut_short
    }

    fn add(&mut self, step: Step) {
        match step {
            Step::Examined { advanced, enqueued, expired, missed } => {
                self.examined += 1;
                self.found += 1;
                self.advanced += usize::from(advanced);
                self.missed_webhooks += usize::from(missed);
                self.enqueued += usize::from(enqueued);
                self.expired += usize::from(expired);
            }
            Step::Requeued => {
                self.requeued += 1;
                self.enqueued += 1;
            }
            Step::DeadLettered => self.dead_lettered += 1,
            Step::Nothing => {}
            Step::Failed => self.errors += 1,
            Step::Unanswered => {
                self.errors += 1;
                self.unanswered += 1;
            }
            Step::NotFound(open) => {
                self.examined += 1;
                self.missing.push(open);
            }
        }
    }
}
