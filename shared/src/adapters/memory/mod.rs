//! In-memory twins of the ports, for unit tests of the services and for this repository's
//! simulation. They keep the same atomicity as the AWS adapters (one lock per call),
//! decide what the DynamoDB adapter decides (its TTL stamps, its step tokens, the intent
//! it takes back, the partition an item is written to), and keep the sparse indexes as
//! DynamoDB does: in order, each item in the partition it was written to.
//!
//! A simulation gives them its [`Weather`]: each call then takes a while, and may be
//! refused before it is applied or have its answer lost after, as an AWS call may.

mod claims;
mod ops;
mod reconcile;
mod records;
mod wriftai;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::ports::{CheckAsk, Kept, Ledger, Lookup, NewEvent, Recorded, WorkQueue};
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;
use crate::trace::TraceHeader;

pub use records::MemoryBucket;
pub use wriftai::MemoryWriftAi;

/// What becomes of one call to an in-memory adapter under a simulation's [`Weather`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Applied and answered.
    Answered,
    /// Refused before anything was applied: a throttle, a 5xx, a connection refused.
    Refused,
    /// Applied, and the answer lost on its way back (a timeout, a reset): the caller
    /// sees an error and cannot tell it from a refusal.
    Lost,
}

/// A simulation's faults: for each call (named by the AWS operation it stands for), how
/// long it takes and what becomes of it.
pub type Weather = Arc<dyn Fn(&'static str) -> (Duration, Fate) + Send + Sync>;

/// A call under `weather`: waits its time (or at least lets every other task that is
/// ready run first, as a call's round trip would), then is refused, or applied by
/// `apply` and answered or its answer lost.
async fn under<T>(weather: Option<&Weather>, op: &'static str, apply: impl FnOnce() -> Result<T>) -> Result<T> {
    let Some(weather) = weather else { return apply() };
    let (took, fate) = weather(op);
    if took.is_zero() {
        YieldOnce(false).await;
    } else {
        tokio::time::sleep(took).await;
    }
    match fate {
        Fate::Refused => Err(Error::store(op, "refused (simulated: throttled, or a 5xx)")),
        Fate::Answered => apply(),
        Fate::Lost => {
            // What the call did stands; only its answer is gone.
            let _applied = apply();
            Err(Error::store(op, "answer lost (simulated: a timeout or a reset)"))
        }
    }
}

/// Pending once, then ready: every other task ready to run runs first.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PredictionRow {
    pub status: Option<Status>,
    pub registered_at: OffsetDateTime,
    /// Present while the prediction is unfinished (the sparse index's marker).
    pub open: bool,
    /// The `open` index partition it was written to, while open.
    open_pk: Option<String>,
    /// Why the reconciler gave up on it.
    pub closed: Option<String>,
    /// A check was asked for until then, and has not begun; and whether it was sent.
    pub check_until: Option<OffsetDateTime>,
    pub check_sent: bool,
    /// No check is asked for before then: one began moments ago.
    pub check_after: Option<OffsetDateTime>,
    /// When each status the worker does not act on moved it (`seen_<status>`).
    pub seen: Vec<(Status, OffsetDateTime)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// The worker acts on it (`enqueue` in the DynamoDB layout).
    pub needs_work: bool,
    pub received_at: OffsetDateTime,
    /// The body's `updated_at`, as the ledger was given it.
    pub updated_at: Option<String>,
    pub payload: Option<String>,
    /// The model the body named, kept with an event that needs work.
    pub model: Option<String>,
    /// The result of the run that completed the work, once it is done.
    pub done: Option<serde_json::Value>,
    /// The token of the run that completed it.
    pub done_by: Option<String>,
    /// The run holding the work, until its deadline.
    pub claim: Option<Claimed>,
    /// A replay was asked for: done work runs once more.
    pub replay: bool,
    pub attempts: u32,
    /// In the `work` index since then, until the work is done.
    pub work_since: Option<OffsetDateTime>,
    /// The `work` index partition it was written to, while in it.
    work_pk: Option<String>,
    /// The `received` index partition, for an event that needs work.
    recv_pk: Option<String>,
    /// DynamoDB's TTL attribute: [`MemoryLedger::expire`] deletes the event after it.
    /// None while the event's work is not done.
    pub expires_at: Option<OffsetDateTime>,
    /// How long the event is kept once its work is done.
    pub keep: time::Duration,
    /// Why the last failed run failed, and when.
    pub last_error: Option<String>,
    pub failed_at: Option<OffsetDateTime>,
    /// How often the reconciler enqueued this work again.
    pub requeues: u32,
    /// Why the reconciler stopped requeueing it, and sent it to the DLQ.
    pub gave_up: Option<String>,
    /// The bulk replays that reopened it.
    pub replay_runs: Vec<String>,
    /// Sealed by `hooks forget`: no claim or replay of it succeeds.
    pub forgotten_at: Option<OffsetDateTime>,
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
    pub tries: BTreeSet<String>,
    /// Its outcome, once it finished.
    pub outcome: Option<Kept>,
    /// DynamoDB's TTL attribute, stamped when it finished with a retention set.
    pub expires_at: Option<OffsetDateTime>,
}

/// One record the work stored.
#[derive(Clone, Debug, PartialEq)]
struct RecordRow {
    kept: Kept,
    /// How many times it was stored.
    stores: u32,
    expires_at: Option<OffsetDateTime>,
}

/// The body a run of an event's work kept (`BODY#<status>`), for an event holding none.
#[derive(Clone, Debug, PartialEq)]
struct BodyRow {
    body: String,
    /// None while a replay's rerun of its work is not done, as its event.
    expires_at: Option<OffsetDateTime>,
}

/// A prediction `hooks forget` erased: when, and until when its mark is kept.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Mark {
    at: OffsetDateTime,
    until: OffsetDateTime,
}

type EventKey = (PredictionId, String);
type StepKeyOwned = (PredictionId, String, String);

#[derive(Default)]
pub struct MemoryLedger {
    state: Mutex<State>,
    /// Shards per index (`wriftai_hooks::shards`); 0 for the default. Raised as a deploy
    /// with a higher `INDEX_SHARDS` would raise it.
    shards: AtomicU16,
    /// The widest shard count it was written with before the one it has now.
    widest: AtomicU16,
    /// How long records and finished steps are kept (`RECORD_TTL_DAYS`), in seconds; 0
    /// for ever.
    record_ttl_secs: std::sync::atomic::AtomicU64,
    weather: Option<Weather>,
    /// Makes the next N `register`/`record` calls fail as an unreachable DynamoDB would.
    pub fail_next: AtomicUsize,
}

#[derive(Default)]
struct State {
    predictions: BTreeMap<PredictionId, PredictionRow>,
    events: BTreeMap<EventKey, EventRow>,
    /// The work's records by prediction and name.
    records: BTreeMap<(PredictionId, String), RecordRow>,
    /// The work's steps by prediction, status and name.
    steps: BTreeMap<StepKeyOwned, StepRow>,
    /// The bodies runs kept, by event.
    bodies: BTreeMap<EventKey, BodyRow>,
    cursors: BTreeMap<String, String>,
    /// Writes of the reconciler's places, each a write to its one key.
    cursor_writes: usize,
    /// The reconciler's latest run.
    last_run: Option<serde_json::Value>,
    /// Predictions `hooks forget` erased.
    forgotten: BTreeMap<PredictionId, Mark>,
    /// The sparse indexes: by partition, then place (`reconcile::place`).
    open_index: BTreeMap<(String, String), PredictionId>,
    work_index: BTreeMap<(String, String), EventKey>,
    recv_index: BTreeMap<(String, String), EventKey>,
}

fn place(since: OffsetDateTime, id: PredictionId, status: &str) -> String {
    reconcile::place(since, id, status)
}

impl State {
    /// Puts prediction `id` in the `open` index's partition `pk`, or takes it out.
    fn set_open(&mut self, id: PredictionId, pk: Option<String>) {
        let Some(row) = self.predictions.get_mut(&id) else { return };
        if let Some(old) = row.open_pk.take() {
            self.open_index.remove(&(old, place(row.registered_at, id, "")));
        }
        row.open = pk.is_some();
        if let Some(pk) = pk {
            self.open_index.insert((pk.clone(), place(row.registered_at, id, "")), id);
            row.open_pk = Some(pk);
        }
    }

    /// Puts an event in the `work` index's partition `pk` since `since`, or takes it out.
    fn set_work(&mut self, key: &EventKey, to: Option<(String, OffsetDateTime)>) {
        let Some(row) = self.events.get_mut(key) else { return };
        if let (Some(old), Some(since)) = (row.work_pk.take(), row.work_since.take()) {
            self.work_index.remove(&(old, place(since, key.0, &key.1)));
        }
        if let Some((pk, since)) = to {
            self.work_index.insert((pk.clone(), place(since, key.0, &key.1)), key.clone());
            (row.work_pk, row.work_since) = (Some(pk), Some(since));
        }
    }

    /// Puts an event in the `received` index, if it is not there yet: what the DynamoDB
    /// adapter's `ENTER_RECEIVED` does in the write that ends a run, requeues or gives it up.
    fn enter_received(&mut self, key: &EventKey, shards: u16) {
        let Some(row) = self.events.get_mut(key) else { return };
        if row.recv_pk.is_none() {
            let pk = Index::Received.partition(key.0, shards);
            self.recv_index.insert((pk.clone(), place(row.received_at, key.0, &key.1)), key.clone());
            row.recv_pk = Some(pk);
        }
    }

    fn remove_event(&mut self, key: &EventKey) -> Option<EventRow> {
        self.set_work(key, None);
        let row = self.events.remove(key)?;
        if let Some(pk) = &row.recv_pk {
            self.recv_index.remove(&(pk.clone(), place(row.received_at, key.0, &key.1)));
        }
        Some(row)
    }

    /// The body kept for an event's work, as `Reopened` and `work_payload` give it: the
    /// event's own, else the one a run kept, while it is live.
    fn kept_body(&self, key: &EventKey, now: OffsetDateTime) -> Option<String> {
        let own = self.events.get(key).and_then(|row| row.payload.clone());
        own.or_else(|| {
            let row = self.bodies.get(key)?;
            let live = row.expires_at.is_none_or(|at| at.unix_timestamp() > now.unix_timestamp());
            live.then(|| row.body.clone())
        })
    }

    fn remove_prediction(&mut self, id: PredictionId) -> Option<PredictionRow> {
        self.set_open(id, None);
        self.predictions.remove(&id)
    }
}

impl MemoryLedger {
    /// An empty ledger whose indexes have `shards` shards.
    pub fn sharded(shards: u16) -> Self {
        Self { shards: AtomicU16::new(shards), ..Self::default() }
    }

    /// The same ledger, each call of it under `weather`.
    pub fn under(self, weather: Weather) -> Self {
        Self { weather: Some(weather), ..self }
    }

    /// Keeps records and finished steps `ttl` from when they are written (the
    /// DynamoDB adapter's `keeping_records`), or for ever.
    pub fn keeping_records(self, ttl: Option<Duration>) -> Self {
        self.keep_records(ttl);
        self
    }

    /// Changes how long records and finished steps are kept from now on, as a deploy
    /// with a new `RECORD_TTL_DAYS` would.
    pub fn keep_records(&self, ttl: Option<Duration>) {
        self.record_ttl_secs.store(ttl.map_or(0, |ttl| ttl.as_secs()), Ordering::SeqCst);
    }

    /// Changes the shard count new writes use, as a deploy with a new `INDEX_SHARDS`
    /// would.
    pub fn reshard(&self, shards: u16) {
        self.widest.fetch_max(self.shards(), Ordering::SeqCst);
        self.shards.store(shards, Ordering::SeqCst);
    }

    /// The shard count its walks read: the widest it was ever written with.
    pub(crate) fn walked_shards(&self) -> u16 {
        self.widest.load(Ordering::SeqCst).max(self.shards())
    }

    fn shards(&self) -> u16 {
        match self.shards.load(Ordering::SeqCst) {
            0 => crate::shards::DEFAULT,
            shards => shards,
        }
    }

    /// When a record or a finished step written at `now` expires, if it does.
    fn record_expiry(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match self.record_ttl_secs.load(Ordering::SeqCst) {
            0 => None,
            secs => Some(now + Duration::from_secs(secs)),
        }
    }

    /// A call of this ledger: under its weather, if it has one.
    async fn call<T>(&self, op: &'static str, apply: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        under(self.weather.as_ref(), op, || apply(&mut self.lock())).await
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
        self.lock().records.get(&(id, name.to_owned())).map(|row| (row.kept.clone(), row.stores))
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

    /// The predictions the ledger holds (not erased), in ID order.
    pub fn prediction_ids(&self) -> Vec<PredictionId> {
        self.lock().predictions.keys().copied().collect()
    }

    /// Each event, in key order, without a copy: `visit(id, status, row)`.
    pub fn each_event(&self, mut visit: impl FnMut(PredictionId, &str, &EventRow)) {
        for ((id, status), row) in &self.lock().events {
            visit(*id, status, row);
        }
    }

    /// Whether anything but a mark is kept of `id`: its prediction, an event, a body kept
    /// apart, a record or a step.
    pub fn holds_any_of(&self, id: PredictionId) -> bool {
        let state = self.lock();
        let lowest = (id, String::new());
        state.predictions.contains_key(&id)
            || state.events.range(lowest.clone()..).next().is_some_and(|((of, _), _)| *of == id)
            || state.records.range(lowest.clone()..).next().is_some_and(|((of, _), _)| *of == id)
            || state.bodies.range(lowest..).next().is_some_and(|((of, _), _)| *of == id)
            || state.steps.range((id, String::new(), String::new())..).next().is_some_and(|((of, _, _), _)| *of == id)
    }

    /// Whether `hooks forget` left its mark for `id` (expired or not).
    pub fn marked(&self, id: PredictionId) -> bool {
        self.lock().forgotten.contains_key(&id)
    }

    /// `hooks forget` at once, for a unit test: erases everything kept of `id` and marks
    /// it forgotten for [`MARK_KEPT`](crate::ops::MARK_KEPT).
    pub fn forget(&self, id: PredictionId) {
        let now = crate::clock::now();
        let mut state = self.lock();
        state.remove_prediction(id);
        let events: Vec<EventKey> = state.events.keys().filter(|(of, _)| *of == id).cloned().collect();
        for key in events {
            state.remove_event(&key);
        }
        state.records.retain(|(of, _), _| *of != id);
        state.bodies.retain(|(of, _), _| *of != id);
        state.steps.retain(|(of, _, _), _| *of != id);
        state.forgotten.insert(id, Mark { at: now, until: now + crate::ops::MARK_KEPT });
    }

    /// DynamoDB's TTL at `now`: deletes every item whose `expires_at` has passed.
    pub fn expire(&self, now: OffsetDateTime) {
        self.expire_late(now, |_| Duration::ZERO);
    }

    /// DynamoDB's TTL at `now`, as it runs on AWS: an item past its `expires_at` is
    /// deleted `lag` after it (up to 48 hours, AWS says), `lag` given the item's stable
    /// hash. Returns how many items it deleted.
    pub fn expire_late(&self, now: OffsetDateTime, lag: impl Fn(u64) -> Duration) -> usize {
        // An item's stable hash: its prediction's, its kind's and its name's.
        let hash = |id: &PredictionId, kind: u64, name: &str| {
            crate::shards::fnv1a(id.as_bytes()) ^ kind.wrapping_mul(0x9e37_79b9) ^ crate::shards::fnv1a(name.as_bytes())
        };
        // The lag is never negative: an item not yet past its time is not hashed at all.
        let due = |expires_at: Option<OffsetDateTime>, key: &dyn Fn() -> u64| {
            expires_at.is_some_and(|at| at <= now && at + lag(key()) <= now)
        };
        let mut state = self.lock();
        let events: Vec<EventKey> = state
            .events
            .iter()
            .filter(|((id, status), row)| due(row.expires_at, &|| hash(id, 1, status)))
            .map(|(key, _)| key.clone())
            .collect();
        let mut deleted = events.len();
        for key in events {
            state.remove_event(&key);
        }
        let before = state.records.len() + state.steps.len() + state.forgotten.len() + state.bodies.len();
        state.records.retain(|(id, name), row| !due(row.expires_at, &|| hash(id, 2, name)));
        state.bodies.retain(|(id, status), row| !due(row.expires_at, &|| hash(id, 6, status)));
        state.steps.retain(|(id, status, name), row| !due(row.expires_at, &|| hash(id, 3, status) ^ hash(id, 4, name)));
        state.forgotten.retain(|id, mark| !due(Some(mark.until), &|| hash(id, 5, "")));
        deleted += before - (state.records.len() + state.steps.len() + state.forgotten.len() + state.bodies.len());
        deleted
    }

    /// Moves an event's staleness clock back to `at`, as if its work had waited since.
    pub fn stale_since(&self, id: PredictionId, status: &str, at: OffsetDateTime) {
        let mut state = self.lock();
        let key = (id, status.to_owned());
        if let Some(pk) = state.events.get(&key).and_then(|e| e.work_pk.clone()) {
            state.set_work(&key, Some((pk, at)));
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
        let pk = Index::Open.partition(id, self.shards());
        self.call("PutItem", |state| {
            if state.predictions.contains_key(&id) {
                return Ok(false);
            }
            let row = PredictionRow {
                status: None,
                registered_at: at,
                open: false,
                open_pk: None,
                closed: None,
                check_until: None,
                check_sent: false,
                check_after: None,
                seen: Vec::new(),
            };
            state.predictions.insert(id, row);
            state.set_open(id, Some(pk));
            Ok(true)
        })
        .await
    }

    async fn record(&self, event: &NewEvent<'_>) -> Result<Recorded> {
        Self::injected_fault(&self.fail_next, "TransactWriteItems")?;
        let shards = self.shards();
        self.call("TransactWriteItems", |state| {
            let Some(prediction) = state.predictions.get_mut(&event.id) else {
                return Ok(Recorded::UnknownPrediction);
            };
            let key = (event.id, event.status.to_string());
            let current = prediction.status.as_ref().and_then(Status::rank);
            let advanced = event.status.rank().is_some_and(|rank| current.is_none_or(|current| rank > current));
            // As DynamoDB's adapter does: a ranked status the worker does not act on
            // moves the prediction alone, no event row.
            let alone = event.status.rank().is_some() && !event.needs_work;
            if alone && !advanced {
                return Ok(if prediction.status.as_ref() == Some(event.status) {
                    Recorded::Duplicate { undone: false }
                } else {
                    Recorded::New { advanced: false }
                });
            }
            if !alone && let Some(existing) = state.events.get(&key) {
                let undone = existing.needs_work
                    && existing.done.is_none()
                    && existing.attempts == 0
                    && existing.forgotten_at.is_none()
                    && existing.gave_up.is_none();
                return Ok(Recorded::Duplicate { undone });
            }
            if advanced {
                prediction.status = Some(event.status.clone());
                if alone {
                    prediction.seen.push((event.status.clone(), event.received_at));
                }
                if event.status.is_terminal() {
                    state.set_open(event.id, None);
                }
            }
            if alone {
                return Ok(Recorded::New { advanced: true });
            }
            let with_work = advanced && event.needs_work;
            let keep = event.expires_at - event.received_at;
            let row = EventRow {
                updated_at: event.updated_at.map(str::to_owned),
                needs_work: with_work,
                received_at: event.received_at,
                payload: event.payload.filter(|_| with_work).map(str::to_owned),
                model: event.model.filter(|_| with_work).map(str::to_owned),
                done: None,
                done_by: None,
                claim: None,
                replay: false,
                attempts: 0,
                work_since: None,
                work_pk: None,
                // Entered by the write that ends a run (`enter_received`).
                recv_pk: None,
                expires_at: (!with_work).then_some(event.expires_at),
                keep,
                last_error: None,
                failed_at: None,
                requeues: 0,
                gave_up: None,
                replay_runs: Vec::new(),
                forgotten_at: None,
            };
            state.events.insert(key.clone(), row);
            if with_work {
                state.set_work(&key, Some((Index::Work.partition(event.id, shards), event.received_at)));
            }
            Ok(Recorded::New { advanced })
        })
        .await
    }

    async fn lookup(&self, id: PredictionId) -> Result<Lookup> {
        Self::injected_fault(&self.fail_next, "GetItem")?;
        self.call("GetItem", |state| {
            Ok(match state.predictions.get(&id) {
                None => Lookup::Unknown,
                Some(row) if row.status.as_ref().is_none_or(|s| *s == Status::Pending) => Lookup::Registered,
                Some(row) if row.status.as_ref().is_some_and(Status::is_terminal) => Lookup::Finished,
                Some(_) => Lookup::Open,
            })
        })
        .await
    }

    async fn forgotten(&self, id: PredictionId) -> Result<bool> {
        Self::injected_fault(&self.fail_next, "GetItem")?;
        let now = crate::clock::now();
        // A mark past its time is gone, as the rest of it is.
        self.call("GetItem", |state| Ok(state.forgotten.get(&id).is_some_and(|mark| mark.until > now))).await
    }

    async fn ask_check(&self, id: PredictionId, now: OffsetDateTime, window: Duration) -> Result<CheckAsk> {
        Self::injected_fault(&self.fail_next, "UpdateItem")?;
        self.call("UpdateItem", |state| {
            let Some(row) = state.predictions.get_mut(&id) else { return Ok(CheckAsk::Unknown) };
            if row.status.as_ref().is_some_and(Status::is_terminal) {
                return Ok(CheckAsk::Finished);
            }
            if row.check_sent && row.check_until.is_some_and(|until| until > now) {
                return Ok(CheckAsk::Pending);
            }
            // DynamoDB keeps whole seconds: `check_after > :now`.
            if let Some(until) = row.check_after.filter(|after| after.unix_timestamp() > now.unix_timestamp()) {
                return Ok(CheckAsk::TooSoon { until: until.replace_nanosecond(0).unwrap_or(until) });
            }
            (row.check_until, row.check_sent) = (Some(now + window), false);
            Ok(CheckAsk::Asked)
        })
        .await
    }

    async fn check_sent(&self, id: PredictionId) -> Result<()> {
        self.call("UpdateItem", |state| {
            if let Some(row) = state.predictions.get_mut(&id).filter(|row| row.check_until.is_some()) {
                row.check_sent = true;
            }
            Ok(())
        })
        .await
    }

    async fn check_begun(&self, id: PredictionId, next: Option<OffsetDateTime>) -> Result<()> {
        self.call("UpdateItem", |state| {
            if let Some(row) = state.predictions.get_mut(&id) {
                (row.check_until, row.check_sent) = (None, false);
                if next.is_some() {
                    row.check_after = next;
                }
            }
            Ok(())
        })
        .await
    }
}

#[derive(Default)]
pub struct MemoryQueue {
    /// Each message's body, and the trace it carried (SQS's `AWSTraceHeader`).
    messages: Mutex<Vec<(String, Option<TraceHeader>)>>,
    weather: Option<Weather>,
    /// Told of each message sent: a model of SQS that waits for one.
    on_send: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Makes the next N sends fail as an unreachable SQS would.
    pub fail_next: AtomicUsize,
}

impl MemoryQueue {
    /// The same queue, each send under `weather`.
    pub fn under(self, weather: Weather) -> Self {
        Self { weather: Some(weather), ..self }
    }

    /// The same queue, telling `told` of each message sent.
    pub fn telling(self, told: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self { on_send: Some(told), ..self }
    }

    pub fn messages(&self) -> Vec<String> {
        self.sent().into_iter().map(|(body, _)| body).collect()
    }

    /// The messages with the trace each carried.
    pub fn sent(&self) -> Vec<(String, Option<TraceHeader>)> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes the messages sent so far out, for a model of SQS to hold: they are no
    /// longer in [`sent`](Self::sent).
    pub fn take_sent(&self) -> Vec<String> {
        let taken = std::mem::take(&mut *self.messages.lock().unwrap_or_else(|p| p.into_inner()));
        taken.into_iter().map(|(body, _)| body).collect()
    }
}

impl WorkQueue for MemoryQueue {
    async fn send(&self, body: String, trace: Option<&TraceHeader>) -> Result<()> {
        if take_one(&self.fail_next).is_some() {
            return Err(Error::queue("SendMessage", "injected fault"));
        }
        let send = || {
            self.messages.lock().unwrap_or_else(|p| p.into_inner()).push((body, trace.cloned()));
            if let Some(told) = &self.on_send {
                told();
            }
            Ok(())
        };
        under(self.weather.as_ref(), "SendMessage", send)
            .await
            .map_err(|err| Error::queue("SendMessage", crate::error::chain(&err)))
    }
}

/// A dead-letter queue in memory: what a model of SQS moved there after too many
/// receives, for `hooks redrive` and `hooks status` to find. Each message has an ID, its
/// body, and how often it was received before it came here.
#[derive(Default)]
pub struct MemoryDeadLetters {
    /// By ID: the body, the receives before it came, and when it was first enqueued.
    messages: Mutex<BTreeMap<u64, (String, u32, OffsetDateTime)>>,
    next: std::sync::atomic::AtomicU64,
}

impl MemoryDeadLetters {
    /// Moves a message here: its body, how often it was received, and when it was
    /// first enqueued (a standard queue's DLQ keeps that, and expires it from there).
    pub fn push(&self, body: String, receives: u32, enqueued_at: OffsetDateTime) {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).insert(id, (body, receives, enqueued_at));
    }

    /// Up to `max` messages, oldest first: their IDs, bodies and receive counts.
    pub fn peek(&self, max: usize) -> Vec<(u64, String, u32)> {
        let messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        messages.iter().take(max).map(|(id, (body, receives, _))| (*id, body.clone(), *receives)).collect()
    }

    pub fn delete(&self, id: u64) {
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// SQS's retention at `now`: deletes the messages first enqueued `kept` ago or
    /// earlier. Returns how many.
    pub fn expire(&self, now: OffsetDateTime, kept: Duration) -> usize {
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        let before = messages.len();
        messages.retain(|_, (_, _, enqueued_at)| *enqueued_at + kept > now);
        before - messages.len()
    }

    pub fn len(&self) -> usize {
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the reconciler sends to the dead-letter queue.
impl WorkQueue for MemoryDeadLetters {
    async fn send(&self, body: String, _trace: Option<&TraceHeader>) -> Result<()> {
        self.push(body, 0, crate::clock::now());
        Ok(())
    }
}
