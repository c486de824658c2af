//! The in-memory reconciler store: the sparse indexes as filters over the maps.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::MemoryLedger;
use crate::error::Result;
use crate::ports::{OpenPrediction, Page, ReconcileStore, StaleWork};
use crate::prediction::{PredictionId, Status};

/// Pages over `items` (already in index order), resuming after position `after`.
fn page<T: Clone>(items: Vec<T>, after: Option<&str>, limit: u32) -> Page<T> {
    let start: usize = after.and_then(|a| a.parse().ok()).unwrap_or(0);
    let end = start.saturating_add(limit as usize).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Page { items: items.get(start..end).unwrap_or_default().to_vec(), next }
}

impl ReconcileStore for MemoryLedger {
    async fn open_predictions(
        &self,
        before: OffsetDateTime,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<OpenPrediction>> {
        let state = self.lock();
        let mut open: Vec<OpenPrediction> = state
            .predictions
            .iter()
            .filter(|(_, row)| row.open && row.registered_at < before)
            .map(|(id, row)| OpenPrediction { id: *id, registered_at: row.registered_at })
            .collect();
        open.sort_by_key(|p| (p.registered_at, p.id));
        Ok(page(open, after, limit))
    }

    async fn close(&self, id: PredictionId, reason: &str, _now: OffsetDateTime) -> Result<()> {
        if let Some(row) = self.lock().predictions.get_mut(&id).filter(|row| row.open) {
            row.open = false;
            row.closed = Some(reason.to_owned());
        }
        Ok(())
    }

    async fn stale_work(&self, before: OffsetDateTime, after: Option<&str>, limit: u32) -> Result<Page<StaleWork>> {
        let state = self.lock();
        let mut stale: Vec<(OffsetDateTime, StaleWork)> = state
            .events
            .iter()
            .filter_map(|((id, status), row)| {
                let since = row.work_since.filter(|since| *since < before)?;
                Some((since, StaleWork { id: *id, status: Status::parse(status).ok()? }))
            })
            .collect();
        stale.sort_by_key(|(since, work)| (*since, work.id));
        Ok(page(stale.into_iter().map(|(_, work)| work).collect(), after, limit))
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
