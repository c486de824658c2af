//! The ledger and the work queue: what the record-and-enqueue path needs.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::Result;
use crate::prediction::{PredictionId, Status};
use crate::trace::TraceHeader;

/// One delivery of one status of one prediction, as the ledger records it.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    pub id: PredictionId,
    pub status: &'a Status,
    /// WriftAI's `updated_at`, kept for operators; ordering uses the status, not clocks.
    pub updated_at: Option<&'a str>,
    pub received_at: OffsetDateTime,
    /// When the event record may be deleted (DynamoDB TTL). An event that needs work
    /// is kept until its work is done, and for as long again from then: a work bug that
    /// outlives the TTL must not let DynamoDB delete what a redrive still needs.
    pub expires_at: OffsetDateTime,
    /// The worker acts on this status: if the event moves the prediction forward it is
    /// recorded as awaiting its enqueue, so a repeat can finish a cut-short attempt.
    pub needs_work: bool,
    /// The raw payload, kept with an event that needs work when it is small
    /// ([`EVENT_BODY_BYTES`](crate::records::EVENT_BODY_BYTES)); a larger one travels in
    /// the message and is kept by the first run of the work that ends (with the event if
    /// it failed, apart if it completed), so a replay or a resend after that does not
    /// depend on WriftAI still having the prediction.
    pub payload: Option<&'a str>,
    /// The prediction's model, `owner/name`, kept with an event that needs work so
    /// `hooks replay --model` can select by it (none when the body named none, or one
    /// longer than [`MODEL_KEPT_BYTES`]).
    pub model: Option<&'a str>,
}

/// The longest model name kept with an event: WriftAI's are a few dozen bytes, and a
/// body's fields are whatever its sender wrote.
pub const MODEL_KEPT_BYTES: usize = 256;

/// The longest `updated_at` kept: an RFC 3339 time is about 30 bytes. A longer one is not
/// kept, so no field of a body grows the items it is kept in (an event that keeps its
/// body, up to 350,000 bytes, after a failed run, stays under DynamoDB's 400 KB).
pub const UPDATED_AT_KEPT_BYTES: usize = 64;

/// What recording an event found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// First delivery of this status. `advanced` when it moved the prediction forward;
    /// otherwise a later status was already recorded: an event the worker acts on is
    /// kept as seen, one it does not act on leaves nothing (it is told apart from a
    /// repeat only while it is not the prediction's status).
    New { advanced: bool },
    /// This status was recorded before; nothing was written now. `undone` when the
    /// worker acts on it and no run has claimed its work yet (nor is it done, sealed by
    /// `hooks forget`, or dead-lettered by the reconciler): a repeat sends it again, since
    /// no write says whether the first send happened.
    Duplicate { undone: bool },
    /// No prediction of ours has this ID; nothing was written.
    UnknownPrediction,
}

/// What the ledger knows of a prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Not a prediction of ours.
    Unknown,
    /// Ours, and no status past `pending` recorded yet: as registered.
    Registered,
    /// Ours, a status past `pending` recorded, and no terminal one yet.
    Open,
    /// Ours, and a terminal status is recorded.
    Finished,
}

/// What asking for a check of an unsigned delivery's prediction found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckAsk {
    /// Not a prediction of ours.
    Unknown,
    /// A terminal status is recorded: nothing more to learn.
    Finished,
    /// Asked for now: send the check.
    Asked,
    /// A check asked for earlier has not begun yet: it answers this delivery too.
    Pending,
    /// A check began moments ago: no other is asked for before `until` (the sender is
    /// told to deliver again then), so a flood of deliveries for one prediction drives
    /// one check a gap, not one per queue round trip.
    TooSoon { until: OffsetDateTime },
}

/// The table of our predictions and the events received for them.
pub trait Ledger: Send + Sync {
    /// Adds a prediction we created. Returns false when it was already there.
    fn register(&self, id: PredictionId, at: OffsetDateTime) -> impl Future<Output = Result<bool>> + Send;

    /// Records an event atomically: nothing at all for an unknown prediction; nothing
    /// new for a repeat; otherwise the prediction's status moved forward when the
    /// event's status ranks above it (never backwards), and, for an event the worker acts
    /// on or an unknown status, the event itself. A status the worker does not act on
    /// is one conditional write of the prediction, which keeps when it came.
    fn record(&self, event: &NewEvent<'_>) -> impl Future<Output = Result<Recorded>> + Send;

    /// Whether `id` is ours, and finished: one consistent read.
    fn lookup(&self, id: PredictionId) -> impl Future<Output = Result<Lookup>> + Send;

    /// Whether `hooks forget` erased `id` (and its mark has not expired yet): asked only
    /// of an ID the table does not hold, so what comes for it later is dropped on
    /// purpose, neither recorded nor retried. One read.
    fn forgotten(&self, id: PredictionId) -> impl Future<Output = Result<bool>> + Send;

    /// Asks for a check of prediction `id` unless one asked for and sent before `now` has
    /// not begun (and is younger than `window`, after which it is taken as lost). An ask
    /// whose send was never confirmed is asked again: its asker may have died before the
    /// send. One read, and a conditional write when a check is asked for.
    fn ask_check(
        &self,
        id: PredictionId,
        now: OffsetDateTime,
        window: Duration,
    ) -> impl Future<Output = Result<CheckAsk>> + Send;

    /// The check asked for was sent: deliveries until it begins are answered by it.
    fn check_sent(&self, id: PredictionId) -> impl Future<Output = Result<()>> + Send;

    /// A check of `id` begins (`next` is when another may be asked for: a delivery from
    /// then on asks for one, since this one may ask WriftAI before that delivery's news
    /// reached it), or, with `next` `None`, an ask whose check was never sent is undone.
    fn check_begun(&self, id: PredictionId, next: Option<OffsetDateTime>) -> impl Future<Output = Result<()>> + Send;
}

/// The queue the worker reads.
pub trait WorkQueue: Send + Sync {
    /// Sends one message. `trace`, the sender's X-Ray trace, rides with it (SQS's
    /// `AWSTraceHeader`), so the worker's span for it joins the sender's trace.
    fn send(&self, body: String, trace: Option<&TraceHeader>) -> impl Future<Output = Result<()>> + Send;
}

impl<T: Ledger + ?Sized> Ledger for &T {
    fn register(&self, id: PredictionId, at: OffsetDateTime) -> impl Future<Output = Result<bool>> + Send {
        (**self).register(id, at)
    }

    fn record(&self, event: &NewEvent<'_>) -> impl Future<Output = Result<Recorded>> + Send {
        (**self).record(event)
    }

    fn lookup(&self, id: PredictionId) -> impl Future<Output = Result<Lookup>> + Send {
        (**self).lookup(id)
    }

    fn forgotten(&self, id: PredictionId) -> impl Future<Output = Result<bool>> + Send {
        (**self).forgotten(id)
    }

    fn ask_check(
        &self,
        id: PredictionId,
        now: OffsetDateTime,
        window: Duration,
    ) -> impl Future<Output = Result<CheckAsk>> + Send {
        (**self).ask_check(id, now, window)
    }

    fn check_sent(&self, id: PredictionId) -> impl Future<Output = Result<()>> + Send {
        (**self).check_sent(id)
    }

    fn check_begun(&self, id: PredictionId, next: Option<OffsetDateTime>) -> impl Future<Output = Result<()>> + Send {
        (**self).check_begun(id, next)
    }
}

impl<T: WorkQueue + ?Sized> WorkQueue for &T {
    fn send(&self, body: String, trace: Option<&TraceHeader>) -> impl Future<Output = Result<()>> + Send {
        (**self).send(body, trace)
    }
}
