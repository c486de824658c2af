//! The record of every webhook delivery attempt, and the counters `/_sim/stats` shows.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::chaos::lock;
use crate::prediction::Status;

/// Attempts kept; the oldest go first. Bounded so a long soak cannot grow without end.
const MAX_RECORDS: usize = 100_000;

/// What became of one attempt: `{"http": 200}`, `{"error": "..."}` or `"dropped"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    Http(u16),
    Error(String),
    /// Never sent, as if its retries had been exhausted.
    Dropped,
}

#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub prediction_id: String,
    pub status: Status,
    /// 1 for the first try; 0 for a dropped delivery, which was never tried.
    pub attempt: u32,
    pub at: String,
    pub outcome: AttemptOutcome,
    /// The extra copy of a duplicated delivery.
    pub duplicate: bool,
    /// A `started` delivery held back and sent after the terminal one.
    pub reordered: bool,
}

#[derive(Default)]
pub struct DeliveryLog {
    records: Mutex<VecDeque<Attempt>>,
}

impl DeliveryLog {
    pub fn push(&self, attempt: Attempt) {
        let mut records = lock(&self.records);
        if records.len() >= MAX_RECORDS {
            records.pop_front();
        }
        records.push_back(attempt);
    }

    /// Every attempt in order, or only one prediction's.
    pub fn list(&self, prediction_id: Option<&str>) -> Vec<Attempt> {
        lock(&self.records).iter().filter(|a| prediction_id.is_none_or(|id| a.prediction_id == id)).cloned().collect()
    }
}

#[derive(Default)]
pub struct Stats {
    pub predictions: AtomicU64,
    /// Deliveries that went on the wire (each copy of a duplicate counts).
    pub deliveries_sent: AtomicU64,
    pub attempts: AtomicU64,
    pub duplicates: AtomicU64,
    pub reorders: AtomicU64,
    pub drops: AtomicU64,
    /// Attempts after the first of a delivery.
    pub retries: AtomicU64,
    /// Deliveries that ran out of attempts without a final answer.
    pub exhausted: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Deliveries queued or being sent right now (a gauge): 0 means every status change
    /// so far has been delivered, dropped or given up. Changed only through
    /// [`Stats::queued`] and [`Stats::handled`], which keep `pending` with it.
    in_flight: AtomicU64,
    /// The same gauge per prediction, so one test can wait for its own deliveries while
    /// others' are still going. A prediction leaves the map when it reaches 0.
    pending: Mutex<HashMap<String, u64>>,
}

#[derive(Debug, Serialize)]
pub struct StatsView {
    pub predictions: u64,
    pub deliveries_sent: u64,
    pub attempts: u64,
    pub duplicates: u64,
    pub reorders: u64,
    pub drops: u64,
    pub retries: u64,
    pub exhausted: u64,
    pub rate_limited: u64,
    pub in_flight: u64,
}

impl Stats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery of `id` is about to be queued.
    pub fn queued(&self, id: &str) {
        let mut pending = lock(&self.pending);
        *pending.entry(id.to_owned()).or_default() += 1;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery of `id` was delivered, dropped or given up (or never queued).
    pub fn handled(&self, id: &str) {
        let mut pending = lock(&self.pending);
        if let Some(count) = pending.get_mut(id) {
            *count -= 1;
            if *count == 0 {
                pending.remove(id);
            }
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Deliveries of one prediction queued or being sent right now.
    pub fn in_flight_of(&self, id: &str) -> u64 {
        lock(&self.pending).get(id).copied().unwrap_or(0)
    }

    pub fn view(&self) -> StatsView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsView {
            predictions: get(&self.predictions),
            deliveries_sent: get(&self.deliveries_sent),
            attempts: get(&self.attempts),
            duplicates: get(&self.duplicates),
            reorders: get(&self.reorders),
            drops: get(&self.drops),
            retries: get(&self.retries),
            exhausted: get(&self.exhausted),
            rate_limited: get(&self.rate_limited),
            in_flight: get(&self.in_flight),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_serialise_as_the_documented_shapes() {
        let as_json = |o: AttemptOutcome| serde_json::to_value(o).ok();
        assert_eq!(as_json(AttemptOutcome::Http(503)), Some(json!({"http": 503})));
        assert_eq!(as_json(AttemptOutcome::Error("refused".into())), Some(json!({"error": "refused"})));
        assert_eq!(as_json(AttemptOutcome::Dropped), Some(json!("dropped")));
    }
}
