//! The in-memory reconciler store: the sparse indexes as filters over the maps.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::MemoryLedger;
use crate::error::Result;
use crate::ports::{OpenPrediction, Page, PageAsk, ReconcileStore, StaleWork};
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;

/// Pages over `items` (already in index order, each with its place: since, then ID),
/// resuming after the item whose place `after` names, as DynamoDB resumes after a key:
/// items that leave the index meanwhile move nothing.
fn page<T: Clone>(items: Vec<(String, T)>, after: Option<&str>, limit: u32) -> Page<T> {
    let rest: Vec<(String, T)> =
        items.into_iter().filter(|(place, _)| after.is_none_or(|a| place.as_str() > a)).collect();
    let taken: Vec<(String, T)> = rest.iter().take(limit as usize).cloned().collect();
    let next = (rest.len() > taken.len()).then(|| taken.last().map(|(place, _)| place.clone())).flatten();
    Page { items: taken.into_iter().map(|(_, item)| item).collect(), next }
}

/// An item's place in an index walk: its time, then its ID, as one sortable string.
fn place(since: OffsetDateTime, id: PredictionId, status: &str) -> String {
    format!("{:020}#{id}#{status}", since.unix_timestamp_nanos())
}

impl ReconcileStore for MemoryLedger {
    fn partitions(&self, index: Index) -> Vec<String> {
        index.partitions(self.shards())
    }

    async fn open_predictions(
        &self,
        PageAsk { partition, from, before, after, limit }: PageAsk<'_>,
    ) -> Result<Page<OpenPrediction>> {
        let state = self.lock();
        let shards = self.shards();
        let mut open: Vec<(String, OpenPrediction)> = state
            .predictions
            .iter()
            .filter(|(_, row)| {
                row.open && row.registered_at < before && from.is_none_or(|from| row.registered_at >= from)
            })
            .filter(|(id, _)| Index::Open.partition(**id, shards) == partition)
            .map(|(id, row)| {
                (place(row.registered_at, *id, ""), OpenPrediction { id: *id, registered_at: row.registered_at })
            })
            .collect();
        open.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(page(open, after, limit))
    }

    async fn close(&self, id: PredictionId, reason: &str, _now: OffsetDateTime) -> Result<()> {
        if let Some(row) = self.lock().predictions.get_mut(&id).filter(|row| row.open) {
            row.open = false;
            row.closed = Some(reason.to_owned());
        }
        Ok(())
    }

    async fn stale_work(
        &self,
        PageAsk { partition, from, before, after, limit }: PageAsk<'_>,
    ) -> Result<Page<StaleWork>> {
        let state = self.lock();
        let shards = self.shards();
        let mut stale: Vec<(String, StaleWork)> = state
            .events
            .iter()
            .filter(|((id, _), _)| Index::Work.partition(*id, shards) == partition)
            .filter_map(|((id, status), row)| {
                let since = row.work_since.filter(|since| *since < before && from.is_none_or(|from| *since >= from))?;
                Some((place(since, *id, status), StaleWork { id: *id, status: Status::parse(status).ok()?, since }))
            })
            .collect();
        stale.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(page(stale, after, limit))
    }

    async fn work_payload(&self, id: PredictionId, status: &Status) -> Result<Option<String>> {
        Ok(self.lock().events.get(&(id, status.to_string())).and_then(|row| row.payload.clone()))
    }

    async fn touch_work(&self, id: PredictionId, status: &Status, now: OffsetDateTime) -> Result<Option<u32>> {
        let mut state = self.lock();
        let Some(row) = state.events.get_mut(&(id, status.to_string())).filter(|row| row.work_since.is_some()) else {
            return Ok(None);
        };
        row.work_since = Some(now);
        row.requeues += 1;
        Ok(Some(row.requeues))
    }

    async fn give_up_work(&self, id: PredictionId, status: &Status, reason: &str, _now: OffsetDateTime) -> Result<()> {
        if let Some(row) = self.lock().events.get_mut(&(id, status.to_string())).filter(|row| row.work_since.is_some())
        {
            row.work_since = None;
            row.gave_up = Some(reason.to_owned());
        }
        Ok(())
    }

    async fn cursor(&self, walk: &str) -> Result<Option<String>> {
        Ok(self.lock().cursors.get(walk).cloned())
    }

    async fn save_cursor(&self, walk: &str, cursor: Option<&str>) -> Result<()> {
        let mut state = self.lock();
        state.cursor_writes += 1;
        match cursor {
            Some(cursor) => state.cursors.insert(walk.to_owned(), cursor.to_owned()),
            None => state.cursors.remove(walk),
        };
        Ok(())
    }
    async fn save_last_run(&self, summary: &Value, at: OffsetDateTime) -> Result<()> {
        self.lock().last_run = Some(json!({"ran_at": at.to_string(), "summary": summary}));
        Ok(())
    }

    async fn last_run(&self) -> Result<Option<Value>> {
        Ok(self.lock().last_run.clone())
    }
}
