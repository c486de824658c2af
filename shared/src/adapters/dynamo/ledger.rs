//! The ledger on DynamoDB: one conditional write records an event, detects a repeat and
//! refuses an unknown ID in a single round trip: a transaction of the prediction's advance
//! and the event's put for a status the worker acts on (or an unknown one), the advance
//! alone for any other.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    CancellationReason, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use time::OffsetDateTime;

use super::{
    DynamoLedger, Item, PREDICTION_SK, conditional, event_sk, is_condition_failed, n, prediction_pk, resend, rfc3339, s,
};
use crate::error::{Error, Result};
use crate::ports::{CheckAsk, Ledger, Lookup, NewEvent, Recorded};
use crate::prediction::PredictionId;
use crate::shards::Index;

/// A transaction that collides with another on the same prediction is tried this often.
const TRANSACTION_ATTEMPTS: usize = 3;

/// What a repeat found: whether the event's work may never have been sent, so that it is
/// sent again: not once a run has claimed it (its message exists, and SQS delivers it
/// again while the work fails), nor when done, sealed by `hooks forget`, or
/// dead-lettered by the reconciler.
/// `enqueue` marks an event the worker acts on, whatever its value (`queued`, or
/// `pending` and `sent` in a table an older version wrote).
fn repeat(old: Option<&Item>) -> Recorded {
    let undone = old.is_some_and(|item| {
        item.contains_key("enqueue")
            && super::string(item, "work") != Some("done")
            && !item.contains_key("work_attempts")
            && !item.contains_key("forgotten_at")
            // The reconciler sent it to the DLQ: `hooks redrive` decides when it runs.
            && !item.contains_key("gave_up")
    });
    Recorded::Duplicate { undone }
}

fn is_condition_failure(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}

impl DynamoLedger {
    fn event_item(&self, event: &NewEvent<'_>, with_work: bool) -> Item {
        let mut item = Item::from([
            ("pk".into(), s(prediction_pk(event.id))),
            ("sk".into(), s(event_sk(event.status))),
            ("status".into(), s(event.status.as_str())),
            ("received_at".into(), s(rfc3339(event.received_at))),
        ]);
        // TTL: an event whose work is not done yet does not expire; `complete` sets
        // `expires_at` to its completion plus `keep_secs`.
        let keep = event.expires_at - event.received_at;
        if with_work {
            item.insert("keep_secs".into(), n(keep.whole_seconds()));
        } else {
            item.insert("expires_at".into(), n(event.expires_at.unix_timestamp()));
        }
        if let Some(updated_at) = event.updated_at {
            item.insert("updated_at".into(), s(updated_at));
        }
        if with_work {
            // Marks an event the worker acts on; its send follows this write, and the
            // stale-work walk finds one that never happened.
            item.insert("enqueue".into(), s("queued"));
            // Sparse index `work`: present until the worker has run it.
            item.insert("work_pk".into(), s(Index::Work.partition(event.id, self.shards)));
            item.insert("work_since".into(), s(rfc3339(event.received_at)));
            // Not yet in the sparse index `received` (`hooks replay` by filter): the
            // write that ends a run enters it (`ENTER_RECEIVED`), once, with the work's
            // state, not this put and then the completion again.
            if let Some(payload) = event.payload {
                item.insert("payload".into(), s(payload));
            }
            if let Some(model) = event.model {
                item.insert("model".into(), s(model));
            }
        }
        item
    }

    fn put_new(&self, item: Item) -> Result<Put> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))
    }

    /// The prediction's move to `event`'s status, ranked `rank`, if it is ours and the
    /// status ranks above the one it is at. `seen`: the status leaves no event item, so
    /// the prediction keeps when it came (`seen_<status>`, for `hooks inspect`).
    fn advance(&self, event: &NewEvent<'_>, rank: u8, seen: bool) -> Result<Update> {
        let mut expression = "SET #status = :status, #rank = :rank, last_event_at = :now".to_owned();
        let mut values = HashMap::from([
            (":status".to_owned(), s(event.status.as_str())),
            (":rank".to_owned(), n(rank)),
            (":now".to_owned(), s(rfc3339(event.received_at))),
        ]);
        if let Some(updated_at) = event.updated_at {
            expression.push_str(", updated_at = :updated_at");
            values.insert(":updated_at".into(), s(updated_at));
        }
        if seen {
            // A ranked status is one of WriftAI's few names: a fixed set of attributes.
            expression.push_str(&format!(", seen_{} = :now", event.status.as_str()));
        }
        if event.status.is_terminal() {
            // Leaving the sparse index: the reconciler stops looking at it.
            expression.push_str(" REMOVE open_pk, open_since");
        }
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(prediction_pk(event.id)))
            .key("sk", s(PREDICTION_SK))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#rank) OR #rank < :rank)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#rank", "rank")
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))
    }

    /// A status the worker does not act on: one conditional update of the prediction's
    /// item, no event item (one write unit, where a transaction with an event cost
    /// four). A repeat, or a status that comes after a later one, fails the condition
    /// and writes nothing; the item the failure returns tells them apart.
    async fn advance_only(&self, event: &NewEvent<'_>, rank: u8) -> Result<Recorded> {
        // The transaction's advance, sent alone, stamping when the status came.
        let advance = self.advance(event, rank, true)?;
        let result = self
            .update(prediction_pk(event.id), PREDICTION_SK)
            .update_expression(advance.update_expression())
            .set_condition_expression(advance.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(advance.expression_attribute_names().cloned())
            .set_expression_attribute_values(advance.expression_attribute_values().cloned())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Recorded::New { advanced: true }),
            Err(err) => err,
        };
        match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(failed)) => Ok(match failed.item() {
                None => Recorded::UnknownPrediction,
                Some(old) if super::string(old, "status") == Some(event.status.as_str()) => {
                    Recorded::Duplicate { undone: false }
                }
                Some(_) => Recorded::New { advanced: false },
            }),
            _ => Err(Error::store("UpdateItem", err)),
        }
    }

    fn exists(&self, id: PredictionId) -> Result<ConditionCheck> {
        ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(prediction_pk(id)))
            .key("sk", s(PREDICTION_SK))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))
    }

    /// Runs a two-item transaction. `Ok(None)` when it committed, `Ok(Some(reasons))`
    /// when a condition failed; collisions with concurrent writers are tried again.
    async fn transact(
        &self,
        id: PredictionId,
        items: [TransactWriteItem; 2],
    ) -> Result<Option<Vec<CancellationReason>>> {
        for _ in 0..TRANSACTION_ATTEMPTS {
            let result = self.client.transact_write_items().set_transact_items(Some(items.to_vec())).send().await;
            let err = match result {
                Ok(_) => return Ok(None),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error() else {
                return Err(Error::store("TransactWriteItems", err));
            };
            let reasons = cancelled.cancellation_reasons().to_vec();
            if reasons.iter().any(is_condition_failure) {
                return Ok(Some(reasons));
            }
            tracing::debug!(?reasons, "transaction collided; trying again");
        }
        Err(Error::Contended(id))
    }

    /// The out-of-order case: the event alone, kept as seen.
    async fn put_event_only(&self, event: &NewEvent<'_>) -> Result<Recorded> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.event_item(event, false)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Recorded::New { advanced: false }),
            Err(err) => match err.as_service_error().filter(|e| e.is_conditional_check_failed_exception()) {
                Some(PutItemError::ConditionalCheckFailedException(e)) => Ok(repeat(e.item())),
                _ => Err(Error::store("PutItem", err)),
            },
        }
    }
}

impl Ledger for DynamoLedger {
    async fn register(&self, id: PredictionId, at: OffsetDateTime) -> Result<bool> {
        let at = rfc3339(at);
        // A token, so that a put the SDK sent again after its answer was lost knows its
        // own item: new, not registered before.
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(prediction_pk(id)))
            .item("sk", s(PREDICTION_SK))
            .item("id", s(id.to_string()))
            .item("registered_at", s(&at))
            .item("open_pk", s(Index::Open.partition(id, self.shards)))
            .item("open_since", s(at))
            .item("registered_by", s(&token))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => {
                let old = match err.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e)) => {
                        e.item()
                    }
                    _ => None,
                };
                Ok(old.is_some_and(|old| super::string(old, "registered_by") == Some(token.as_str())))
            }
            Err(err) => Err(Error::store("PutItem", err)),
        }
    }

    async fn record(&self, event: &NewEvent<'_>) -> Result<Recorded> {
        let Some(rank) = event.status.rank() else {
            // An unknown status is kept as seen and never moves the prediction.
            let items = [
                TransactWriteItem::builder().condition_check(self.exists(event.id)?).build(),
                TransactWriteItem::builder().put(self.put_new(self.event_item(event, false))?).build(),
            ];
            return Ok(match self.transact(event.id, items).await?.as_deref() {
                None => Recorded::New { advanced: false },
                Some([known, _]) if is_condition_failure(known) => Recorded::UnknownPrediction,
                Some([_, old]) => repeat(old.item()),
                Some(_) => return Err(corrupt_reasons(event.id)),
            });
        };
        if !event.needs_work {
            return self.advance_only(event, rank).await;
        }
        let items = [
            TransactWriteItem::builder().update(self.advance(event, rank, false)?).build(),
            TransactWriteItem::builder().put(self.put_new(self.event_item(event, event.needs_work))?).build(),
        ];
        match self.transact(event.id, items).await?.as_deref() {
            None => Ok(Recorded::New { advanced: true }),
            Some([_, old]) if is_condition_failure(old) => Ok(repeat(old.item())),
            // The prediction failed its condition: absent, or already further along.
            Some([prediction, _]) if prediction.item().is_none() => Ok(Recorded::UnknownPrediction),
            Some(_) => self.put_event_only(event).await,
        }
    }

    async fn lookup(&self, id: PredictionId) -> Result<Lookup> {
        let read = self.get(prediction_pk(id), PREDICTION_SK).projection_expression("pk, #rank");
        let out =
            read.expression_attribute_names("#rank", "rank").send().await.map_err(|e| Error::store("GetItem", e))?;
        let rank = out.item().and_then(|item| item.get("rank")).and_then(|v| v.as_n().ok()).map(String::as_str);
        Ok(match (out.item(), rank) {
            (None, _) => Lookup::Unknown,
            (Some(_), None | Some("0")) => Lookup::Registered,
            (Some(_), Some("3")) => Lookup::Finished,
            (Some(_), _) => Lookup::Open,
        })
    }

    async fn forgotten(&self, id: PredictionId) -> Result<bool> {
        let read = self.get(prediction_pk(id), super::FORGOTTEN_SK).projection_expression("pk, expires_at");
        let out = read.send().await.map_err(|e| Error::store("GetItem", e))?;
        // A mark past its time is gone, as the rest of it is.
        Ok(out.item().is_some_and(|item| super::live(item, crate::clock::now())))
    }

    async fn ask_check(&self, id: PredictionId, now: OffsetDateTime, window: Duration) -> Result<CheckAsk> {
        // A read first: a flood of deliveries for one prediction costs reads of its item,
        // not failed writes, while its check waits.
        let read = self
            .get(prediction_pk(id), PREDICTION_SK)
            .projection_expression("pk, #rank, check_until, check_sent, check_after");
        let out =
            read.expression_attribute_names("#rank", "rank").send().await.map_err(|e| Error::store("GetItem", e))?;
        let Some(item) = out.item() else { return Ok(CheckAsk::Unknown) };
        let number = |name| item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
        if number("rank") == Some(3) {
            return Ok(CheckAsk::Finished);
        }
        let sent = item.contains_key("check_sent");
        if sent && number("check_until").is_some_and(|until| until > now.unix_timestamp()) {
            return Ok(CheckAsk::Pending);
        }
        if let Some(after) = number("check_after").filter(|after| *after > now.unix_timestamp()) {
            let until = OffsetDateTime::from_unix_timestamp(after)
                .map_err(|_| Error::Corrupt { key: "check_after".into(), reason: "not a time" })?;
            return Ok(CheckAsk::TooSoon { until });
        }
        // Asked afresh, or again when an ask was never confirmed sent: the condition holds
        // for a send of this same write repeated after its answer was lost, too.
        let until = (now + window).unix_timestamp();
        let asked = self
            .update(prediction_pk(id), PREDICTION_SK)
            .update_expression("SET check_until = :until REMOVE check_sent")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(check_sent) OR attribute_not_exists(check_until) \
                 OR check_until <= :now)",
            )
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        // Another delivery's check was sent meanwhile: it answers this one too.
        Ok(if conditional(asked)? { CheckAsk::Asked } else { CheckAsk::Pending })
    }

    async fn check_sent(&self, id: PredictionId) -> Result<()> {
        let sent = self
            .update(prediction_pk(id), PREDICTION_SK)
            .update_expression("SET check_sent = :sent")
            .condition_expression("attribute_exists(check_until)")
            .expression_attribute_values(":sent", n(1));
        conditional(sent.send().await).map(drop)
    }

    async fn check_begun(&self, id: PredictionId, next: Option<OffsetDateTime>) -> Result<()> {
        let begun = match next {
            // No condition: a check redriven, or asked by another path, floors the next too.
            Some(next) => self
                .update(prediction_pk(id), PREDICTION_SK)
                .update_expression("SET check_after = :next REMOVE check_until, check_sent")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":next", n(next.unix_timestamp())),
            None => self
                .update(prediction_pk(id), PREDICTION_SK)
                .update_expression("REMOVE check_until, check_sent")
                .condition_expression("attribute_exists(check_until)"),
        };
        conditional(resend(|| begun.clone().send()).await).map(drop)
    }
}

fn corrupt_reasons(id: PredictionId) -> Error {
    Error::Corrupt { key: prediction_pk(id), reason: "transaction cancelled with an unexpected reason list" }
}
