//! The in-memory reconciler store: pages of the sparse indexes, in place order.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::MemoryLedger;
use crate::error::Result;
use crate::ports::{OpenPrediction, Page, PageAsk, ReconcileStore, StaleWork};
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;

/// An item's place in an index walk: its time, then its ID, as one sortable string.
pub(super) fn place(since: OffsetDateTime, id: PredictionId, status: &str) -> String {
    format!("{:020}#{id}#{status}", since.unix_timestamp_nanos())
}

/// One page of partition `partition` of `index` (a map from (partition, place)), in
/// place order: the items since `from` and before `before`, after the place `after`
/// (as DynamoDB resumes after a key: items that leave the index meanwhile move nothing).
fn page<K, T>(
    index: &BTreeMap<(String, String), K>,
    PageAsk { partition, from, before, after, limit }: PageAsk<'_>,
    item: impl Fn(&K) -> Option<T>,
) -> Page<T> {
    let at = |time: OffsetDateTime| format!("{:020}", time.unix_timestamp_nanos());
    let from = from.map(at).unwrap_or_default();
    let start = match after {
        Some(after) if after >= from.as_str() => Bound::Excluded((partition.to_owned(), after.to_owned())),
        _ => Bound::Included((partition.to_owned(), from)),
    };
    let before = at(before);
    let mut items: Vec<(String, T)> = Vec::new();
    let mut next = None;
    let within =
        index.range((start, Bound::Unbounded)).take_while(|((pk, place), _)| pk == partition && *place < before);
    for ((_, place), key) in within {
        if items.len() == limit as usize {
            next = items.last().map(|(place, _)| place.clone());
            break;
        }
        if let Some(item) = item(key) {
            items.push((place.clone(), item));
        }
    }
    Page { items: items.into_iter().map(|(_, item)| item).collect(), next }
}

impl ReconcileStore for MemoryLedger {
    fn partitions(&self, index: Index) -> Vec<String> {
        index.partitions(self.walked_shards())
    }

    async fn learn_shards(&self) -> Result<()> {
        // What the DynamoDB adapter keeps in an item, this one keeps in `widest`.
        self.call("UpdateItem", |_| Ok(())).await
    }

    async fn open_predictions(&self, ask: PageAsk<'_>) -> Result<Page<OpenPrediction>> {
        self.call("Query", |state| {
            Ok(page(&state.open_index, ask, |id| {
                let row = state.predictions.get(id)?;
                Some(OpenPrediction { id: *id, registered_at: row.registered_at })
            }))
        })
        .await
    }

    async fn close(&self, id: PredictionId, reason: &str, _now: OffsetDateTime) -> Result<()> {
        self.call("UpdateItem", |state| {
            if state.predictions.get(&id).is_some_and(|row| row.open) {
                state.set_open(id, None);
                if let Some(row) = state.predictions.get_mut(&id) {
                    row.closed = Some(reason.to_owned());
                }
            }
            Ok(())
        })
        .await
    }

    async fn stale_work(&self, ask: PageAsk<'_>) -> Result<Page<StaleWork>> {
        self.call("Query", |state| {
            Ok(page(&state.work_index, ask, |(id, status)| {
                let row = state.events.get(&(*id, status.clone()))?;
                Some(StaleWork { id: *id, status: Status::parse(status).ok()?, since: row.work_since? })
            }))
        })
        .await
    }

    async fn work_payload(&self, id: PredictionId, status: &Status) -> Result<Option<String>> {
        let now = crate::clock::now();
        self.call("GetItem", |state| {
            let key = (id, status.to_string());
            Ok(state.events.contains_key(&key).then(|| state.kept_body(&key, now)).flatten())
        })
        .await
    }

    async fn touch_work(&self, id: PredictionId, status: &Status, now: OffsetDateTime) -> Result<Option<u32>> {
        let shards = self.shards();
        self.call("UpdateItem", |state| {
            let key = (id, status.to_string());
            let Some(pk) = state.events.get(&key).and_then(|row| row.work_pk.clone()) else { return Ok(None) };
            state.set_work(&key, Some((pk, now)));
            state.enter_received(&key, shards);
            let row = state.events.get_mut(&key).expect("the event just moved in its index");
            row.requeues += 1;
            Ok(Some(row.requeues))
        })
        .await
    }

    async fn give_up_work(&self, id: PredictionId, status: &Status, reason: &str, _now: OffsetDateTime) -> Result<()> {
        let shards = self.shards();
        self.call("UpdateItem", |state| {
            let key = (id, status.to_string());
            if state.events.get(&key).is_some_and(|row| row.work_pk.is_some()) {
                state.set_work(&key, None);
                state.enter_received(&key, shards);
                if let Some(row) = state.events.get_mut(&key) {
                    row.gave_up = Some(reason.to_owned());
                }
            }
            Ok(())
        })
        .await
    }

    async fn cursor(&self, walk: &str) -> Result<Option<String>> {
        self.call("GetItem", |state| Ok(state.cursors.get(walk).cloned())).await
    }

    async fn save_cursor(&self, walk: &str, cursor: Option<&str>) -> Result<()> {
        self.call("PutItem", |state| {
            state.cursor_writes += 1;
            match cursor {
                Some(cursor) => state.cursors.insert(walk.to_owned(), cursor.to_owned()),
                None => state.cursors.remove(walk),
            };
            Ok(())
        })
        .await
    }

    async fn save_last_run(&self, summary: &Value, at: OffsetDateTime) -> Result<()> {
        self.call("PutItem", |state| {
            state.last_run = Some(json!({"ran_at": at.to_string(), "summary": summary}));
            Ok(())
        })
        .await
    }

    async fn last_run(&self) -> Result<Option<Value>> {
        self.call("GetItem", |state| Ok(state.last_run.clone())).await
    }
}
