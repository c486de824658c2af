//! In-memory records and steps, and an in-memory bucket for what does not fit an item.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;

use time::OffsetDateTime;

use super::{MemoryLedger, StepRow, take_one};
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
        Self { started_at, token, tries: Default::default(), outcome: None }
    }
}

impl RecordTable for MemoryLedger {
    async fn put_record(&self, id: PredictionId, name: &str, record: &Kept) -> Result<()> {
        refuse_over_item_limit(size(record))?;
        let mut state = self.lock();
        let entry =
            state.records.entry((id, name.to_owned())).or_insert((Kept::Cut { bytes: 0, sha256: String::new() }, 0));
        *entry = (record.clone(), entry.1 + 1);
        Ok(())
    }

    async fn get_record(&self, id: PredictionId, name: &str) -> Result<Option<Kept>> {
        Ok(self.lock().records.get(&(id, name.to_owned())).map(|(kept, _)| kept.clone()))
    }

    async fn begin_step(&self, step: StepKey<'_>, now: OffsetDateTime) -> Result<StepState> {
        let mut state = self.lock();
        Ok(match state.steps.get(&step_key(step)) {
            None => {
                let token = uuid::Uuid::new_v4().to_string();
                state.steps.insert(step_key(step), StepRow::new(now, token.clone()));
                StepState::Begun { token }
            }
            Some(StepRow { outcome: Some(outcome), .. }) => StepState::Finished(outcome.clone()),
            Some(row) => StepState::Started {
                since: row.started_at,
                token: row.token.clone(),
                tries: u32::try_from(row.tries.len()).unwrap_or(u32::MAX),
            },
        })
    }

    async fn note_try(&self, step: StepKey<'_>, try_id: &str) -> Result<()> {
        if let Some(row) = self.lock().steps.get_mut(&step_key(step)).filter(|row| row.outcome.is_none()) {
            row.tries.insert(try_id.to_owned());
        }
        Ok(())
    }

    async fn finish_step(&self, step: StepKey<'_>, outcome: &Kept, now: OffsetDateTime) -> Result<()> {
        refuse_over_item_limit(size(outcome))?;
        let mut state = self.lock();
        let row = state.steps.entry(step_key(step)).or_insert_with(|| StepRow::new(now, String::new()));
        row.outcome = Some(outcome.clone());
        Ok(())
    }

    async fn forget_step(&self, step: StepKey<'_>) -> Result<()> {
        self.lock().steps.remove(&step_key(step));
        Ok(())
    }
}

/// A bucket in memory: objects by key, the uploads under way, and a switch to make the
/// next puts fail.
#[derive(Default)]
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Multipart uploads begun and not completed: their key and parts so far.
    uploads: Mutex<BTreeMap<String, (String, Vec<Bytes>)>>,
    /// Makes the next N puts fail as an unreachable S3 would.
    pub fail_next: AtomicUsize,
}

impl MemoryBucket {
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

    pub async fn put_typed(&self, key: &str, body: Bytes, _content_type: &str) -> Result<()> {
        if take_one(&self.fail_next).is_some() {
            return Err(Error::bucket("PutObject", "injected fault"));
        }
        self.objects.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), body.to_vec());
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.objects.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned())
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
        self.objects.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), whole);
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
