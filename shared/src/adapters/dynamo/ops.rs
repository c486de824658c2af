//! What the operator's `hooks` commands read and change: one prediction's items, the
//! backlogs of the two sparse indexes.

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use serde_json::{Map, Value, json};

use futures_util::{StreamExt, TryStreamExt, stream};

use super::{DynamoLedger, Item, index_keys, prediction_pk, s, string};
use crate::error::{Error, Result};
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;

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
        let partitions = index.partitions(self.shards);
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
