//! `hooks forget`: erases one prediction from the stack: its items in the table (the
//! prediction, its events and their bodies, its records, its steps) and its objects in
//! the bucket (the output files, the records kept there). What is left is a mark that it
//! was forgotten, and when, kept [`MARK_KEPT`] and nothing else: from then on a webhook
//! for it is answered 200 and recorded nowhere, and a message for it (in flight, or
//! redriven from the DLQ) is dropped without running. The ID itself is WriftAI's random
//! UUID, not the customer's data.
//!
//! In that order: a fence on each unit of work, held as a run's claim is, so no run
//! starts and writes records, steps or objects back (refused, and the fences taken back,
//! changing nothing, while a run holds one); each unit of work sealed for good, so no
//! claim or replay of it succeeds once the fences expire, however the erasure ends; the
//! mark; the prediction's own item, after which every write of a delivery or a `GET`
//! finds no prediction and takes the forgotten path; the objects;
//! the rest of the items; then the table is read again until only the mark is left.
//! Interrupted anywhere, the same command again finishes the job, and once everything is
//! gone it says so: safe to run twice.

use std::time::Duration;

use crate::adapters::dynamo::FORGOTTEN_SK as MARK;
use crate::prediction::PredictionId;
use serde_json::{Value, json};

use super::error::{OpsError as Error, Result};
use super::{Ops, OpsBucket};

/// How long the mark outlives the erasure: past WriftAI's retries of a delivery and a
/// message's 14 days in the queue. A message later still (from the DLQ after a
/// redrive, which starts its 14 days afresh) meets its sealed event, if an interrupted
/// erasure left it, or no event at all: it is kept in the DLQ, never run.
pub const MARK_KEPT: Duration = Duration::from_secs(30 * 86_400);

/// How long a fence holds the work: past any erasure's time, short enough that one
/// stopped halfway lets the work be claimed again by the next day.
const FENCE_HELD: Duration = Duration::from_secs(86_400);

/// Reads of the table after the deletes before what is left is taken as written by
/// something that is still running.
const SWEEPS: usize = 3;

/// Erases one prediction (`hooks forget`): its items in the table, its records and
/// steps, its objects in the bucket, its work fenced first so no run writes them back;
/// keeps only a mark that it was forgotten ([`MARK_KEPT`]), so later webhooks and messages
/// for it are dropped. Safe to run twice; one stopped halfway is finished by the next.
pub async fn forget(ops: &Ops, id: PredictionId) -> Result<Value> {
    let items = ops.ledger().prediction_items(id).await?;
    if items.is_empty() {
        return Err(Error::NoSuchPrediction(id));
    }
    let now = crate::clock::now();
    let mark = items.iter().find(|item| item["sk"] == MARK);
    let since = mark.and_then(|m| m["forgotten_at"].as_str()).map(str::to_owned);
    let bucket = ops.bucket.as_ref().ok_or(Error::Unset {
        var: "OUTPUT_BUCKET",
        what: "the stack's OutputBucketName output: forget deletes the prediction's objects there",
    })?;
    // Before the mark, a refusal takes its fences back and changes nothing; once marked
    // (an earlier run's), the fences stay, so nothing of a forgotten prediction runs.
    fence(ops, id, &items, mark.is_none()).await?;
    // Fenced: each unit of work sealed for good before the mark, so whatever stops this
    // run from here on, no claim of it succeeds once its fence expires.
    seal(ops, id, &items).await?;
    if mark.is_none() {
        ops.ledger().mark_forgotten(id, now, now + MARK_KEPT).await?;
    }
    // The prediction first: from now on every write for it fails its condition. An event
    // recorded between the first read and this delete is fenced too, before anything else
    // is deleted, so no run of it writes back.
    let mut deleted: Vec<String> = Vec::new();
    if items.iter().any(|item| item["sk"] == "PRED") {
        ops.ledger().delete_items(id, &["PRED".to_owned()]).await?;
        deleted.push("PRED".to_owned());
    }
    let items = ops.ledger().prediction_items(id).await?;
    seal(ops, id, &items).await?;
    fence(ops, id, &items, false).await?;
    let mut objects = Vec::new();
    for prefix in [format!("predictions/{id}/"), format!("records/{id}/"), format!("steps/{id}/")] {
        objects.extend(match bucket {
            OpsBucket::S3 { client, name } => delete_objects(client, name, &prefix).await?,
            #[cfg(any(test, feature = "test-util"))]
            OpsBucket::Memory(bucket) => bucket
                .delete_under(&prefix)
                .await
                .map_err(|e| Error::aws(format!("deleting objects under memory/{prefix}"), e))?,
        });
    }
    let mut left = sort_keys(&items);
    for _ in 0..SWEEPS {
        if left.is_empty() {
            break;
        }
        ops.ledger().delete_items(id, &left).await?;
        deleted.extend(left);
        left = sort_keys(&ops.ledger().prediction_items(id).await?);
    }
    if !left.is_empty() {
        return Err(Error::NotForgotten { id, why: "items keep coming back after their delete; run it again" });
    }

    let mut lines = vec![match (&since, deleted.len() + objects.len()) {
        (Some(at), 0) => format!("{id}: forgotten already (at {at}); nothing left to delete"),
        (Some(at), _) => format!("{id}: forgotten at {at}; deleted what an interrupted run left:"),
        (None, _) => format!("{id}: forgotten; deleted:"),
    }];
    lines.extend(deleted.iter().map(|sk| format!("  item {sk}")));
    lines.extend(objects.iter().map(|key| format!("  object {key}")));
    if since.is_none() {
        let kept = MARK_KEPT.as_secs() / 86_400;
        lines.push(format!("kept: a mark that it was forgotten, for {kept} days; later webhooks for it are dropped"));
    }
    Ok(json!(lines.join("\n")))
}

/// The sort keys of the items other than the mark.
fn sort_keys(items: &[Value]) -> Vec<String> {
    items.iter().filter_map(|item| item["sk"].as_str()).filter(|sk| *sk != MARK).map(str::to_owned).collect()
}

/// Fences every unit of work of the prediction. When a run holds one, refuses; and with
/// `take_back` (nothing marked yet) takes the fences back first, having changed nothing.
async fn fence(ops: &Ops, id: PredictionId, items: &[Value], take_back: bool) -> Result<()> {
    // The same for every run on this prediction, so a second run passes the first's fences.
    let token = format!("forget:{id}");
    let mut fenced = Vec::new();
    for status in items.iter().filter(|item| item.get("enqueue").is_some()).filter_map(event_status) {
        if ops.ledger().fence_work(id, &status, &token, FENCE_HELD).await? {
            fenced.push(status);
            continue;
        }
        if take_back {
            for status in &fenced {
                ops.ledger().unfence_work(id, status, &token).await?;
            }
        }
        return Err(Error::NotForgotten { id, why: "a run holds its work now; try again when it ends" });
    }
    Ok(())
}

/// Seals every unit of work of a prediction marked forgotten.
async fn seal(ops: &Ops, id: PredictionId, items: &[Value]) -> Result<()> {
    for status in items.iter().filter(|item| item.get("enqueue").is_some()).filter_map(event_status) {
        ops.ledger().seal_work(id, &status).await?;
    }
    Ok(())
}

fn event_status(item: &Value) -> Option<crate::prediction::Status> {
    crate::prediction::Status::parse(item["sk"].as_str()?.strip_prefix("EVENT#")?).ok()
}

/// Deletes every object under `prefix`, every version of it (a bucket with
/// `OutputVersioning` on keeps the old ones behind a plain delete), a page at a time;
/// the keys deleted.
async fn delete_objects(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<String>> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let failed = || format!("deleting objects under s3://{bucket}/{prefix}");
    abort_uploads(s3, bucket, prefix).await?;
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

/// Aborts the uploads under `prefix` a copy left unfinished: their parts are data too.
async fn abort_uploads(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<()> {
    let (mut key_marker, mut upload_marker) = (None, None);
    loop {
        let listed = s3
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker)
            .set_upload_id_marker(upload_marker)
            .send()
            .await
            .map_err(|e| Error::aws(format!("listing the uploads under s3://{bucket}/{prefix}"), e))?;
        for upload in listed.uploads() {
            let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) else { continue };
            let abort = s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await;
            abort.map_err(|e| Error::aws(format!("aborting the upload of s3://{bucket}/{key}"), e))?;
        }
        if listed.is_truncated() != Some(true) {
            return Ok(());
        }
        key_marker = listed.next_key_marker().map(str::to_owned);
        upload_marker = listed.next_upload_id_marker().map(str::to_owned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_is_never_among_the_items_to_delete_and_only_events_with_work_are_fenced() {
        let items = [
            json!({"sk": "PRED"}),
            json!({"sk": "EVENT#started"}),
            json!({"sk": "EVENT#succeeded", "enqueue": "sent"}),
            json!({"sk": "RECORD#result"}),
            json!({"sk": "FORGOTTEN", "forgotten_at": "t"}),
        ];
        assert_eq!(sort_keys(&items), ["PRED", "EVENT#started", "EVENT#succeeded", "RECORD#result"]);
        let fenced: Vec<_> = items.iter().filter(|i| i.get("enqueue").is_some()).filter_map(event_status).collect();
        assert_eq!(fenced, [crate::prediction::Status::Succeeded]);
    }
}
