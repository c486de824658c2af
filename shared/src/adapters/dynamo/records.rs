//! The work's records and steps on DynamoDB: one item each, beside the prediction's.

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use time::OffsetDateTime;

use super::{DynamoLedger, Item, n, parse_rfc3339, prediction_pk, record_sk, resend, rfc3339, s, step_sk, string};
use crate::error::{Error, Result};
use crate::ports::{Kept, RecordTable, StepKey, StepState};
use crate::prediction::PredictionId;

impl DynamoLedger {
    /// The write that keeps `kept` on an item (`pk`, `sk`), with `set` (more `SET`
    /// clauses) and `add` (an `ADD` clause, or empty) beside it; `expiring` when it is
    /// a record, which expires with the retention.
    fn kept_write(
        &self,
        pk: String,
        sk: String,
        kept: &Kept,
        set: &str,
        add: &str,
        expiring: bool,
    ) -> UpdateItemFluentBuilder {
        // Each way of keeping sets its attributes and removes the others'.
        let (assign, remove) = match kept {
            Kept::Whole(_) => ("#record = :record", "record_key, record_bytes, record_sha256"),
            Kept::InBucket { .. } => ("record_key = :key, record_bytes = :bytes, record_sha256 = :sha256", "#record"),
            Kept::Cut { .. } => ("record_bytes = :bytes, record_sha256 = :sha256", "#record, record_key"),
        };
        let add = if add.is_empty() { String::new() } else { format!(" ADD {add}") };
        let (expiry, expires) = match self.expires_at().filter(|_| expiring) {
            Some(at) => (", expires_at = :expires", Some(at)),
            None => ("", None),
        };
        let write = self
            .update(pk, sk)
            .update_expression(format!("SET {assign}, {set}{expiry} REMOVE {remove}{add}"))
            .expression_attribute_names("#record", "record");
        let write = match expires {
            Some(at) => write.expression_attribute_values(":expires", n(at)),
            None => write,
        };
        match kept {
            Kept::Whole(text) => write.expression_attribute_values(":record", s(text)),
            Kept::InBucket { key, bytes, sha256 } => write
                .expression_attribute_values(":key", s(key))
                .expression_attribute_values(":bytes", n(bytes))
                .expression_attribute_values(":sha256", s(sha256)),
            Kept::Cut { bytes, sha256 } => {
                write.expression_attribute_values(":bytes", n(bytes)).expression_attribute_values(":sha256", s(sha256))
            }
        }
    }
}

impl DynamoLedger {
    /// When a record written now expires (unix seconds), if records do. A step is never
    /// given one as it is written: it expires with its event, once its work is done
    /// (`Claims::complete`). Begun and unknown, it waits for the operator however long;
    /// finished, it must outlive every replay of its work, which may come weeks later.
    fn expires_at(&self) -> Option<i64> {
        let ttl = self.record_ttl?;
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        Some(crate::clock::now().unix_timestamp().saturating_add(secs))
    }
}

/// The record an item keeps, however it was kept.
fn kept(item: &Item) -> Option<Kept> {
    if let Some(text) = string(item, "record") {
        return Some(Kept::Whole(text.to_owned()));
    }
    let bytes = item.get("record_bytes")?.as_n().ok()?.parse().ok()?;
    let sha256 = string(item, "record_sha256")?.to_owned();
    Some(match string(item, "record_key") {
        Some(key) => Kept::InBucket { key: key.to_owned(), bytes, sha256 },
        None => Kept::Cut { bytes, sha256 },
    })
}

/// Time kept back from a deadline, when a step's intent is written, to take it away
/// again should its outcome stay unknown: one try of a write.
const TAKE_BACK: Duration = crate::adapters::ATTEMPT_TIMEOUT;

impl DynamoLedger {
    /// Removes a step's intent if it is the one `token` wrote: its write's outcome was
    /// unknown, so its run never ran the step. Left there, the next run would find the step
    /// begun and fail as unknown, though nothing happened.
    async fn take_back(&self, step: StepKey<'_>, token: &str) {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(prediction_pk(step.id)))
            .key("sk", s(step_sk(step.status, step.name)))
            .condition_expression("started_by = :token")
            .expression_attribute_values(":token", s(token));
        match resend(|| delete.clone().send()).await {
            Ok(_) => tracing::warn!(step = step.name, "a step's intent whose write went unconfirmed was taken back"),
            // Never written, or not ours: nothing was left behind.
            Err(err) if super::is_condition_failed(&err) => {}
            Err(err) => tracing::warn!(
                step = step.name,
                error = %crate::error::chain(&err),
                "a step's intent may be left behind; its next run fails it as unknown"
            ),
        }
    }
}

impl RecordTable for DynamoLedger {
    async fn put_record(&self, id: PredictionId, name: &str, record: &Kept) -> Result<()> {
        let now = rfc3339(crate::clock::now());
        let write = match self.counting_stores {
            None => self.kept_write(prediction_pk(id), record_sk(name), record, "stored_at = :now", "", true),
            Some(before) => {
                before(name);
                // A set of call IDs, not a counter: a write sent again (the SDK's retry or
                // `resend`) carries the same ID, and one whose answer was lost was applied
                // before it, so a counter would count one call twice. A set gains it once.
                let call = uuid::Uuid::new_v4().to_string();
                self.kept_write(prediction_pk(id), record_sk(name), record, "stored_at = :now", "writes :call", true)
                    .expression_attribute_values(":call", AttributeValue::Ss(vec![call]))
            }
        };
        let write = write.expression_attribute_values(":now", s(now));
        resend(|| write.clone().send()).await.map(drop).map_err(|e| Error::store("UpdateItem", e))
    }

    async fn get_record(&self, id: PredictionId, name: &str) -> Result<Option<Kept>> {
        let out = self.get(prediction_pk(id), record_sk(name)).send().await.map_err(|e| Error::store("GetItem", e))?;
        // The bucket's expiry is on time, DynamoDB's TTL days late: a record past its time
        // is gone, whatever is left of it.
        let now = crate::clock::now();
        Ok(out.item().filter(|item| super::live(item, now)).and_then(kept))
    }

    async fn begin_step(&self, step: StepKey<'_>, now: OffsetDateTime) -> Result<StepState> {
        // A token, so that a send repeated after its answer was lost knows its own intent.
        let token = uuid::Uuid::new_v4().to_string();
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(prediction_pk(step.id)))
            .item("sk", s(step_sk(step.status, step.name)))
            .item("state", s("started"))
            .item("started_at", s(rfc3339(now)))
            .item("started_by", s(&token))
            // A step past its expiry, which DynamoDB's TTL deletes days late, is gone:
            // only a done unit's steps expire, and a replay after that runs them afresh.
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        // Within a deadline, one try's time is kept back to take the intent away again.
        let sent = match crate::deadline::current() {
            Some(deadline) => {
                let sooner = deadline.checked_sub(TAKE_BACK).unwrap_or(deadline);
                crate::deadline::within(sooner, resend(|| request.clone().send())).await
            }
            None => resend(|| request.clone().send()).await,
        };
        let err = match sent {
            Ok(_) => return Ok(StepState::Begun { token }),
            Err(err) => err,
        };
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error() else {
            // Its outcome is unknown: the intent may be there, and no run would own it.
            self.take_back(step, &token).await;
            return Err(Error::store("PutItem", err));
        };
        let old = failed.item().cloned().unwrap_or_default();
        let started_by = string(&old, "started_by").unwrap_or_default().to_owned();
        Ok(match string(&old, "state") {
            _ if started_by == token => StepState::Begun { token },
            Some("finished") => StepState::Finished(kept(&old).ok_or_else(|| Error::Corrupt {
                key: step_sk(step.status, step.name),
                reason: "a finished step keeps no outcome",
            })?),
            _ => StepState::Started {
                since: parse_rfc3339(&old, "started_at").unwrap_or(now),
                token: started_by,
                tries: old.get("tries").and_then(|v| v.as_ss().ok()).map_or(0, |t| u32::try_from(t.len()).unwrap_or(0)),
            },
        })
    }

    async fn note_try(&self, step: StepKey<'_>, try_id: &str) -> Result<()> {
        let request = self
            .update(prediction_pk(step.id), step_sk(step.status, step.name))
            .update_expression("ADD tries :try")
            .condition_expression("#state = :started")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":started", s("started"))
            .expression_attribute_values(":try", AttributeValue::Ss(vec![try_id.to_owned()]));
        // Finished or forgotten meanwhile: nothing left to count against.
        super::conditional(resend(|| request.clone().send()).await).map(drop)
    }

    async fn finish_step(&self, step: StepKey<'_>, outcome: &Kept, now: OffsetDateTime) -> Result<()> {
        let (pk, sk) = (prediction_pk(step.id), step_sk(step.status, step.name));
        let write = self.kept_write(pk, sk, outcome, "#state = :finished, finished_at = :now", "", false);
        let write = write
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":finished", s("finished"))
            .expression_attribute_values(":now", s(rfc3339(now)));
        resend(|| write.clone().send()).await.map(drop).map_err(|e| Error::store("UpdateItem", e))
    }

    async fn forget_step(&self, step: StepKey<'_>) -> Result<()> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(prediction_pk(step.id)))
            .key("sk", s(step_sk(step.status, step.name)));
        resend(|| delete.clone().send()).await.map(drop).map_err(|e| Error::store("DeleteItem", e))
    }
}
