//! Named records of any size, and the one size policy for everything the worker keeps
//! in the table.
//!
//! DynamoDB stops an item at 400 KB, and bills a write a unit a KB. A record whose JSON
//! text is at most [`RECORD_ITEM_BYTES`] is kept whole in its item. A larger one goes to
//! the bucket as one JSON object, its item keeping the key, size and SHA-256; without a
//! bucket, one of up to [`ITEM_BYTES`] stays whole and a larger one keeps only the size
//! and SHA-256. So a record of any size is stored, and the work that stores it ends.
//! The result kept with an event, beside a payload of up to [`ITEM_BYTES`], is held to
//! [`RESULT_BYTES`] ([`cut`]). Nothing else in the code measures what it keeps.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::adapters::backend::{Objects, Table};
use crate::error::{Error, Result};
use crate::ports::{Bucket, Kept, RecordTable};
use crate::prediction::PredictionId;

/// The most JSON text a record keeps in its item, and the most of a body a unit of work
/// keeps: room is left for the item's other attributes under DynamoDB's 400 KB.
pub const ITEM_BYTES: usize = 350_000;

/// The most JSON text a record keeps in its own item when the stack has a bucket. A
/// larger one is cheaper there: its `PutObject` ($5 a million) costs what 8 write units
/// do ($0.625 a million each, on demand), plus one for the item that points at it, while
/// in the item every KB is a unit; and a GB kept costs $0.023 a month there against
/// $0.25. A step's outcome stays in its item up to [`ITEM_BYTES`]: the bucket keeps it
/// with no expiry of its own.
pub const RECORD_ITEM_BYTES: usize = 8 * 1024;

/// The room in an event item for its body, with the model and `updated_at` it keeps: one
/// write unit (1 KB) less about 400 bytes of the item's other attributes, its claim and
/// its completion (with a small result) included. A body that fits there costs nothing
/// more to keep. A larger one is kept apart, once, by the run that works it
/// (`Claims::keep_body`), so the event's own writes (the receiver's, the claim, the
/// completion, a release) cost one unit each, not one a KB of the body.
pub const EVENT_BODY_BYTES: usize = 1024 - 400;

/// Whether a body the event does not hold is kept at all, by the run that works it: one
/// larger than [`ITEM_BYTES`] is not (a resend of its work goes by reference).
pub fn body_fits_item(body: &str) -> bool {
    body.len() <= ITEM_BYTES
}

/// Whether an event item keeps its `body` itself: it fits in [`EVENT_BODY_BYTES`] with
/// the `model` and `updated_at` kept beside it (whose lengths the body's sender chose).
pub fn event_keeps_body(body: &str, model: Option<&str>, updated_at: Option<&str>) -> bool {
    let beside = model.map_or(0, str::len) + updated_at.map_or(0, str::len);
    body.len().saturating_add(beside) <= EVENT_BODY_BYTES
}

/// The most of a work result kept with its event, which may already hold a payload of
/// [`ITEM_BYTES`]. A larger result is kept as its size and SHA-256.
pub const RESULT_BYTES: usize = 16 * 1024;

/// A name longer than this is kept under its SHA-256 instead (an item's sort key, an
/// object key segment): names can come from a webhook body.
const NAME_BYTES: usize = 200;

/// The work's named records, per prediction, of any size: JSON values kept in the
/// stack's table, or in its bucket when over [`RECORD_ITEM_BYTES`]. Get them from
/// [`Context::records`](crate::Context::records).
#[derive(Clone, Copy)]
pub struct Records<'a> {
    table: &'a Table,
    bucket: Option<&'a Objects>,
}

impl<'a> Records<'a> {
    /// Records on `table`; those over [`RECORD_ITEM_BYTES`] go to `bucket`, or without one
    /// stay whole up to [`ITEM_BYTES`] and beyond are kept as their size.
    #[doc(hidden)]
    pub fn new(table: &'a Table, bucket: Option<&'a Objects>) -> Self {
        Self { table, bucket }
    }

    pub(crate) fn table(&self) -> &'a Table {
        self.table
    }

    /// Stores `record` as `name` for `id`, replacing an earlier one.
    pub async fn store(&self, id: PredictionId, name: &str, record: &Value) -> Result<()> {
        let whole_up_to = if self.bucket.is_some() { RECORD_ITEM_BYTES } else { ITEM_BYTES };
        let kept = self.keep("records", id, &key_segment(name), record, whole_up_to).await?;
        self.table.put_record(id, name, &kept).await
    }

    /// The record `name` of `id`, read back from its item or the bucket. A record that
    /// was cut reads as `{"omitted_bytes": n, "sha256": "..."}`; one whose object the
    /// bucket's expiry took reads as gone.
    pub async fn load(&self, id: PredictionId, name: &str) -> Result<Option<Value>> {
        let Some(kept) = self.table.get_record(id, name).await? else { return Ok(None) };
        if let (Kept::InBucket { key, .. }, Some(bucket)) = (&kept, self.bucket) {
            // The bucket's rule for `records/` counts from the object's put, the item's
            // TTL from the item's write (and `RecordRetentionDays` turned on or lowered
            // reaches older objects at once): an object past the rule is gone, as its
            // item soon is, not corrupt.
            let Some(body) = bucket.get(key).await? else { return Ok(None) };
            return serde_json::from_slice(&body).map(Some).map_err(|_| corrupt(key, "a record's object is not JSON"));
        }
        self.restore(&kept).await.map(Some)
    }

    /// Keeps `value` whole in an item if its JSON text is at most `whole_up_to` bytes (at
    /// most [`ITEM_BYTES`]), else in the bucket at `<prefix>/<id>/<path>.json`: `records`
    /// (expired with the retention by the template's lifecycle rule) or `steps` (no rule:
    /// a step's outcome lives as long as its step item); or cut. Apart from the output
    /// files under `predictions/`, so that their expiry (`OutputExpiryDays`) never takes
    /// an object an item still points at.
    pub(crate) async fn keep(
        &self,
        prefix: &str,
        id: PredictionId,
        path: &str,
        value: &Value,
        whole_up_to: usize,
    ) -> Result<Kept> {
        let text = value.to_string();
        if text.len() <= whole_up_to.min(ITEM_BYTES) {
            return Ok(Kept::Whole(text));
        }
        let (bytes, sha256) = (text.len() as u64, hex::encode(Sha256::digest(text.as_bytes())));
        Ok(match self.bucket {
            Some(bucket) => {
                let key = format!("{prefix}/{id}/{path}.json");
                bucket.put(&key, text.into_bytes()).await?;
                Kept::InBucket { key, bytes, sha256 }
            }
            None => Kept::Cut { bytes, sha256 },
        })
    }

    pub(crate) async fn restore(&self, kept: &Kept) -> Result<Value> {
        match kept {
            Kept::Whole(text) => serde_json::from_str(text).map_err(|_| corrupt(text, "a record is not JSON")),
            Kept::InBucket { key, .. } => {
                let gone = || Error::Corrupt { key: key.clone(), reason: "the record's object is not in the bucket" };
                let body = match self.bucket {
                    Some(bucket) => bucket.get(key).await?.ok_or_else(gone)?,
                    None => return Err(gone()),
                };
                serde_json::from_slice(&body).map_err(|_| corrupt(key, "a record's object is not JSON"))
            }
            Kept::Cut { bytes, sha256 } => Ok(json!({"omitted_bytes": bytes, "sha256": sha256})),
        }
    }
}

fn corrupt(key: &str, reason: &'static str) -> Error {
    Error::Corrupt { key: key.chars().take(80).collect(), reason }
}

/// `value`, or its size and SHA-256 when its JSON text is larger than `limit`.
pub fn cut(value: Value, limit: usize) -> Value {
    let text = value.to_string();
    if text.len() <= limit {
        return value;
    }
    json!({"omitted_bytes": text.len(), "sha256": hex::encode(Sha256::digest(text.as_bytes()))})
}

/// `name` as one segment of an object key, one to one: ASCII letters, digits, `-` and
/// `_` stay; every other byte becomes `~` and two hex digits; an empty name is `~`. No
/// segment holds `/` or `.`, so segments joined by `/` and followed by an extension name
/// one object each. A name over 200 bytes becomes `~h` and its SHA-256, which no other
/// name encodes to.
pub fn key_segment(name: &str) -> String {
    if name.is_empty() {
        return "~".into();
    }
    if name.len() > NAME_BYTES {
        return format!("~h{}", hex::encode(Sha256::digest(name.as_bytes())));
    }
    let mut segment = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            segment.push(char::from(byte));
        } else {
            segment.push_str(&format!("~{byte:02X}"));
        }
    }
    segment
}

/// `name` as an item's sort key holds it: itself, or over 200 bytes its SHA-256.
pub fn item_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() > NAME_BYTES {
        return format!("~h{}", hex::encode(Sha256::digest(name.as_bytes()))).into();
    }
    name.into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_key_segment_keeps_plain_names_and_encodes_the_rest_one_to_one() {
        assert_eq!(key_segment("images"), "images");
        assert_eq!(key_segment("a b"), "a~20b");
        assert_eq!(key_segment("a_b"), "a_b");
        assert_eq!(key_segment("a.png"), "a~2Epng");
        assert_eq!(key_segment("~"), "~7E");
        assert_eq!(key_segment(""), "~");
        assert_eq!(key_segment("图"), "~E5~9B~BE");
        let long = key_segment(&"x".repeat(201));
        assert!(long.starts_with("~h") && long.len() == 66, "{long}");
    }

    /// Issue 34: a 20 KB result record cost 21 write units in its item; in the bucket it
    /// costs one `PutObject` and a unit for the item that points at it.
    #[tokio::test]
    async fn a_record_over_8_kb_goes_to_the_bucket_and_without_one_stays_whole_up_to_an_item() {
        let id = PredictionId::random();
        // JSON strings: the text is the quotes and the letters.
        let (at_limit, over) = (json!("r".repeat(RECORD_ITEM_BYTES - 2)), json!("r".repeat(RECORD_ITEM_BYTES - 1)));
        let ctx = crate::Context::in_memory(());
        ctx.records().store(id, "small", &at_limit).await.unwrap();
        ctx.records().store(id, "large", &over).await.unwrap();
        assert!(matches!(ctx.memory_table().kept(id, "small"), Some((Kept::Whole(_), 1))));
        assert!(matches!(ctx.memory_table().kept(id, "large"), Some((Kept::InBucket { .. }, 1))));
        assert_eq!(ctx.memory_bucket().keys(), [format!("records/{id}/large.json")]);
        assert_eq!(ctx.records().load(id, "large").await.unwrap(), Some(over.clone()), "read back whole");

        // The bucket's expiry took the object, the item lives on: gone, not corrupt.
        let expired =
            ctx.memory_bucket().expire("records/", crate::clock::now() + Duration::from_secs(2), Duration::ZERO);
        assert_eq!(expired, 1);
        assert_eq!(ctx.records().load(id, "large").await.unwrap(), None, "an expired object reads as gone");

        let bare = crate::Context::in_memory(()).without_files();
        bare.records().store(id, "large", &over).await.unwrap();
        assert!(matches!(bare.memory_table().kept(id, "large"), Some((Kept::Whole(_), 1))), "no bucket: whole");
    }

    #[test]
    fn a_value_larger_than_its_limit_is_cut_to_its_size_and_digest() {
        assert_eq!(cut(json!({"a": 1}), 100), json!({"a": 1}));
        let large = json!("x".repeat(200));
        let kept = cut(large.clone(), 100);
        assert_eq!(kept["omitted_bytes"], large.to_string().len());
        assert_eq!(kept["sha256"].as_str().map(str::len), Some(64));
    }
}
