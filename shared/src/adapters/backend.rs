//! The one table, queue and bucket the engine runs on, whichever they are: DynamoDB,
//! SQS and S3 in a Lambda; in memory in tests (feature `test-util`). Each is an enum
//! that hands every call of a port to the backend it holds, so the code above the ports
//! names one concrete type, and a user's signature no type parameter: `Context` holds
//! these, whatever it runs on.
//!
//! Why enums and not `Box<dyn ...>`: the ports return `impl Future`, which a trait
//! object cannot; boxing every call's future would cost an allocation per call on the
//! receiver's path, and an enum is closed, which is what the engine wants (the backends
//! are its own, tested against each other, not a user's to add).

#[cfg(any(test, feature = "test-util"))]
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use super::dynamo::{Backlog, DynamoLedger, Received};
#[cfg(any(test, feature = "test-util"))]
use super::memory::{MemoryBucket, MemoryLedger, MemoryQueue};
use super::s3::S3Bucket;
use super::sqs::SqsQueue;
use crate::error::Result;
use crate::ports::{
    Bucket, CheckAsk, Claim, Claims, Kept, Ledger, Lookup, NewEvent, OpenPrediction, Page, PageAsk, ReconcileStore,
    RecordTable, Recorded, Reopened, Rerun, StaleWork, StepKey, StepState, WorkQueue,
};
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;
use crate::trace::TraceHeader;

/// The call `$call` on whichever backend `$self` holds, named `$b`.
macro_rules! each {
    ($self:expr, $b:ident => $call:expr) => {
        match $self {
            Self::Aws($b) => $call,
            #[cfg(any(test, feature = "test-util"))]
            Self::Memory(shared) => {
                let $b = &**shared;
                $call
            }
        }
    };
}

/// The stack's table: predictions, events, claims, records and steps.
#[derive(Clone)]
pub enum Table {
    /// DynamoDB.
    Aws(DynamoLedger),
    /// In memory, shared by every clone.
    #[cfg(any(test, feature = "test-util"))]
    Memory(Arc<MemoryLedger>),
}

impl Table {
    /// The in-memory table this is, for a test to look into.
    #[cfg(any(test, feature = "test-util"))]
    pub fn memory(&self) -> Option<&MemoryLedger> {
        match self {
            Self::Memory(ledger) => Some(ledger),
            Self::Aws(_) => None,
        }
    }
}

impl From<DynamoLedger> for Table {
    fn from(ledger: DynamoLedger) -> Self {
        Self::Aws(ledger)
    }
}

#[cfg(any(test, feature = "test-util"))]
impl From<MemoryLedger> for Table {
    fn from(ledger: MemoryLedger) -> Self {
        Self::Memory(Arc::new(ledger))
    }
}

/// What the operator's `hooks` commands read and change (`adapters::dynamo::ops`).
impl Table {
    pub async fn prediction_items(&self, id: PredictionId) -> Result<Vec<Value>> {
        each!(self, b => b.prediction_items(id).await)
    }

    pub async fn backlog(&self, index: Index) -> Result<Vec<Backlog>> {
        each!(self, b => b.backlog(index).await)
    }

    pub async fn mark_forgotten(&self, id: PredictionId, at: OffsetDateTime, until: OffsetDateTime) -> Result<()> {
        each!(self, b => b.mark_forgotten(id, at, until).await)
    }

    pub async fn fence_work(
        &self,
        id: PredictionId,
        status: &Status,
        token: &str,
        hold: std::time::Duration,
    ) -> Result<bool> {
        each!(self, b => b.fence_work(id, status, token, hold).await)
    }

    pub async fn unfence_work(&self, id: PredictionId, status: &Status, token: &str) -> Result<()> {
        each!(self, b => b.unfence_work(id, status, token).await)
    }

    pub async fn seal_work(&self, id: PredictionId, status: &Status) -> Result<()> {
        each!(self, b => b.seal_work(id, status).await)
    }

    pub async fn delete_items(&self, id: PredictionId, sort_keys: &[String]) -> Result<()> {
        each!(self, b => b.delete_items(id, sort_keys).await)
    }

    /// The event record of one unit of work, as a JSON object.
    pub async fn event_item(&self, id: PredictionId, status: &Status) -> Result<Option<Value>> {
        match self {
            Self::Aws(b) => b.event(id, status).await,
            #[cfg(any(test, feature = "test-util"))]
            Self::Memory(b) => b.event_item(id, status).await,
        }
    }

    pub async fn received_between(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        keep: impl Fn(&Received) -> bool + Sync,
    ) -> Result<Vec<Received>> {
        each!(self, b => b.received_between(since, until, keep).await)
    }
}

impl Ledger for Table {
    async fn register(&self, id: PredictionId, at: OffsetDateTime) -> Result<bool> {
        each!(self, b => Ledger::register(b, id, at).await)
    }

    async fn record(&self, event: &NewEvent<'_>) -> Result<Recorded> {
        each!(self, b => Ledger::record(b, event).await)
    }

    async fn lookup(&self, id: PredictionId) -> Result<Lookup> {
        each!(self, b => Ledger::lookup(b, id).await)
    }

    async fn forgotten(&self, id: PredictionId) -> Result<bool> {
        each!(self, b => Ledger::forgotten(b, id).await)
    }

    async fn ask_check(&self, id: PredictionId, now: OffsetDateTime, window: std::time::Duration) -> Result<CheckAsk> {
        each!(self, b => Ledger::ask_check(b, id, now, window).await)
    }

    async fn check_sent(&self, id: PredictionId) -> Result<()> {
        each!(self, b => Ledger::check_sent(b, id).await)
    }

    async fn check_begun(&self, id: PredictionId, next: Option<OffsetDateTime>) -> Result<()> {
        each!(self, b => Ledger::check_begun(b, id, next).await)
    }
}

impl Claims for Table {
    async fn claim(
        &self,
        id: PredictionId,
        status: &Status,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Claim> {
        each!(self, b => Claims::claim(b, id, status, until, now).await)
    }

    async fn complete(
        &self,
        id: PredictionId,
        status: &Status,
        token: &str,
        result: &Value,
        steps: &[String],
        now: OffsetDateTime,
    ) -> Result<bool> {
        each!(self, b => Claims::complete(b, id, status, token, result, steps, now).await)
    }

    async fn keep_body(&self, id: PredictionId, status: &Status, body: &str, expires_at: OffsetDateTime) -> Result<()> {
        each!(self, b => Claims::keep_body(b, id, status, body, expires_at).await)
    }

    async fn release(
        &self,
        id: PredictionId,
        status: &Status,
        token: &str,
        error: &str,
        body: Option<&str>,
    ) -> Result<()> {
        each!(self, b => Claims::release(b, id, status, token, error, body).await)
    }

    async fn reopen(
        &self,
        id: PredictionId,
        status: &Status,
        forget: &[String],
        rerun: Option<Rerun<'_>>,
    ) -> Result<Reopened> {
        each!(self, b => Claims::reopen(b, id, status, forget, rerun).await)
    }
}

impl RecordTable for Table {
    async fn put_record(&self, id: PredictionId, name: &str, record: &Kept) -> Result<()> {
        each!(self, b => RecordTable::put_record(b, id, name, record).await)
    }

    async fn get_record(&self, id: PredictionId, name: &str) -> Result<Option<Kept>> {
        each!(self, b => RecordTable::get_record(b, id, name).await)
    }

    async fn begin_step(&self, step: StepKey<'_>, now: OffsetDateTime) -> Result<StepState> {
        each!(self, b => RecordTable::begin_step(b, step, now).await)
    }

    async fn note_try(&self, step: StepKey<'_>, try_id: &str) -> Result<()> {
        each!(self, b => RecordTable::note_try(b, step, try_id).await)
    }

    async fn finish_step(&self, step: StepKey<'_>, outcome: &Kept, now: OffsetDateTime) -> Result<()> {
        each!(self, b => RecordTable::finish_step(b, step, outcome, now).await)
    }

    async fn forget_step(&self, step: StepKey<'_>) -> Result<()> {
        each!(self, b => RecordTable::forget_step(b, step).await)
    }
}

impl ReconcileStore for Table {
    fn partitions(&self, index: Index) -> Vec<String> {
        each!(self, b => ReconcileStore::partitions(b, index))
    }

    async fn learn_shards(&self) -> Result<()> {
        each!(self, b => ReconcileStore::learn_shards(b).await)
    }

    async fn open_predictions(&self, ask: PageAsk<'_>) -> Result<Page<OpenPrediction>> {
        each!(self, b => ReconcileStore::open_predictions(b, ask).await)
    }

    async fn close(&self, id: PredictionId, reason: &str, now: OffsetDateTime) -> Result<()> {
        each!(self, b => ReconcileStore::close(b, id, reason, now).await)
    }

    async fn stale_work(&self, ask: PageAsk<'_>) -> Result<Page<StaleWork>> {
        each!(self, b => ReconcileStore::stale_work(b, ask).await)
    }

    async fn work_payload(&self, id: PredictionId, status: &Status) -> Result<Option<String>> {
        each!(self, b => ReconcileStore::work_payload(b, id, status).await)
    }

    async fn touch_work(&self, id: PredictionId, status: &Status, now: OffsetDateTime) -> Result<Option<u32>> {
        each!(self, b => ReconcileStore::touch_work(b, id, status, now).await)
    }

    async fn give_up_work(&self, id: PredictionId, status: &Status, reason: &str, now: OffsetDateTime) -> Result<()> {
        each!(self, b => ReconcileStore::give_up_work(b, id, status, reason, now).await)
    }

    async fn cursor(&self, walk: &str) -> Result<Option<String>> {
        each!(self, b => ReconcileStore::cursor(b, walk).await)
    }

    async fn save_cursor(&self, walk: &str, cursor: Option<&str>) -> Result<()> {
        each!(self, b => ReconcileStore::save_cursor(b, walk, cursor).await)
    }

    async fn save_last_run(&self, summary: &Value, at: OffsetDateTime) -> Result<()> {
        each!(self, b => ReconcileStore::save_last_run(b, summary, at).await)
    }

    async fn last_run(&self) -> Result<Option<Value>> {
        each!(self, b => ReconcileStore::last_run(b).await)
    }
}

/// A queue of work messages: the work queue, or its dead-letter queue.
#[derive(Clone)]
pub enum Queue {
    /// SQS.
    Aws(SqsQueue),
    /// In memory, shared by every clone.
    #[cfg(any(test, feature = "test-util"))]
    Memory(Arc<MemoryQueue>),
}

impl Queue {
    /// The in-memory queue this is, for a test to look into.
    #[cfg(any(test, feature = "test-util"))]
    pub fn memory(&self) -> Option<&MemoryQueue> {
        match self {
            Self::Memory(queue) => Some(queue),
            Self::Aws(_) => None,
        }
    }
}

impl From<SqsQueue> for Queue {
    fn from(queue: SqsQueue) -> Self {
        Self::Aws(queue)
    }
}

#[cfg(any(test, feature = "test-util"))]
impl From<MemoryQueue> for Queue {
    fn from(queue: MemoryQueue) -> Self {
        Self::Memory(Arc::new(queue))
    }
}

impl WorkQueue for Queue {
    async fn send(&self, body: String, trace: Option<&TraceHeader>) -> Result<()> {
        each!(self, b => WorkQueue::send(b, body, trace).await)
    }
}

/// The stack's bucket (`OUTPUT_BUCKET`): output files, and records too large for an item.
#[derive(Clone)]
pub enum Objects {
    /// S3.
    Aws(S3Bucket),
    /// In memory, shared by every clone.
    #[cfg(any(test, feature = "test-util"))]
    Memory(Arc<MemoryBucket>),
}

impl Objects {
    /// The in-memory bucket this is, for a test to look into.
    #[cfg(any(test, feature = "test-util"))]
    pub fn memory(&self) -> Option<&MemoryBucket> {
        match self {
            Self::Memory(bucket) => Some(bucket),
            Self::Aws(_) => None,
        }
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        each!(self, b => b.name())
    }

    /// Writes a whole object of `content_type`.
    pub async fn put_typed(&self, key: &str, body: bytes::Bytes, content_type: &str) -> Result<()> {
        each!(self, b => b.put_typed(key, body, content_type).await)
    }

    /// Starts a multipart upload: its ID.
    pub async fn start_upload(&self, key: &str, content_type: &str) -> Result<String> {
        each!(self, b => b.start_upload(key, content_type).await)
    }

    /// Uploads part `number` (from 1) of an upload: the part's ETag.
    pub async fn upload_part(&self, key: &str, upload: &str, number: i32, body: bytes::Bytes) -> Result<String> {
        each!(self, b => b.upload_part(key, upload, number, body).await)
    }

    /// Completes an upload of the parts whose ETags are `parts`, in order: the object
    /// appears, whole.
    pub async fn complete_upload(&self, key: &str, upload: &str, parts: Vec<String>) -> Result<()> {
        each!(self, b => b.complete_upload(key, upload, parts).await)
    }

    /// Drops an upload and its parts.
    pub async fn abort_upload(&self, key: &str, upload: &str) -> Result<()> {
        each!(self, b => b.abort_upload(key, upload).await)
    }
}

impl From<S3Bucket> for Objects {
    fn from(bucket: S3Bucket) -> Self {
        Self::Aws(bucket)
    }
}

#[cfg(any(test, feature = "test-util"))]
impl From<MemoryBucket> for Objects {
    fn from(bucket: MemoryBucket) -> Self {
        Self::Memory(Arc::new(bucket))
    }
}

impl Bucket for Objects {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        self.put_typed(key, body.into(), "application/json").await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        each!(self, b => b.get(key).await)
    }
}
