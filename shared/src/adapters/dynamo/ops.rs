//! What the operator's `hooks` commands read and change: one prediction's items, the
//! backlogs of the sparse indexes, and the erasure of a prediction (`hooks forget`).

use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, ReturnValuesOnConditionCheckFailure, Select, WriteRequest,
};
use serde_json::{Map, Value, json};

use futures_util::{StreamExt, TryStreamExt, stream};

use super::{DynamoLedger, FORGOTTEN_SK, Item, index_keys, n, prediction_pk, rfc3339, s, string};
use crate::error::{Error, Result};
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;
use time::OffsetDateTime;

/// Unfinished predictions or unfinished work in one partition of its index: how many,
/// and the oldest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backlog {
    pub partition: String,
    pub count: u64,
    /// The oldest item's key (`PRED#<id>`, and `PRED` or `EVENT#<status>`) and since when.
    pub oldest: Option<(String, String, String)>,
}

/// Partitions counted at once.
const AT_ONCE: usize = 16;
/// The most deletes one `BatchWriteItem` carries.
const BATCH_DELETES: usize = 25;
/// Tries of the deletes a `BatchWriteItem` left undone (throttling) before it fails.
const UNPROCESSED_TRIES: u32 = 8;

impl DynamoLedger {
    /// Every item of one prediction, as JSON objects in key order.
    pub async fn prediction_items(&self, id: PredictionId) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(prediction_pk(id)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::store("Query", e))?;
            items.extend(out.items().iter().map(to_json));
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The size and oldest item of each partition of a sparse index, every shard and the
    /// value of tables written before sharding, counted a few at a time.
    pub async fn backlog(&self, index: Index) -> Result<Vec<Backlog>> {
        let partitions = index.partitions(self.walked_shards());
        stream::iter(partitions)
            .map(|partition| self.partition_backlog(index, partition))
            .buffered(AT_ONCE)
            .try_collect()
            .await
    }

    async fn partition_backlog(&self, index: Index, partition: String) -> Result<Backlog> {
        let (name, key, since) = index_keys(index);
        let query = || {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(name)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", key)
                .expression_attribute_values(":pk", s(&partition))
        };
        let mut count = 0;
        let mut start = None;
        loop {
            let out = query()
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::store("Query", e))?;
            count += out.count() as u64;
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let first = query().limit(1).send().await.map_err(|e| Error::store("Query", e))?;
        let oldest = first.items().first().map(|item| {
            let field = |name| string(item, name).unwrap_or_default().to_owned();
            (field("pk"), field("sk"), field(since))
        });
        Ok(Backlog { partition, count, oldest })
    }

    /// Marks `id` forgotten at `at` until `until` (the mark's TTL), unless an earlier
    /// erasure marked it: what comes for it from now on is dropped, not recorded.
    pub async fn mark_forgotten(&self, id: PredictionId, at: OffsetDateTime, until: OffsetDateTime) -> Result<()> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(prediction_pk(id)))
            .item("sk", s(FORGOTTEN_SK))
            .item("forgotten_at", s(rfc3339(at)))
            .item("expires_at", n(until.unix_timestamp()))
            .condition_expression("attribute_not_exists(pk)");
        match put.send().await {
            Ok(_) => Ok(()),
            Err(err) if super::is_condition_failed(&err) => Ok(()),
            Err(err) => Err(Error::store("PutItem", err)),
        }
    }

    /// Holds the work of one event of `id` for `hooks forget` until `until`, as a run's
    /// claim would: no run can claim it meanwhile, so none writes records, steps or
    /// objects back after they are deleted. False, changing nothing, while a run holds a
    /// live claim (judged on the table's clock). True when the event is already gone.
    pub async fn fence_work(&self, id: PredictionId, status: &Status, token: &str, hold: Duration) -> Result<bool> {
        let (now, _) = self.server_now(id, status).await?;
        let until = now + hold;
        let fence = self
            .update(prediction_pk(id), super::event_sk(status))
            .update_expression("SET work_token = :token, work_until = :until")
            // Never on a missing item: an update would create it.
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(work_token) OR work_until < :now \
                 OR work_token = :token)",
            )
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":until", n(until.unix_timestamp()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match super::resend(|| fence.clone().send()).await {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                // Gone (expired, or deleted by another erasure): nothing left to hold.
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => Ok(failed.item().is_none()),
                _ => Err(Error::store("UpdateItem", err)),
            },
        }
    }

    /// Takes back a fence [`fence_work`](Self::fence_work) put, when the erasure stops.
    pub async fn unfence_work(&self, id: PredictionId, status: &Status, token: &str) -> Result<()> {
        let unfence = self
            .update(prediction_pk(id), super::event_sk(status))
            .update_expression("REMOVE work_token, work_until")
            .condition_expression("work_token = :token")
            .expression_attribute_values(":token", s(token));
        super::conditional(super::resend(|| unfence.clone().send()).await).map(drop)
    }

    /// Seals a unit of work of a prediction marked forgotten, for good: no claim or
    /// replay of it succeeds from now on (`forgotten_at`), whatever fence expires, and it
    /// leaves the `work` index, so the reconciler stops requeueing it. Never creates it.
    pub async fn seal_work(&self, id: PredictionId, status: &Status) -> Result<()> {
        let seal = self
            .update(prediction_pk(id), super::event_sk(status))
            .update_expression("SET forgotten_at = if_not_exists(forgotten_at, :now) REMOVE work_pk, work_since")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", s(super::rfc3339(crate::clock::now())));
        super::conditional(super::resend(|| seal.clone().send()).await).map(drop)
    }

    /// Deletes the items of `id` with these sort keys, 25 at a time.
    pub async fn delete_items(&self, id: PredictionId, sort_keys: &[String]) -> Result<()> {
        for chunk in sort_keys.chunks(BATCH_DELETES) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|sk| {
                    let key = Item::from([("pk".to_owned(), s(prediction_pk(id))), ("sk".to_owned(), s(sk))]);
                    let delete = DeleteRequest::builder().set_key(Some(key)).build();
                    delete.map(|d| WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<_, _>>()
                .map_err(|e| Error::store("BatchWriteItem", e))?;
            for attempt in 0.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| Error::store("BatchWriteItem", e))?;
                pending = out.unprocessed_items().and_then(|left| left.get(&self.table)).cloned().unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt + 1 == UNPROCESSED_TRIES {
                    let throttled = std::io::Error::other("deletes left undone after every try: throttled");
                    return Err(Error::store("BatchWriteItem", throttled));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }

    /// The event record of one unit of work, as a JSON object.
    pub async fn event(&self, id: PredictionId, status: &Status) -> Result<Option<Value>> {
        let get = self.get(prediction_pk(id), super::event_sk(status));
        let out = get.send().await.map_err(|e| Error::store("GetItem", e))?;
        Ok(out.item().map(to_json))
    }
}

/// A DynamoDB item as JSON: strings and numbers as themselves, maps and lists inside.
pub fn to_json(item: &Item) -> Value {
    Value::Object(item.iter().map(|(name, value)| (name.clone(), attribute(value))).collect::<Map<_, _>>())
}

fn attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => json!(text),
        AttributeValue::N(number) => number
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| number.parse::<f64>().map(Value::from))
            .unwrap_or(json!(number)),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::M(map) => to_json(map),
        AttributeValue::L(list) => Value::Array(list.iter().map(attribute).collect()),
        AttributeValue::Ss(set) => json!(set),
        AttributeValue::Ns(set) => json!(set),
        other => json!(format!("{other:?}")),
    }
}
