//! In-memory predictions: creation order, updates that wake waiters, cancellation
//! requests, expiry checked in code, and the scans that pagination is built on.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::behaviour::{Behaviour, FileFault};
use crate::chaos::lock;
use crate::prediction::{Prediction, Status, now_rfc3339};

struct Entry {
    prediction: Prediction,
    behaviour: Behaviour,
    /// Wakes the lifecycle task when a cancellation is asked for. `notify_one` keeps a
    /// permit, so a request that comes before the task waits is not lost.
    cancel: Arc<Notify>,
    /// Set when the prediction ends, from `sim.expire_after_ms`; past it, it is gone.
    expires_at: Option<Instant>,
    /// Its file was served once (`file_fault: once` serves it only then).
    file_served: bool,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Creation sequence number -> id: newest first is a reverse walk.
    order: BTreeMap<u64, String>,
    next_seq: u64,
}

/// Where a page starts: the newest, items older than a sequence number, or items newer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    Newest,
    OlderThan(u64),
    NewerThan(u64),
}

/// One page, newest first, each item with its sequence number, and whether matching
/// items exist beyond either end.
pub struct Scan {
    pub items: Vec<(u64, Prediction)>,
    pub more_older: bool,
    pub more_newer: bool,
}

pub struct Store {
    inner: Mutex<Inner>,
    /// Bumped on every change, so `Prefer: wait` can sleep until something happens.
    changed: watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Self { inner: Mutex::new(Inner::default()), changed: watch::channel(0).0 }
    }
}

impl Store {
    /// Adds a new prediction; returns the handle its lifecycle waits on for cancellation.
    pub fn insert(&self, prediction: Prediction, behaviour: Behaviour) -> Arc<Notify> {
        let cancel = Arc::new(Notify::new());
        let mut inner = lock(&self.inner);
        inner.purge_expired();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.order.insert(seq, prediction.id.clone());
        let entry = Entry { prediction, behaviour, cancel: cancel.clone(), expires_at: None, file_served: false };
        inner.entries.insert(entry.prediction.id.clone(), entry);
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
        cancel
    }

    pub fn get(&self, id: &str) -> Option<Prediction> {
        let mut inner = lock(&self.inner);
        inner.purge_expired();
        inner.entries.get(id).map(|e| e.prediction.clone())
    }

    /// The content of `/_sim/files/<id>`, while the prediction's data lives, and the
    /// fault to serve it with now (`once` is none the first time, then `missing`;
    /// `error_once` is itself the first time, then none).
    pub fn file(&self, id: &str) -> Option<(String, Option<FileFault>)> {
        let mut inner = lock(&self.inner);
        inner.purge_expired();
        let entry = inner.entries.get_mut(id)?;
        let fault = match entry.behaviour.file_fault {
            Some(FileFault::Once) if entry.file_served => Some(FileFault::Missing),
            Some(FileFault::Once) => None,
            Some(FileFault::ErrorOnce) if entry.file_served => None,
            other => other,
        };
        entry.file_served = true;
        Some((entry.behaviour.file_content(&entry.prediction.input), fault))
    }

    /// Applies `change` and stamps `updated_at`; starts the expiry clock when the
    /// prediction becomes terminal. Returns the new snapshot.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Prediction)) -> Option<Prediction> {
        let mut inner = lock(&self.inner);
        let entry = inner.entries.get_mut(id)?;
        change(&mut entry.prediction);
        entry.prediction.updated_at = now_rfc3339();
        if entry.prediction.status.is_terminal() {
            entry.expires_at = entry.behaviour.expire_after.map(|d| Instant::now() + d);
        }
        let snapshot = entry.prediction.clone();
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
        Some(snapshot)
    }

    /// Asks the lifecycle to cancel; a terminal prediction is left as it is. Answers the
    /// prediction as it is now: cancellation happens shortly after, asynchronously.
    pub fn request_cancel(&self, id: &str) -> Option<Prediction> {
        let mut inner = lock(&self.inner);
        inner.purge_expired();
        let entry = inner.entries.get(id)?;
        if !entry.prediction.status.is_terminal() {
            entry.cancel.notify_one();
        }
        Some(entry.prediction.clone())
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Up to `limit` live predictions whose status is in `statuses` (all when empty).
    pub fn scan(&self, statuses: &[Status], from: From, limit: usize) -> Scan {
        let mut inner = lock(&self.inner);
        inner.purge_expired();
        let matches = |id: &String| {
            inner
                .entries
                .get(id)
                .filter(|e| statuses.is_empty() || statuses.contains(&e.prediction.status))
                .map(|e| e.prediction.clone())
        };
        let any = |lo: Bound<u64>, hi: Bound<u64>| inner.order.range((lo, hi)).any(|(_, id)| matches(id).is_some());
        let pick = |iter: &mut dyn Iterator<Item = (&u64, &String)>| -> Vec<(u64, Prediction)> {
            iter.filter_map(|(seq, id)| matches(id).map(|p| (*seq, p))).take(limit + 1).collect()
        };
        let (mut items, more_older, more_newer);
        match from {
            From::Newest | From::OlderThan(_) => {
                let hi = match from {
                    From::OlderThan(s) => Bound::Excluded(s),
                    _ => Bound::Unbounded,
                };
                items = pick(&mut inner.order.range((Bound::Unbounded, hi)).rev());
                more_older = items.len() > limit;
                items.truncate(limit);
                more_newer = match (from, items.first()) {
                    (From::Newest, _) => false,
                    (_, Some((first, _))) => any(Bound::Excluded(*first), Bound::Unbounded),
                    (From::OlderThan(s), None) => any(Bound::Included(s), Bound::Unbounded),
                    _ => false,
                };
            }
            From::NewerThan(s) => {
                items = pick(&mut inner.order.range((Bound::Excluded(s), Bound::Unbounded)));
                more_newer = items.len() > limit;
                items.truncate(limit);
                items.reverse();
                more_older = match items.last() {
                    Some((last, _)) => any(Bound::Unbounded, Bound::Excluded(*last)),
                    None => any(Bound::Unbounded, Bound::Included(s)),
                };
            }
        }
        Scan { items, more_older, more_newer }
    }
}

impl Inner {
    /// Deletes the data of predictions past their expiry, as WriftAI does some time
    /// after completion. Checked on every access rather than by a timer.
    fn purge_expired(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at.is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        for id in &expired {
            self.entries.remove(id);
        }
        self.order.retain(|_, id| self.entries.contains_key(id));
    }
}
