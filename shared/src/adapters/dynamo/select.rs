//! What `hooks replay` by filter selects from: the events the worker acts on, received
//! within a window, found through the sparse `received` index (a `Query` of each shard,
//! never a scan, so the cost is the window's events, not the table's) and read back a
//! hundred at a time for what a filter looks at.

use std::time::Duration;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use futures_util::{StreamExt, TryStreamExt, stream};
use time::OffsetDateTime;

use super::{DynamoLedger, Item, index_keys, rfc3339, s, string};
use crate::error::{Error, Result};
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;

/// Partitions queried at once.
const AT_ONCE: usize = 16;
/// The most keys one `BatchGetItem` reads.
const BATCH_KEYS: usize = 100;
/// Tries of the keys a `BatchGetItem` left unread (throttling) before the read fails.
const UNPROCESSED_TRIES: u32 = 8;

/// One event the worker acts on, as a filter sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub id: PredictionId,
    pub status: Status,
    /// When the receiver (or the reconciler) recorded it, as the table keeps it.
    pub received_at: String,
    /// `owner/name`, for events recorded since the `received` index exists.
    pub model: Option<String>,
    pub work: WorkState,
    /// The bulk replay that reopened it last (`replay_run`), if one did.
    pub replay_run: Option<String>,
}

/// Where an event's work stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkState {
    /// Run to completion (`work = done`).
    Done,
    /// The reconciler gave up on it and sent it to the dead-letter queue (`gave_up`).
    DeadLettered,
    /// Not done, and its last run failed (`failed_at`).
    Failed,
    /// Not done, and no run of it has failed: queued or running.
    Waiting,
}

impl DynamoLedger {
    /// Every event the worker acts on received from `since` to `until` (both included),
    /// oldest first.
    pub async fn received_between(&self, since: OffsetDateTime, until: OffsetDateTime) -> Result<Vec<Received>> {
        let (since, until) = (rfc3339(since), rfc3339(until));
        let keys: Vec<Item> = stream::iter(Index::Received.partitions(self.shards))
            .map(|partition| self.received_keys(partition, &since, &until))
            .buffered(AT_ONCE)
            .try_concat()
            .await?;
        let mut events = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_KEYS) {
            for item in self.read_events(chunk).await? {
                // An item that no longer has its key or status (it expired between the
                // query and the read) is passed over.
                if let Some(event) = received(&item) {
                    events.push(event);
                }
            }
        }
        events
            .sort_by(|a, b| (&a.received_at, a.id, a.status.as_str()).cmp(&(&b.received_at, b.id, b.status.as_str())));
        Ok(events)
    }

    /// The table keys of one partition's events in the window.
    async fn received_keys(&self, partition: String, since: &str, until: &str) -> Result<Vec<Item>> {
        let (name, key, sort) = index_keys(Index::Received);
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(name)
                .key_condition_expression("#pk = :pk AND #at BETWEEN :since AND :until")
                .expression_attribute_names("#pk", key)
                .expression_attribute_names("#at", sort)
                .expression_attribute_values(":pk", s(&partition))
                .expression_attribute_values(":since", s(since))
                .expression_attribute_values(":until", s(until))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::store("Query", e))?;
            keys.extend(out.items().iter().map(|item| {
                item.iter()
                    .filter(|(name, _)| *name == "pk" || *name == "sk")
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect()
            }));
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(keys);
            }
        }
    }

    /// What a filter looks at of up to [`BATCH_KEYS`] events; never their payloads.
    async fn read_events(&self, keys: &[Item]) -> Result<Vec<Item>> {
        let mut pending = keys.to_vec();
        let mut items = Vec::with_capacity(keys.len());
        for attempt in 0..UNPROCESSED_TRIES {
            let ask = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .projection_expression("pk, sk, received_at, model, #work, failed_at, gave_up, replay_run")
                .expression_attribute_names("#work", "work")
                .consistent_read(true)
                .build()
                .map_err(|e| Error::store("BatchGetItem", e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, ask)
                .send()
                .await
                .map_err(|e| Error::store("BatchGetItem", e))?;
            if let Some(read) = out.responses().and_then(|r| r.get(&self.table)) {
                items.extend(read.iter().cloned());
            }
            pending = out
                .unprocessed_keys()
                .and_then(|left| left.get(&self.table))
                .map(|left| left.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(items);
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        Err(Error::store("BatchGetItem", std::io::Error::other("keys left unread after every try: throttled")))
    }
}

fn received(item: &Item) -> Option<Received> {
    let id = PredictionId::parse(string(item, "pk")?.strip_prefix("PRED#")?).ok()?;
    let status = Status::parse(string(item, "sk")?.strip_prefix("EVENT#")?).ok()?;
    let work = if string(item, "work") == Some("done") {
        WorkState::Done
    } else if item.contains_key("gave_up") {
        WorkState::DeadLettered
    } else if item.contains_key("failed_at") {
        WorkState::Failed
    } else {
        WorkState::Waiting
    };
    Some(Received {
        id,
        status,
        received_at: string(item, "received_at")?.to_owned(),
        model: string(item, "model").map(str::to_owned),
        work,
        replay_run: string(item, "replay_run").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), AttributeValue::S((*value).to_owned()))).collect()
    }

    #[test]
    fn an_events_work_reads_as_done_dead_lettered_failed_or_waiting() {
        let id = PredictionId::random();
        let pk = format!("PRED#{id}");
        let base = [("pk", pk.as_str()), ("sk", "EVENT#failed"), ("received_at", "2026-12-04T00:00:00.000000000Z")];
        let with = |extra: &[(&str, &str)]| received(&item(&[&base[..], extra].concat())).unwrap().work;
        assert_eq!(with(&[("work", "done"), ("failed_at", "x")]), WorkState::Done, "done after a failed run");
        assert_eq!(with(&[("gave_up", "requeued 10 times"), ("failed_at", "x")]), WorkState::DeadLettered);
        assert_eq!(with(&[("failed_at", "x")]), WorkState::Failed);
        assert_eq!(with(&[]), WorkState::Waiting);
        let event = received(&item(&[&base[..], &[("model", "acme/echo"), ("replay_run", "r1")]].concat())).unwrap();
        assert_eq!((event.id, event.status), (id, Status::Failed));
        assert_eq!((event.model.as_deref(), event.replay_run.as_deref()), (Some("acme/echo"), Some("r1")));
    }

    #[test]
    fn an_item_without_its_keys_is_passed_over() {
        assert!(received(&item(&[("pk", "PRED#not-an-id"), ("sk", "EVENT#failed"), ("received_at", "t")])).is_none());
        let id = PredictionId::random().to_string();
        assert!(received(&item(&[("pk", &format!("PRED#{id}")), ("sk", "RECORD#x"), ("received_at", "t")])).is_none());
        assert!(received(&item(&[("pk", &format!("PRED#{id}")), ("sk", "EVENT#failed")])).is_none());
    }
}
