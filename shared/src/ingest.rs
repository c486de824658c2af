//! Record, then enqueue: the one path every prediction update takes, whether a webhook
//! brought it (receiver) or a `GET` did (reconciler).
//!
//! Round trips to AWS per case (docs/design.md explains why a new event that needs work
//! costs two, and what a repeat of it costs):
//! - a repeat of done work or of an event the worker ignores, a new event it ignores: 1
//!   (for `pending`, when ignored, a read: registration already says it);
//! - unknown prediction: 2 (the failed write, or for an ignored `pending` the read, then
//!   whether `hooks forget` erased it);
//! - out-of-order event: 1 for a status the worker ignores (nothing is kept), 2 for one
//!   it acts on (the failed advance, then the event alone, kept as seen);
//! - new event that needs work, or a repeat of one whose work no run has claimed yet:
//!   record, send (a copy sent again is absorbed by the worker's claim).

use std::time::Duration;

use time::OffsetDateTime;

use crate::config::ActOn;
use crate::error::Result;
use crate::message::{Message, WorkMessage};
use crate::ports::{
    CheckAsk, Ledger, Lookup, MODEL_KEPT_BYTES, NewEvent, PredictionSource, Recorded, UPDATED_AT_KEPT_BYTES, WorkQueue,
};
use crate::prediction::{Prediction, PredictionId, Status};
use crate::records;
use crate::trace::TraceHeader;

/// How long a check asked for answers the deliveries that follow it, unless it begins
/// sooner: past it the check is taken as lost, and a delivery asks for another.
pub const CHECK_WINDOW: Duration = Duration::from_secs(60);

/// The least time between two checks of one prediction, from when the first began: a
/// delivery inside it is answered 429 with a `Retry-After` to its end, so a flood of
/// unsigned deliveries costs a check a gap, and genuine news is delivered again after
/// it (issue 33, defect 6).
pub const CHECK_GAP: Duration = Duration::from_secs(10);

/// What happened to one update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// First delivery of this status, and it moved the prediction forward.
    Recorded { enqueued: bool },
    /// A later status was recorded before: the prediction stays where it is, nothing
    /// is enqueued. A status the worker acts on (or an unknown one) is kept as seen the
    /// first time; any other leaves nothing, and its repeats are answered so too.
    OutOfOrder,
    /// Seen before. `enqueued` when no run has claimed its work yet and it is sent
    /// again: an earlier attempt may have stopped short of the send.
    Duplicate { enqueued: bool },
    /// Ours, and it says no more than the registration: a `pending` the worker does not
    /// act on, before any later status. Read, nothing written, nothing enqueued.
    Known,
    /// Not a prediction of ours: nothing written, nothing enqueued.
    UnknownPrediction,
    /// A prediction `hooks forget` erased: nothing written, nothing enqueued, and the
    /// sender told it is done (a 2xx), so nothing brings the data back.
    Forgotten,
    /// An unsigned delivery: nothing it says is recorded. When the prediction is not
    /// finished, a check is enqueued: the worker asks WriftAI and records its answer.
    Triggered { enqueued: bool },
    /// An unsigned delivery inside [`CHECK_GAP`] of the last check: deliver it again at
    /// `until`.
    TooSoon { until: OffsetDateTime },
}

impl Ingested {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Recorded { .. } => "recorded",
            Self::OutOfOrder => "out_of_order",
            Self::Duplicate { .. } => "duplicate",
            Self::Known => "known",
            Self::UnknownPrediction => "unknown_prediction",
            Self::Forgotten => "forgotten",
            Self::Triggered { .. } => "check",
            Self::TooSoon { .. } => "check_too_soon",
        }
    }
}

/// Why a check could not be made: WriftAI did not answer, or the table or queue failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Api(#[from] crate::wriftai::ApiError),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

#[derive(Clone)]
pub struct Ingest<L, Q> {
    ledger: L,
    queue: Q,
    act_on: ActOn,
    event_ttl: Duration,
    /// The trace every message sent from here carries: none on the path built at cold
    /// start, the invocation's on the view [`traced`](Self::traced) makes of it.
    trace: Option<TraceHeader>,
}

impl<L: Ledger, Q: WorkQueue> Ingest<L, Q> {
    pub fn new(ledger: L, queue: Q, act_on: ActOn, event_ttl: Duration) -> Self {
        Self { ledger, queue, act_on, event_ttl, trace: None }
    }

    /// This path for one invocation (or one message) whose X-Ray trace is `trace`: the
    /// messages it sends carry it, so the worker's span joins the trace that caused it.
    /// Per call, not per cold start: Lambda gives every invocation its own trace.
    pub fn traced(&self, trace: Option<&TraceHeader>) -> Ingest<&L, &Q> {
        Ingest {
            ledger: &self.ledger,
            queue: &self.queue,
            act_on: self.act_on.clone(),
            event_ttl: self.event_ttl,
            trace: trace.cloned(),
        }
    }

    /// Whether the worker acts on `status` (`ACT_ON_STATUSES`).
    pub fn acts_on(&self, status: &Status) -> bool {
        self.act_on.includes(status)
    }

    /// The trace the messages sent from here carry.
    pub fn trace(&self) -> Option<&TraceHeader> {
        self.trace.as_ref()
    }

    pub fn ledger(&self) -> &L {
        &self.ledger
    }

    pub fn queue(&self) -> &Q {
        &self.queue
    }

    /// The same, on the ledger `wrap` makes of this one (the test worker counts writes).
    pub fn map_ledger<M: Ledger>(self, wrap: impl FnOnce(L) -> M) -> Ingest<M, Q> {
        Ingest {
            ledger: wrap(self.ledger),
            queue: self.queue,
            act_on: self.act_on,
            event_ttl: self.event_ttl,
            trace: self.trace,
        }
    }

    /// Records `prediction` (whose exact JSON text is `raw`) and enqueues its work when
    /// the worker acts on its status. An error means nothing is known to be done and
    /// the caller should have the update delivered again; a repeat then finishes the
    /// job exactly once.
    pub async fn ingest(&self, prediction: &Prediction, raw: &str, now: OffsetDateTime) -> Result<Ingested> {
        let needs_work = self.act_on.includes(&prediction.status);
        if prediction.status == Status::Pending && !needs_work {
            return self.pending(prediction.id).await;
        }
        let model = prediction.model.as_ref().map(|m| format!("{}/{}", m.owner, m.name));
        let model = model.as_deref().filter(|m| needs_work && m.len() <= MODEL_KEPT_BYTES);
        let updated_at = prediction.updated_at.as_deref().filter(|at| at.len() <= UPDATED_AT_KEPT_BYTES);
        let event = NewEvent {
            id: prediction.id,
            status: &prediction.status,
            updated_at,
            received_at: now,
            expires_at: now + self.event_ttl,
            needs_work,
            payload: (needs_work && records::event_keeps_body(raw, model, updated_at)).then_some(raw),
            model,
        };
        Ok(match self.ledger.record(&event).await? {
            Recorded::UnknownPrediction => self.unknown(prediction.id).await,
            Recorded::New { advanced: false } => Ingested::OutOfOrder,
            Recorded::New { advanced: true } => {
                if needs_work {
                    self.enqueue(prediction, raw).await?;
                }
                Ingested::Recorded { enqueued: needs_work }
            }
            Recorded::Duplicate { undone: true } => {
                self.enqueue(prediction, raw).await?;
                Ingested::Duplicate { enqueued: true }
            }
            Recorded::Duplicate { undone: false } => Ingested::Duplicate { enqueued: false },
        })
    }

    /// Takes an unsigned delivery for `id` as a trigger only: whoever knows a
    /// prediction's ID can post any status and output for it, so none of it is recorded
    /// or acted on. The worker checks with WriftAI instead ([`refresh`](Self::refresh)),
    /// and the status and payload it acts on are WriftAI's. Checks are coalesced: while
    /// one asked for has not begun, further deliveries are answered by it, so a flood of
    /// them costs one `GET` (and reads), not one each. One read, and a write and a send
    /// when a check is asked for.
    pub async fn trigger(&self, id: PredictionId, now: OffsetDateTime) -> Result<Ingested> {
        Ok(match self.ledger.ask_check(id, now, CHECK_WINDOW).await? {
            CheckAsk::Unknown => self.unknown(id).await,
            CheckAsk::Finished | CheckAsk::Pending => Ingested::Triggered { enqueued: false },
            CheckAsk::TooSoon { until } => Ingested::TooSoon { until },
            CheckAsk::Asked => {
                if let Err(err) = self.queue.send(Message::check(id), self.trace()).await {
                    // No check is on its way: the next delivery must ask again.
                    if let Err(undo) = self.ledger.check_begun(id, None).await {
                        tracing::warn!(error = %crate::error::chain(&undo), "a check's ask not undone; it lapses by itself");
                    }
                    return Err(err);
                }
                // Unconfirmed, the next delivery only sends another check.
                if let Err(err) = self.ledger.check_sent(id).await {
                    tracing::warn!(error = %crate::error::chain(&err), "check sent but not confirmed in the ledger");
                }
                Ingested::Triggered { enqueued: true }
            }
        })
    }

    /// Asks `source` (WriftAI) for prediction `id` and records what it says, through
    /// the same path as a webhook: the check a trigger asked for. `None` when WriftAI
    /// does not know it (the reconciler closes it later). Deliveries from now on ask for
    /// a check of their own: WriftAI's answer may predate them.
    pub async fn refresh<S: PredictionSource>(
        &self,
        source: &S,
        id: PredictionId,
        now: OffsetDateTime,
    ) -> Result<Option<Ingested>, RefreshError> {
        self.ledger.check_begun(id, Some(crate::clock::now() + CHECK_GAP)).await?;
        let Some(fetched) = source.get(id).await? else { return Ok(None) };
        Ok(Some(self.ingest(&fetched.prediction, &fetched.raw, now).await?))
    }

    /// A `pending` the worker does not act on: checked against our records with one
    /// read, and nothing written. Registration is where every prediction starts, and
    /// `pending` ranks below every other status, so it can move nothing: a conditional
    /// write of it (and its repeats' failed ones) cost a write unit each to say what the
    /// registration says (issue 34). A read is a fifth of that.
    async fn pending(&self, id: PredictionId) -> Result<Ingested> {
        Ok(match self.ledger.lookup(id).await? {
            Lookup::Unknown => self.unknown(id).await,
            Lookup::Registered => Ingested::Known,
            Lookup::Open | Lookup::Finished => Ingested::OutOfOrder,
        })
    }

    /// A prediction the table does not hold: never ours, or forgotten. The extra read
    /// is made on this path only, which a genuine delivery takes only when it beats the
    /// prediction's own record.
    async fn unknown(&self, id: PredictionId) -> Ingested {
        match self.ledger.forgotten(id).await {
            Ok(true) => Ingested::Forgotten,
            Ok(false) => Ingested::UnknownPrediction,
            // Unknown it stays: a 429, retried, keeps forged IDs out of the 5xx alarm.
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), "whether the prediction was forgotten is not known");
                Ingested::UnknownPrediction
            }
        }
    }

    /// Enqueues an event's work again (the reconciler's recovery), from its stored
    /// payload, or by reference when none was kept.
    pub async fn resend(&self, id: PredictionId, status: &Status, payload: Option<&str>) -> Result<()> {
        self.send(id, status, payload.unwrap_or("null")).await
    }

    async fn enqueue(&self, prediction: &Prediction, raw: &str) -> Result<()> {
        self.send(prediction.id, &prediction.status, raw).await
    }

    async fn send(&self, id: PredictionId, status: &Status, raw: &str) -> Result<()> {
        self.queue.send(WorkMessage::encode(id, status, raw), self.trace()).await
    }
}
