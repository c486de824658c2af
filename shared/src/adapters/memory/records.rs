//! In-memory records and steps, and an in-memory bucket for what does not fit an item.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;

use time::OffsetDateTime;

use super::{MemoryLedger, RecordRow, StepRow, Weather, take_one, under};
use crate::error::{Error, Result};
use crate::ports::{Bucket, Kept, RecordTable, StepKey, StepState};
use crate::prediction::PredictionId;

/// DynamoDB refuses an item over 400 KB, with a validation error: modelled here on the
/// bytes that can grow (a payload, a result, a record), so tests see the same refusal.
pub(super) fn refuse_over_item_limit(bytes: usize) -> Result<()> {
    if bytes > 400 * 1024 {
        return Err(Error::store("UpdateItem", "ValidationException: item size has exceeded the maximum allowed size"));
    }
    Ok(())
}

fn size(kept: &Kept) -> usize {
    match kept {
        Kept::Whole(text) => text.len(),
        Kept::InBucket { key, sha256, .. } => key.len() + sha256.len(),
        Kept::Cut { sha256, .. } => sha256.len(),
    }
}

fn step_key(step: StepKey<'_>) -> (PredictionId, String, String) {
    (step.id, step.status.to_string(), step.name.to_owned())
}

impl StepRow {
    fn new(started_at: OffsetDateTime, token: String) -> Self {
        Self { started_at, token, tries: Default::default(), outcome: None, expires_at: None }
    }
}

impl RecordTable for MemoryLedger {
    async fn put_record(&self, id: PredictionId, name: &str, record: &Kept) -> Result<()> {
        refuse_over_item_limit(size(record))?;
        let expires_at = self.record_expiry(crate::clock::now());
        self.call("UpdateItem", |state| {
            let stores = state.records.get(&(id, name.to_owned())).map_or(0, |row| row.stores);
            let row = RecordRow { kept: record.clone(), stores: stores + 1, expires_at };
            state.records.insert((id, name.to_owned()), row);
            Ok(())
        })
        .await
    }

    async fn get_record(&self, id: PredictionId, name: &str) -> Result<Option<Kept>> {
        // The bucket's expiry is on time, DynamoDB's TTL days late: a record past its time
        // is gone, whatever is left of it.
        let now = crate::clock::now();
        self.call("GetItem", |state| {
            let row = state.records.get(&(id, name.to_owned()));
            Ok(row.filter(|row| row.expires_at.is_none_or(|at| at > now)).map(|row| row.kept.clone()))
        })
        .await
    }

    async fn begin_step(&self, step: StepKey<'_>, now: OffsetDateTime) -> Result<StepState> {
        let token = uuid::Uuid::new_v4().to_string();
        let begun = self
            .call("PutItem", |state| {
                // A step past its expiry (only a done unit's steps expire) is gone, as
                // the DynamoDB adapter's condition takes it: a replay runs it afresh.
                let expired =
                    |row: &StepRow| row.expires_at.is_some_and(|at| at.unix_timestamp() <= now.unix_timestamp());
                Ok(match state.steps.get(&step_key(step)) {
                    None => {
                        state.steps.insert(step_key(step), StepRow::new(now, token.clone()));
                        StepState::Begun { token: token.clone() }
                    }
                    Some(row) if expired(row) => {
                        state.steps.insert(step_key(step), StepRow::new(now, token.clone()));
                        StepState::Begun { token: token.clone() }
                    }
                    Some(row) if row.token == token => StepState::Begun { token: token.clone() },
                    Some(StepRow { outcome: Some(outcome), .. }) => StepState::Finished(outcome.clone()),
                    Some(row) => StepState::Started {
                        since: row.started_at,
                        token: row.token.clone(),
                        tries: u32::try_from(row.tries.len()).unwrap_or(u32::MAX),
                    },
                })
            })
            .await;
        if begun.is_err() {
            // Its outcome is unknown, as the DynamoDB adapter takes it: the intent may be
            // there, and no run would own it, so it is taken back if it is this one's.
            let take_back = self.call("DeleteItem", |state| {
                if state.steps.get(&step_key(step)).is_some_and(|row| row.token == token) {
                    state.steps.remove(&step_key(step));
                }
                Ok(())
            });
            let _left_behind = take_back.await;
        }
        begun
    }

    async fn note_try(&self, step: StepKey<'_>, try_id: &str) -> Result<()> {
        self.call("UpdateItem", |state| {
            if let Some(row) = state.steps.get_mut(&step_key(step)).filter(|row| row.outcome.is_none()) {
                row.tries.insert(try_id.to_owned());
            }
            Ok(())
        })
        .await
    }

    async fn finish_step(&self, step: StepKey<'_>, outcome: &Kept, now: OffsetDateTime) -> Result<()> {
        refuse_over_item_limit(size(outcome))?;
        // No expiry yet: it comes with the event's, once the work is done.
        self.call("UpdateItem", |state| {
            let row = state.steps.entry(step_key(step)).or_insert_with(|| StepRow::new(now, String::new()));
            row.outcome = Some(outcome.clone());
            Ok(())
        })
        .await
    }

    async fn forget_step(&self, step: StepKey<'_>) -> Result<()> {
        self.call("DeleteItem", |state| {
            state.steps.remove(&step_key(step));
            Ok(())
        })
        .await
    }
}

/// A bucket in memory: objects by key (with when each was written), the uploads under
/// way, and a switch to make the next puts fail.
#[derive(Default)]
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<String, (Vec<u8>, OffsetDateTime)>>,
    /// Multipart uploads begun and not completed: their key and parts so far.
    uploads: Mutex<BTreeMap<String, (String, Vec<Bytes>)>>,
    weather: Option<Weather>,
    /// Makes the next N puts fail as an unreachable S3 would.
    pub fail_next: AtomicUsize,
}

impl MemoryBucket {
    /// The same bucket, each call under `weather`.
    pub fn under(self, weather: Weather) -> Self {
        Self { weather: Some(weather), ..self }
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// Multipart uploads begun and neither completed nor aborted.
    pub fn uploads_open(&self) -> usize {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn name(&self) -> &str {
        "memory"
    }

    async fn call<T>(&self, op: &'static str, apply: impl FnOnce() -> Result<T>) -> Result<T> {
        under(self.weather.as_ref(), op, apply).await.map_err(|err| match err {
            Error::Store { op, source } => Error::bucket(op, source),
            other => other,
        })
    }

    pub async fn put_typed(&self, key: &str, body: Bytes, _content_type: &str) -> Result<()> {
        if take_one(&self.fail_next).is_some() {
            return Err(Error::bucket("PutObject", "injected fault"));
        }
        self.call("PutObject", || {
            let now = crate::clock::now();
            self.objects.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), (body.to_vec(), now));
            Ok(())
        })
        .await
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.call("GetObject", || {
            Ok(self.objects.lock().unwrap_or_else(|p| p.into_inner()).get(key).map(|(body, _)| body.clone()))
        })
        .await
    }

    /// Deletes every object under `prefix` (`hooks forget`): the keys deleted.
    pub async fn delete_under(&self, prefix: &str) -> Result<Vec<String>> {
        self.call("DeleteObjects", || {
            let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<String> = objects.keys().filter(|key| key.starts_with(prefix)).cloned().collect();
            for key in &keys {
                objects.remove(key);
            }
            Ok(keys)
        })
        .await
    }

    /// S3's lifecycle rule at `now`: deletes the objects under `prefix` written `age` ago
    /// or earlier. Returns how many.
    pub fn expire(&self, prefix: &str, now: OffsetDateTime, age: std::time::Duration) -> usize {
        let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let before = objects.len();
        objects.retain(|key, (_, written)| !key.starts_with(prefix) || *written + age > now);
        before - objects.len()
    }

    pub async fn start_upload(&self, key: &str, _content_type: &str) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        self.uploads.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), (key.to_owned(), Vec::new()));
        Ok(id)
    }

    pub async fn upload_part(&self, key: &str, upload: &str, number: i32, body: Bytes) -> Result<String> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let (of, parts) = uploads.get_mut(upload).ok_or_else(|| Error::bucket("UploadPart", "NoSuchUpload"))?;
        if of != key || usize::try_from(number) != Ok(parts.len() + 1) {
            return Err(Error::bucket("UploadPart", "a part out of order, or of another key"));
        }
        parts.push(body);
        Ok(format!("etag-{number}"))
    }

    pub async fn complete_upload(&self, key: &str, upload: &str, parts: Vec<String>) -> Result<()> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let (of, uploaded) =
            uploads.get(upload).ok_or_else(|| Error::bucket("CompleteMultipartUpload", "NoSuchUpload"))?;
        // As S3: a completion refused leaves the upload open, until it is aborted.
        if of != key || parts.len() != uploaded.len() {
            return Err(Error::bucket("CompleteMultipartUpload", "InvalidPart"));
        }
        let whole = uploads.remove(upload).map(|(_, parts)| parts.concat()).unwrap_or_default();
        drop(uploads);
        let now = crate::clock::now();
        self.objects.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), (whole, now));
        Ok(())
    }

    pub async fn abort_upload(&self, _key: &str, upload: &str) -> Result<()> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner()).remove(upload);
        Ok(())
    }
}

impl Bucket for MemoryBucket {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        self.put_typed(key, body.into(), "application/json").await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        MemoryBucket::get(self, key).await
    }
}
