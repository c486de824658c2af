//! The reconciler's port: the two sparse indexes it walks (unfinished predictions,
//! unfinished work), each spread over partition key values (`wriftai_hooks::shards`), and its
//! place in them between runs.

use std::future::Future;

use serde_json::Value;
use time::OffsetDateTime;

use crate::error::Result;
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenPrediction {
    pub id: PredictionId,
    pub registered_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleWork {
    pub id: PredictionId,
    pub status: Status,
    /// When it was recorded, or last enqueued again.
    pub since: OffsetDateTime,
}

/// One page of one partition of an index; `next` resumes after it (opaque), `None` at
/// the end.
/// Which page of one partition of an index to read: its items from `from` (inclusive)
/// to before `before`, oldest first, past the page whose end is `after`, at most `limit`.
#[derive(Clone, Copy, Debug)]
pub struct PageAsk<'a> {
    pub partition: &'a str,
    pub from: Option<OffsetDateTime>,
    pub before: OffsetDateTime,
    pub after: Option<&'a str>,
    pub limit: u32,
}

#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What the reconciler reads and writes. A walk reads each partition of an index a page
/// at a time and merges them, oldest first (`wriftai_hooks::walk`).
pub trait ReconcileStore: Send + Sync {
    /// The partition key values of `index` a walk reads: every shard of the widest count
    /// the table was ever written with (as last learned), and the one value of tables
    /// written before sharding.
    fn partitions(&self, index: Index) -> Vec<String>;

    /// Records this stack's shard count if it is wider than any before, and learns the
    /// widest: once a run, before its walks, so a lowered `INDEX_SHARDS` never hides an
    /// item written in the shards above it (issue 33, defect 11).
    fn learn_shards(&self) -> impl Future<Output = Result<()>> + Send;

    /// One page of the unfinished predictions of a partition, by when they were registered.
    fn open_predictions(&self, ask: PageAsk<'_>) -> impl Future<Output = Result<Page<OpenPrediction>>> + Send;

    /// Takes a prediction out of the unfinished set for good, saying why (`not_found`,
    /// `overdue`): it is never polled again.
    fn close(&self, id: PredictionId, reason: &str, now: OffsetDateTime) -> impl Future<Output = Result<()>> + Send;

    /// One page of the events of a partition needing work that was not done, by when they
    /// were recorded or last enqueued.
    fn stale_work(&self, ask: PageAsk<'_>) -> impl Future<Output = Result<Page<StaleWork>>> + Send;

    /// The payload kept for an event's work: with the event when it is small, else the
    /// one a run of it kept (`Claims::keep_body`) while that is live; none when neither.
    fn work_payload(&self, id: PredictionId, status: &Status) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Counts one more requeue of an event's work and restarts its staleness clock.
    /// The requeues so far, this one included; `None` when the work left the `work`
    /// index meanwhile (done).
    fn touch_work(
        &self,
        id: PredictionId,
        status: &Status,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<u32>>> + Send;

    /// Takes work out of the `work` index for good, saying why (`gave_up`): the
    /// reconciler sent it to the dead-letter queue instead of requeueing it again.
    fn give_up_work(
        &self,
        id: PredictionId,
        status: &Status,
        reason: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Where the walk named `walk` stopped when a run was cut short.
    fn cursor(&self, walk: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    fn save_cursor(&self, walk: &str, cursor: Option<&str>) -> impl Future<Output = Result<()>> + Send;

    /// Keeps the summary of the latest run, for `hooks status`.
    fn save_last_run(&self, summary: &Value, at: OffsetDateTime) -> impl Future<Output = Result<()>> + Send;

    /// The latest run: `{"ran_at": ..., "summary": {...}}`.
    fn last_run(&self) -> impl Future<Output = Result<Option<Value>>> + Send;
}
