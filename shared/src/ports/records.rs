//! Where the work keeps what it made: named records per prediction and the steps it
//! ran once ([`RecordTable`], one item each), and the bucket that takes what does not
//! fit an item ([`Bucket`]). `wriftai_hooks::records` puts the two together under one size
//! policy; code that keeps records uses that, not these.

use std::future::Future;

use time::OffsetDateTime;

use crate::error::Result;
use crate::prediction::{PredictionId, Status};

/// A record as one item holds it: whole, in the bucket (its key), or cut to its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    /// The JSON text itself.
    Whole(String),
    /// Too large for an item: the JSON text is the bucket's object `key`.
    InBucket { key: String, bytes: u64, sha256: String },
    /// Too large for an item, and no bucket to hold it: only its size and digest.
    Cut { bytes: u64, sha256: String },
}

/// One step of one unit of work: the step `name` of the prediction `id` at `status`.
#[derive(Clone, Copy, Debug)]
pub struct StepKey<'a> {
    pub id: PredictionId,
    pub status: &'a Status,
    pub name: &'a str,
}

/// What beginning a step found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepState {
    /// No record of it: its intent is now recorded under `token` (fresh, unique to this
    /// beginning), and it is the caller's to run.
    Begun { token: String },
    /// Begun at `since` under `token` and never finished: it may or may not have had its
    /// effect. `tries`: the failed tries of it noted since ([`RecordTable::note_try`]).
    Started { since: OffsetDateTime, token: String, tries: u32 },
    /// Finished, with this outcome.
    Finished(Kept),
}

/// The table's side of the work's records: each record and each step in one item.
/// The DynamoDB adapter refuses an item over 400 KB, as DynamoDB does; the in-memory one
/// too. `wriftai_hooks::records` keeps every record under that.
pub trait RecordTable: Send + Sync {
    /// Puts record `name` of `id`, replacing an earlier one: a put, so a store done
    /// again leaves one record.
    fn put_record(&self, id: PredictionId, name: &str, record: &Kept) -> impl Future<Output = Result<()>> + Send;

    fn get_record(&self, id: PredictionId, name: &str) -> impl Future<Output = Result<Option<Kept>>> + Send;

    /// Records the intent of a step unless the step has a record already, in one
    /// conditional write, and says which. A write sent again after its answer was lost
    /// finds its own intent: that is `Begun` too. When the write's outcome stays unknown
    /// (an error), the intent it may have left is removed if time allows, so a later run
    /// does not take a step that never ran for one that may have.
    fn begin_step(&self, step: StepKey<'_>, now: OffsetDateTime) -> impl Future<Output = Result<StepState>> + Send;

    /// Notes one failed try of a step begun and not finished; `try_id` names the try, so
    /// the note sent again after its answer was lost counts once.
    fn note_try(&self, step: StepKey<'_>, try_id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Records a step's outcome. Done again, it leaves the same record.
    fn finish_step(
        &self,
        step: StepKey<'_>,
        outcome: &Kept,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes a step's record, finished or not: the next run runs it again.
    fn forget_step(&self, step: StepKey<'_>) -> impl Future<Output = Result<()>> + Send;
}

/// Where a record too large for an item is kept: the stack's bucket.
pub trait Bucket: Send + Sync {
    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<()>> + Send;

    /// `None` when there is no such object.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
}

impl<T: RecordTable + ?Sized> RecordTable for &T {
    fn put_record(&self, id: PredictionId, name: &str, record: &Kept) -> impl Future<Output = Result<()>> + Send {
        (**self).put_record(id, name, record)
    }

    fn get_record(&self, id: PredictionId, name: &str) -> impl Future<Output = Result<Option<Kept>>> + Send {
        (**self).get_record(id, name)
    }

    fn begin_step(&self, step: StepKey<'_>, now: OffsetDateTime) -> impl Future<Output = Result<StepState>> + Send {
        (**self).begin_step(step, now)
    }

    fn note_try(&self, step: StepKey<'_>, try_id: &str) -> impl Future<Output = Result<()>> + Send {
        (**self).note_try(step, try_id)
    }

    fn finish_step(
        &self,
        step: StepKey<'_>,
        outcome: &Kept,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).finish_step(step, outcome, now)
    }

    fn forget_step(&self, step: StepKey<'_>) -> impl Future<Output = Result<()>> + Send {
        (**self).forget_step(step)
    }
}
