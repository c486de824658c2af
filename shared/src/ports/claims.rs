//! Claims on a unit of work: what runs the work once.

use std::future::Future;

use serde_json::Value;
use time::OffsetDateTime;

use crate::error::Result;
use crate::prediction::{PredictionId, Status};

/// The most of a failed run's error kept with its event.
pub const ERROR_KEPT_BYTES: usize = 1024;

/// `error` cut to at most [`ERROR_KEPT_BYTES`], on a character boundary.
pub fn kept_error(error: &str) -> &str {
    let mut end = error.len().min(ERROR_KEPT_BYTES);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

/// What claiming one (prediction, status) unit of work found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours until `until`. `attempt` counts claims of this unit, 1 for the first;
    /// `rerun` when a replay (`reopen`) asked for it, done before or not: its prediction's
    /// age says nothing of the trip, and `EndToEnd` leaves it out. `keep_body`: the event
    /// holds no body of its own (it was larger than
    /// [`EVENT_BODY_BYTES`](crate::records::EVENT_BODY_BYTES)), so the run keeps the body
    /// it works on: once done, apart ([`Claims::keep_body`]) for this long past the
    /// completion, as long as the event; failed, with the event ([`Claims::release`]).
    Acquired { token: String, attempt: u32, rerun: bool, keep_body: Option<time::Duration> },
    /// Already run to completion: nothing to do.
    Done,
    /// Another run holds a live claim: try again later, never in parallel.
    Busy,
    /// No event record for it: the message did not come from our receiver.
    Missing,
    /// Its prediction was forgotten (`hooks forget` sealed the event): nothing of it
    /// runs, ever, whatever fence or claim expires.
    Forgotten,
}

/// What reopening a unit of work found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reopened {
    /// It will run again on its next message; `payload` is the prediction kept for it
    /// (with the event, or by a run of it), if any, and `was_done` whether it had run to
    /// completion.
    Reopened { payload: Option<String>, was_done: bool },
    /// A run holds a live claim on it now.
    Running,
    /// The event needs no work (its status is not acted on).
    NoWork,
    /// The bulk replay reopened it already: a run of the same replay again after an
    /// interruption sends each event once.
    AlreadyReplayed,
    /// Its work left the state the bulk replay selected it in (a failed run of it
    /// succeeded meanwhile, say): left as it is.
    NotSelected,
    /// No such event.
    Missing,
}

/// Where an event's work stands, as a bulk replay selects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkState {
    /// Run to completion (`work = done`).
    Done,
    /// The reconciler gave up on it and sent it to the dead-letter queue (`gave_up`).
    DeadLettered,
    /// Not done, and its last run failed (`failed_at`).
    Failed,
    /// Not done, and no run of it has failed: queued or running.
    Waiting,
}

impl WorkState {
    /// The state of work `done` or not, given up on or not, whose last run failed or not.
    pub fn of(done: bool, gave_up: bool, failed: bool) -> Self {
        match (done, gave_up, failed) {
            (true, _, _) => Self::Done,
            (false, true, _) => Self::DeadLettered,
            (false, false, true) => Self::Failed,
            (false, false, false) => Self::Waiting,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::DeadLettered => "dead-lettered",
            Self::Failed => "failed",
            Self::Waiting => "waiting",
        }
    }
}

/// A bulk replay's reopen: the run's name, stamped on the event in the same write (an
/// event that carries it already is left), and the state its work must still be in.
#[derive(Clone, Copy, Debug)]
pub struct Rerun<'a> {
    pub run: &'a str,
    pub only: Option<WorkState>,
}

/// Claims in the style of the Powertools idempotency utility: a conditional
/// "in progress" that expires with the run's deadline (so a run that timed out frees
/// it), then "done" with the result, or released when the run failed.
pub trait Claims: Send + Sync {
    fn claim(
        &self,
        id: PredictionId,
        status: &Status,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Claim>> + Send;

    /// Marks the unit done with its result (JSON, cut to `records::RESULT_BYTES`), and
    /// gives its finished `steps` (their names) the event's own expiry: a step lives as
    /// long as the event it belongs to, so no replay the event allows finds its steps
    /// gone, and no step of work not yet done expires. A step left unstamped (the second
    /// write failed) is kept, never lost. False when the claim had expired and was taken
    /// by another run meanwhile.
    fn complete(
        &self,
        id: PredictionId,
        status: &Status,
        token: &str,
        result: &Value,
        steps: &[String],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Keeps the body a run worked on apart from its event, until `expires_at` (the
    /// event's own expiry: the completion's time and the event's `keep_body`), for a
    /// replay and the reconciler's resend, which find it there when the event holds none
    /// (`reopen`'s payload, `ReconcileStore::work_payload`). Called by the run that
    /// completes the work, beside its completion: one write of the body a completion,
    /// not one with each write of the event. The caller gives only a body that fits an
    /// item ([`records::body_fits_item`](crate::records::body_fits_item)).
    fn keep_body(
        &self,
        id: PredictionId,
        status: &Status,
        body: &str,
        expires_at: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Gives the claim up after a failed run, so a retry need not wait for it to expire,
    /// and keeps why it failed (`error`, cut to [`ERROR_KEPT_BYTES`]) with the event for
    /// the operator (`hooks inspect`, `hooks redrive`). `body`, the body the run worked
    /// on when the event holds none (one that fits an item,
    /// [`records::body_fits_item`](crate::records::body_fits_item)), is kept with the event
    /// in the same write: work left undone keeps its body as long as it waits, however
    /// long, as the event does.
    fn release(
        &self,
        id: PredictionId,
        status: &Status,
        token: &str,
        error: &str,
        body: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Makes a unit of work claimable again, even when it was done (`hooks replay`): the
    /// next message for it runs it once more. Done work stays done, with its result,
    /// until the new run stores a new one; a new run that fails leaves it so. The event
    /// goes back into the `work` index (so the reconciler sends it again if that message
    /// is lost), its requeues start again from none (work the reconciler gave up on is
    /// worked again, not sent straight back to the DLQ), and it stops expiring until the
    /// run completes. The steps named in `forget` are removed in the same write, so no
    /// run can claim it in between and find their old outcomes. Refused, changing
    /// nothing, while a run holds a live claim, judged on the table's clock. A bulk
    /// replay's reopen ([`Rerun`]) also leaves an event it reopened before, or whose work
    /// left the state it was selected in.
    fn reopen(
        &self,
        id: PredictionId,
        status: &Status,
        forget: &[String],
        rerun: Option<Rerun<'_>>,
    ) -> impl Future<Output = Result<Reopened>> + Send;
}
