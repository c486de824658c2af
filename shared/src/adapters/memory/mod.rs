//! In-memory twins of the ports, for unit tests of the services. They keep the same
//! atomicity as the AWS adapters (one lock per call) and can be told to fail.

mod claims;
mod reconcile;
mod records;
mod wriftai;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::ports::{CheckAsk, Enqueue, Kept, Ledger, Lookup, NewEvent, Recorded, WorkQueue};
use crate::prediction::{PredictionId, Status};
use crate::trace::TraceHeader;

pub use records::MemoryBucket;
pub use wriftai::MemoryWriftAi;

#[derive(Clone, Debug, PartialEq)]
pub struct PredictionRow {
    pub status: Option<Status>,
    pub registered_at: OffsetDateTime,
    /// Present while the prediction is unfinished (the sparse index's marker).
    pub open: bool,
    /// Why the reconciler gave up on it.
    pub closed: Option<String>,
    /// A check was asked for until then, and has not begun; and whether it was sent.
    pub check_until: Option<OffsetDateTime>,
    pub check_sent: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub enqueue: Enqueue,
    pub payload: Option<String>,
    /// The result of the run that completed the work, once it is done.
    pub done: Option<serde_json::Value>,
    /// The run holding the work, until its deadline.
    pub claim: Option<Claimed>,
    /// A replay was asked for: done work runs once more.
    pub replay: bool,
    pub attempts: u32,
    /// In the `work` index since then, until the work is done.
    pub work_since: Option<OffsetDateTime>,
    /// DynamoDB's TTL attribute: [`MemoryLedger::expire`] deletes the event after it.
    /// None while the event's work is not done.
    pub expires_at: Option<OffsetDateTime>,
    /// How long the event is kept once its work is done.
    pub keep: time::Duration,
    /// Why the last failed run failed.
    pub last_error: Option<String>,
    /// How often the reconciler enqueued this work again.
    pub requeues: u32,
    /// Why the reconciler stopped requeueing it, and sent it to the DLQ.
    pub gave_up: Option<String>,
    /// The bulk replays that reopened it.
    pub replay_runs: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    pub token: String,
    pub until: OffsetDateTime,
}

/// One step of the work, as its item holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    pub started_at: OffsetDateTime,
    /// The token of the write that began it.
    pub token: String,
    /// The failed tries noted, by their IDs.
    pub tries: std::collections::BTreeSet<String>,
    /// Its outcome, once it finished.
    pub outcome: Option<Kept>,
}

#[derive(Default)]
pub struct MemoryLedger {
    state: Mutex<State>,
    /// Shards per index (`wriftai_hooks::shards`); 0 for the default.
    shards: u16,
    /// Makes the next N `register`/`record` calls fail as an unreachable DynamoDB would.
    pub fail_next: AtomicUsize,
    /// Makes the next N `mark_enqueued` calls fail.
    pub fail_next_mark: AtomicUsize,
}

#[derive(Default)]
struct State {
    predictions: BTreeMap<PredictionId, PredictionRow>,
    events: BTreeMap<(PredictionId, String), EventRow>,
    /// The work's records by prediction and name, with how many times each was stored.
    records: BTreeMap<(PredictionId, String), (Kept, u32)>,
    /// The work's steps by prediction, status and name.
    steps: BTreeMap<(PredictionId, String, String), StepRow>,
    cursors: BTreeMap<String, String>,
    /// Writes of the reconciler's places, each a write to its one key.
    cursor_writes: usize,
    /// The reconciler's latest run.
    last_run: Option<serde_json::Value>,
    /// Predictions `hooks forget` erased.
    forgotten: std::collections::BTreeSet<PredictionId>,
}

impl MemoryLedger {
    /// An empty ledger whose indexes have `shards` shards.
    pub fn sharded(shards: u16) -> Self {
        Self { shards, ..Self::default() }
    }

    fn shards(&self) -> u16 {
        if self.shards == 0 { crate::shards::DEFAULT } else { self.shards }
    }

    pub fn prediction(&self, id: PredictionId) -> Option<PredictionRow> {
        self.lock().predictions.get(&id).cloned()
    }

    pub fn event(&self, id: PredictionId, status: &str) -> Option<EventRow> {
        self.lock().events.get(&(id, status.to_owned())).cloned()
    }

    /// The record `name` the work stored for `id` as it was kept, and how many times it
    /// was stored.
    pub fn kept(&self, id: PredictionId, name: &str) -> Option<(Kept, u32)> {
        self.lock().records.get(&(id, name.to_owned())).cloned()
    }

    /// The record `name` the work stored whole for `id`, and how many times it was stored.
    pub fn record(&self, id: PredictionId, name: &str) -> Option<(serde_json::Value, u32)> {
        match self.kept(id, name)? {
            (Kept::Whole(text), count) => Some((serde_json::from_str(&text).ok()?, count)),
            _ => None,
        }
    }

    /// The step `name` of `id` at `status`: whether it finished, and how often it began.
    pub fn step(&self, id: PredictionId, status: &str, name: &str) -> Option<StepRow> {
        self.lock().steps.get(&(id, status.to_owned(), name.to_owned())).cloned()
    }

    /// `hooks forget`: erases everything kept of `id` and marks it forgotten.
    pub fn forget(&self, id: PredictionId) {
        let mut state = self.lock();
        state.predictions.remove(&id);
        state.events.retain(|(of, _), _| *of != id);
        state.records.retain(|(of, _), _| *of != id);
        state.steps.retain(|(of, _, _), _| *of != id);
        state.forgotten.insert(id);
    }

    /// DynamoDB's TTL at `now`: deletes every event whose `expires_at` has passed.
    pub fn expire(&self, now: OffsetDateTime) {
        self.lock().events.retain(|_, event| event.expires_at.is_none_or(|at| at > now));
    }

    /// Moves an event's staleness clock back to `at`, as if its work had waited since.
    pub fn stale_since(&self, id: PredictionId, status: &str, at: OffsetDateTime) {
        if let Some(event) = self.lock().events.get_mut(&(id, status.to_owned())).filter(|e| e.work_since.is_some()) {
            event.work_since = Some(at);
        }
    }

    /// How many times the reconciler wrote a walk's place.
    pub fn cursor_writes(&self) -> usize {
        self.lock().cursor_writes
    }

    pub fn item_count(&self) -> usize {
        let state = self.lock();
        state.predictions.len() + state.events.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn injected_fault(counter: &AtomicUsize, op: &'static str) -> Result<()> {
        take_one(counter).map_or(Ok(()), |()| Err(Error::store(op, "injected fault")))
    }
}

fn take_one(counter: &AtomicUsize) -> Option<()> {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).ok().map(|_| ())
}

impl Ledger for MemoryLedger {
    async fn register(&self, id: PredictionId, at: OffsetDateTime) -> Result<bool> {
        Self::injected_fault(&self.fail_next, "PutItem")?;
        let mut state = self.lock();
        if state.predictions.contains_key(&id) {
            return Ok(false);
        }
        let row = PredictionRow {
            status: None,
            registered_at: at,
            open: true,
            closed: None,
            check_until: None,
            check_sent: false,
        };
        state.predictions.insert(id, row);
        Ok(true)
    }

    async fn record(&self, event: &NewEvent<'_>) -> Result<Recorded> {
        Self::injected_fault(&self.fail_next, "TransactWriteItems")?;
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(prediction) = state.predictions.get_mut(&event.id) else {
            return Ok(Recorded::UnknownPrediction);
        };
        let key = (event.id, event.status.to_string());
        if let Some(existing) = state.events.get(&key) {
            return Ok(Recorded::Duplicate { enqueue: existing.enqueue });
        }
        let current = prediction.status.as_ref().and_then(Status::rank);
        let advanced = match event.status.rank() {
            Some(rank) => current.is_none_or(|current| rank > current),
            None => false,
        };
        if advanced {
            prediction.status = Some(event.status.clone());
            prediction.open = !event.status.is_terminal();
        }
        let enqueue = if advanced && event.needs_work { Enqueue::Pending } else { Enqueue::NotNeeded };
        let payload = event.payload.filter(|_| enqueue == Enqueue::Pending).map(str::to_owned);
        let work_since = (enqueue == Enqueue::Pending).then_some(event.received_at);
        let keep = event.expires_at - event.received_at;
        let expires_at = (enqueue != Enqueue::Pending).then_some(event.expires_at);
        let row = EventRow {
            enqueue,
            payload,
            done: None,
            claim: None,
            replay: false,
            attempts: 0,
            work_since,
            expires_at,
            keep,
            last_error: None,
            requeues: 0,
            gave_up: None,
            replay_runs: Vec::new(),
        };
        state.events.insert(key, row);
        Ok(Recorded::New { advanced })
    }

    async fn mark_enqueued(&self, id: PredictionId, status: &Status) -> Result<()> {
        Self::injected_fault(&self.fail_next_mark, "UpdateItem")?;
        if let Some(event) = self.lock().events.get_mut(&(id, status.to_string())) {
            event.enqueue = Enqueue::Sent;
        }
        Ok(())
    }

    async fn lookup(&self, id: PredictionId) -> Result<Lookup> {
        Self::injected_fault(&self.fail_next, "GetItem")?;
        Ok(match self.lock().predictions.get(&id) {
            None => Lookup::Unknown,
            Some(row) if row.status.as_ref().is_some_and(Status::is_terminal) => Lookup::Finished,
            Some(_) => Lookup::Open,
        })
    }

    async fn forgotten(&self, id: PredictionId) -> Result<bool> {
        Self::injected_fault(&self.fail_next, "GetItem")?;
        Ok(self.lock().forgotten.contains(&id))
    }

    async fn ask_check(&self, id: PredictionId, now: OffsetDateTime, window: Duration) -> Result<CheckAsk> {
        Self::injected_fault(&self.fail_next, "UpdateItem")?;
        let mut state = self.lock();
        let Some(row) = state.predictions.get_mut(&id) else { return Ok(CheckAsk::Unknown) };
        if row.status.as_ref().is_some_and(Status::is_terminal) {
            return Ok(CheckAsk::Finished);
        }
        if row.check_sent && row.check_until.is_some_and(|until| until > now) {
            return Ok(CheckAsk::Pending);
        }
        (row.check_until, row.check_sent) = (Some(now + window), false);
        Ok(CheckAsk::Asked)
    }

    async fn check_sent(&self, id: PredictionId) -> Result<()> {
        if let Some(row) = self.lock().predictions.get_mut(&id).filter(|row| row.check_until.is_some()) {
            row.check_sent = true;
        }
        Ok(())
    }

    async fn check_begun(&self, id: PredictionId) -> Result<()> {
        if let Some(row) = self.lock().predictions.get_mut(&id) {
            (row.check_until, row.check_sent) = (None, false);
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryQueue {
    /// Each message's body, and the trace it carried (SQS's `AWSTraceHeader`).
    messages: Mutex<Vec<(String, Option<TraceHeader>)>>,
    /// Makes the next N sends fail as an unreachable SQS would.
    pub fail_next: AtomicUsize,
}

impl MemoryQueue {
    pub fn messages(&self) -> Vec<String> {
        self.sent().into_iter().map(|(body, _)| body).collect()
    }

    /// The messages with the trace each carried.
    pub fn sent(&self) -> Vec<(String, Option<TraceHeader>)> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl WorkQueue for MemoryQueue {
    async fn send(&self, body: String, trace: Option<&TraceHeader>) -> Result<()> {
        if take_one(&self.fail_next).is_some() {
            return Err(Error::queue("SendMessage", "injected fault"));
        }
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).push((body, trace.cloned()));
        Ok(())
    }
}
