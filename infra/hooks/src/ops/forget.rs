//! `hooks forget`: erases one prediction from the stack: its items in the table (the
//! prediction, its events with their payloads, its records, its steps) and its objects in
//! the bucket (the output files, the records kept there). What is left is a mark that it
//! was forgotten, and when, kept [`MARK_KEPT`] and nothing else: from then on a webhook
//! for it is answered 200 and recorded nowhere, and a message for it (in flight, or
//! redriven from the DLQ) is dropped without running. The ID itself is WriftAI's random
//! UUID, not the customer's data.
//!
//! In that order: mark, objects, items. Interrupted anywhere, the same command again
//! finishes the job, and once everything is gone it says so: safe to run twice.

use std::time::Duration;

use serde_json::{Value, json};
use shared::adapters::dynamo::FORGOTTEN_SK as MARK;
use shared::prediction::PredictionId;
use time::OffsetDateTime;

use super::Ops;
use crate::error::{Error, Result};

/// How long the mark outlives the erasure: past WriftAI's retries of a delivery and the
/// 14 days a message can wait in the queue or its dead-letter queue.
pub const MARK_KEPT: Duration = Duration::from_secs(30 * 86_400);

pub async fn forget(ops: &Ops, id: PredictionId) -> Result<Value> {
    let items = ops.ledger().prediction_items(id).await?;
    if items.is_empty() {
        return Err(Error::NoSuchPrediction(id));
    }
    let now = OffsetDateTime::now_utc();
    let mark = items.iter().find(|item| item["sk"] == MARK);
    let rest: Vec<&Value> = items.iter().filter(|item| item["sk"] != MARK).collect();
    // A run holding the work would write its records back after they are deleted.
    if rest.iter().any(|item| held(item, now)) {
        return Err(Error::NotForgotten { id, why: "a run holds its work now; try again when it ends" });
    }
    let (s3, bucket) = ops.bucket.as_ref().ok_or(Error::Unset {
        var: "OUTPUT_BUCKET",
        what: "the stack's OutputBucketName output: forget deletes the prediction's objects there",
    })?;
    if mark.is_none() {
        let until = now + MARK_KEPT;
        ops.ledger().mark_forgotten(id, now, until).await?;
    }
    let mut objects = Vec::new();
    for prefix in [format!("predictions/{id}/"), format!("records/{id}/")] {
        objects.extend(delete_objects(s3, bucket, &prefix).await?);
    }
    let sort_keys: Vec<String> = rest.iter().filter_map(|item| item["sk"].as_str().map(str::to_owned)).collect();
    ops.ledger().delete_items(id, &sort_keys).await?;

    let since = mark.and_then(|m| m["forgotten_at"].as_str()).map(str::to_owned);
    let mut lines = vec![match (&since, sort_keys.len() + objects.len()) {
        (Some(at), 0) => format!("{id}: forgotten already (at {at}); nothing left to delete"),
        (Some(at), _) => format!("{id}: forgotten at {at}; deleted what an interrupted run left:"),
        (None, _) => format!("{id}: forgotten; deleted:"),
    }];
    lines.extend(sort_keys.iter().map(|sk| format!("  item {sk}")));
    lines.extend(objects.iter().map(|key| format!("  object {key}")));
    if since.is_none() {
        let kept = MARK_KEPT.as_secs() / 86_400;
        lines.push(format!("kept: a mark that it was forgotten, for {kept} days; later webhooks for it are dropped"));
    }
    Ok(json!(lines.join("\n")))
}

/// Whether a run holds a live claim on this event now.
fn held(item: &Value, now: OffsetDateTime) -> bool {
    item.get("work_token").is_some() && item["work_until"].as_i64().is_some_and(|until| until > now.unix_timestamp())
}

/// Deletes every object under `prefix`, every version of it (a bucket with
/// `OutputVersioning` on keeps the old ones behind a plain delete), a page at a time;
/// the keys deleted.
async fn delete_objects(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<String>> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let failed = || format!("deleting objects under s3://{bucket}/{prefix}");
    let mut deleted = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let listed = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
            .map_err(|e| Error::aws(format!("listing s3://{bucket}/{prefix}"), e))?;
        let versions = listed.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = listed.delete_markers().iter().map(|m| (m.key(), m.version_id()));
        let objects = versions
            .chain(markers)
            .filter_map(|(key, version)| Some((key?, version)))
            .map(|(key, version)| {
                ObjectIdentifier::builder().key(key).set_version_id(version.map(str::to_owned)).build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::aws(failed(), e))?;
        if !objects.is_empty() {
            let keys: Vec<String> = objects.iter().map(|o| o.key().to_owned()).collect();
            let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build();
            let delete = delete.map_err(|e| Error::aws(failed(), e))?;
            let out =
                s3.delete_objects().bucket(bucket).delete(delete).send().await.map_err(|e| Error::aws(failed(), e))?;
            if let Some(refused) = out.errors().first() {
                let why = format!("{}: {}", refused.key().unwrap_or("?"), refused.message().unwrap_or("refused"));
                return Err(Error::aws(failed(), why));
            }
            for key in keys {
                if !deleted.contains(&key) {
                    deleted.push(key);
                }
            }
        }
        if listed.is_truncated() != Some(true) {
            return Ok(deleted);
        }
        key_marker = listed.next_key_marker().map(str::to_owned);
        version_marker = listed.next_version_id_marker().map(str::to_owned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_claim_that_has_not_expired_holds_the_work() {
        let now = OffsetDateTime::now_utc();
        let at =
            |secs: i64| json!({"sk": "EVENT#succeeded", "work_token": "t", "work_until": now.unix_timestamp() + secs});
        assert!(held(&at(60), now));
        assert!(!held(&at(-1), now), "an expired claim holds nothing");
        assert!(!held(&json!({"sk": "EVENT#succeeded", "work": "done"}), now));
    }
}
