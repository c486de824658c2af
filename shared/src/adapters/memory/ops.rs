//! What the operator's `hooks` commands read and change, in memory: the DynamoDB
//! adapter's operations (`adapters::dynamo::ops`, `select`), each answering as it does
//! (one prediction's items as JSON objects of the same attributes), so `hooks replay`,
//! `redrive` and `forget` run on the in-memory table as on DynamoDB.

use std::time::Duration;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{EventKey, Mark, MemoryLedger, State};
use crate::adapters::dynamo::Received;
use crate::adapters::dynamo::{Backlog, FORGOTTEN_SK, event_sk, prediction_pk, record_sk, rfc3339, step_sk};
use crate::error::Result;
use crate::ports::{Kept, WorkState};
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;

/// An event's work state, as a bulk replay selects it.
fn work_state(row: &super::EventRow) -> WorkState {
    WorkState::of(row.done.is_some(), row.gave_up.is_some(), row.failed_at.is_some())
}

fn kept_json(item: &mut Map<String, Value>, kept: &Kept) {
    match kept {
        Kept::Whole(text) => {
            item.insert("record".into(), json!(text));
        }
        Kept::InBucket { key, bytes, sha256 } => {
            item.insert("record_key".into(), json!(key));
            item.insert("record_bytes".into(), json!(bytes));
            item.insert("record_sha256".into(), json!(sha256));
        }
        Kept::Cut { bytes, sha256 } => {
            item.insert("record_bytes".into(), json!(bytes));
            item.insert("record_sha256".into(), json!(sha256));
        }
    }
}

fn object(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.to_owned(), v)).collect()
}

fn at(time: Option<OffsetDateTime>) -> Value {
    time.map_or(Value::Null, |t| json!(rfc3339(t)))
}

fn unix(time: Option<OffsetDateTime>) -> Value {
    time.map_or(Value::Null, |t| json!(t.unix_timestamp()))
}

impl State {
    /// Every item of `id` as the DynamoDB adapter reads it, in key order.
    fn items_of(&self, id: PredictionId) -> Vec<Value> {
        let pk = prediction_pk(id);
        let mut items: Vec<(String, Map<String, Value>)> = Vec::new();
        if let Some(row) = self.predictions.get(&id) {
            let rank = row.status.as_ref().and_then(Status::rank);
            let mut item = object(vec![
                ("id", json!(id.to_string())),
                ("registered_at", json!(rfc3339(row.registered_at))),
                ("status", row.status.as_ref().map_or(Value::Null, |s| json!(s.as_str()))),
                ("rank", rank.map_or(Value::Null, |r| json!(r))),
                ("open_pk", row.open_pk.clone().map_or(Value::Null, Value::from)),
                ("closed", row.closed.clone().map_or(Value::Null, Value::from)),
            ]);
            for (status, at) in &row.seen {
                item.insert(format!("seen_{status}"), json!(rfc3339(*at)));
            }
            items.push(("PRED".to_owned(), item));
        }
        for ((_, status), row) in self.events.range((id, String::new())..).take_while(|((of, _), _)| *of == id) {
            let enqueue = if row.needs_work { json!("queued") } else { Value::Null };
            let item = object(vec![
                ("status", json!(status)),
                ("received_at", json!(rfc3339(row.received_at))),
                ("updated_at", row.updated_at.clone().map_or(Value::Null, Value::from)),
                ("enqueue", enqueue),
                ("payload", row.payload.clone().map_or(Value::Null, Value::from)),
                ("model", row.model.clone().map_or(Value::Null, Value::from)),
                ("work", if row.done.is_some() { json!("done") } else { Value::Null }),
                ("work_result", row.done.as_ref().map_or(Value::Null, |r| json!(r.to_string()))),
                ("work_attempts", if row.attempts > 0 { json!(row.attempts) } else { Value::Null }),
                ("work_token", row.claim.as_ref().map_or(Value::Null, |c| json!(c.token))),
                ("work_until", row.claim.as_ref().map_or(Value::Null, |c| json!(c.until.unix_timestamp()))),
                ("work_pk", row.work_pk.clone().map_or(Value::Null, Value::from)),
                ("work_since", at(row.work_since)),
                ("replay", if row.replay { json!(true) } else { Value::Null }),
                ("forgotten_at", row.forgotten_at.map_or(Value::Null, |at| json!(rfc3339(at)))),
                ("last_error", row.last_error.clone().map_or(Value::Null, Value::from)),
                ("failed_at", at(row.failed_at)),
                ("requeues", if row.requeues > 0 { json!(row.requeues) } else { Value::Null }),
                ("gave_up", row.gave_up.clone().map_or(Value::Null, Value::from)),
                ("replay_runs", if row.replay_runs.is_empty() { Value::Null } else { json!(row.replay_runs) }),
                ("expires_at", unix(row.expires_at)),
            ]);
            items.push((event_sk(&Status::parse(status).unwrap_or(Status::Unknown(status.clone()))), item));
        }
        for ((_, name), row) in self.records.range((id, String::new())..).take_while(|((of, _), _)| *of == id) {
            let mut item = object(vec![("expires_at", unix(row.expires_at))]);
            kept_json(&mut item, &row.kept);
            items.push((record_sk(name), item));
        }
        for ((_, status), row) in self.bodies.range((id, String::new())..).take_while(|((of, _), _)| *of == id) {
            let item = object(vec![("body", json!(row.body)), ("expires_at", unix(row.expires_at))]);
            items.push((format!("BODY#{status}"), item));
        }
        let steps = self.steps.range((id, String::new(), String::new())..).take_while(|((of, _, _), _)| *of == id);
        for ((_, status, name), row) in steps {
            let state = if row.outcome.is_some() { "finished" } else { "started" };
            let mut item = object(vec![
                ("state", json!(state)),
                ("started_at", json!(rfc3339(row.started_at))),
                ("started_by", json!(row.token)),
                ("tries", if row.tries.is_empty() { Value::Null } else { json!(row.tries) }),
                ("expires_at", unix(row.expires_at)),
            ]);
            if let Some(outcome) = &row.outcome {
                kept_json(&mut item, outcome);
            }
            let status = Status::parse(status).unwrap_or(Status::Unknown(status.clone()));
            items.push((step_sk(&status, name), item));
        }
        if let Some(mark) = self.forgotten.get(&id) {
            let item = object(vec![("forgotten_at", json!(rfc3339(mark.at))), ("expires_at", unix(Some(mark.until)))]);
            items.push((FORGOTTEN_SK.to_owned(), item));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items
            .into_iter()
            .map(|(sk, mut item)| {
                item.insert("pk".into(), json!(pk));
                item.insert("sk".into(), json!(sk));
                Value::Object(item)
            })
            .collect()
    }

    /// Deletes the item of `id` with sort key `sk`, whatever it is.
    fn delete_item(&mut self, id: PredictionId, sk: &str) {
        if sk == "PRED" {
            self.remove_prediction(id);
        } else if sk == FORGOTTEN_SK {
            self.forgotten.remove(&id);
        } else if let Some(status) = sk.strip_prefix("EVENT#") {
            self.remove_event(&(id, status.to_owned()));
        } else if let Some(status) = sk.strip_prefix("BODY#") {
            self.bodies.remove(&(id, status.to_owned()));
        } else if sk.starts_with("RECORD#") {
            self.records.retain(|(of, name), _| !(*of == id && record_sk(name) == sk));
        } else if sk.starts_with("STEP#") {
            self.steps.retain(|(of, status, name), _| {
                let status = Status::parse(status).unwrap_or(Status::Unknown(status.clone()));
                !(*of == id && step_sk(&status, name) == sk)
            });
        }
    }
}

impl MemoryLedger {
    /// Every item of one prediction, as JSON objects in key order.
    pub async fn prediction_items(&self, id: PredictionId) -> Result<Vec<Value>> {
        self.call("Query", |state| Ok(state.items_of(id))).await
    }

    /// The size and oldest item of each partition of a sparse index.
    pub async fn backlog(&self, index: Index) -> Result<Vec<Backlog>> {
        let partitions = index.partitions(self.walked_shards());
        self.call("Query", |state| {
            Ok(partitions
                .into_iter()
                .map(|partition| {
                    let (count, oldest) = match index {
                        Index::Open => {
                            let mut rows = state.open_index.range((partition.clone(), String::new())..);
                            let rows: Vec<_> = rows.by_ref().take_while(|((pk, _), _)| *pk == partition).collect();
                            let oldest = rows.first().and_then(|(_, id)| {
                                let row = state.predictions.get(id)?;
                                Some((prediction_pk(**id), "PRED".to_owned(), rfc3339(row.registered_at)))
                            });
                            (rows.len() as u64, oldest)
                        }
                        Index::Work | Index::Received => {
                            let map = if index == Index::Work { &state.work_index } else { &state.recv_index };
                            let rows: Vec<_> = map
                                .range((partition.clone(), String::new())..)
                                .take_while(|((pk, _), _)| *pk == partition)
                                .collect();
                            let oldest = rows.first().and_then(|(_, (id, status))| {
                                let row = state.events.get(&(*id, status.clone()))?;
                                let since = if index == Index::Work { row.work_since? } else { row.received_at };
                                Some((prediction_pk(*id), format!("EVENT#{status}"), rfc3339(since)))
                            });
                            (rows.len() as u64, oldest)
                        }
                    };
                    Backlog { partition, count, oldest }
                })
                .collect())
        })
        .await
    }

    /// Marks `id` forgotten at `at` until `until`, unless an earlier erasure marked it.
    pub async fn mark_forgotten(&self, id: PredictionId, at: OffsetDateTime, until: OffsetDateTime) -> Result<()> {
        self.call("PutItem", |state| {
            state.forgotten.entry(id).or_insert(Mark { at, until });
            Ok(())
        })
        .await
    }

    /// Holds the work of one event of `id` for `hooks forget` for `hold`, as a run's
    /// claim would. False, changing nothing, while a run holds a live claim. True when
    /// the event is already gone.
    pub async fn fence_work(&self, id: PredictionId, status: &Status, token: &str, hold: Duration) -> Result<bool> {
        let now = crate::clock::now();
        self.call("UpdateItem", |state| {
            let Some(event) = state.events.get_mut(&(id, status.to_string())) else { return Ok(true) };
            let live = event
                .claim
                .as_ref()
                .is_some_and(|held| held.until.unix_timestamp() >= now.unix_timestamp() && held.token != token);
            if live {
                return Ok(false);
            }
            event.claim = Some(super::Claimed { token: token.to_owned(), until: now + hold });
            Ok(true)
        })
        .await
    }

    /// Takes back a fence [`fence_work`](Self::fence_work) put.
    pub async fn unfence_work(&self, id: PredictionId, status: &Status, token: &str) -> Result<()> {
        self.call("UpdateItem", |state| {
            if let Some(event) = state.events.get_mut(&(id, status.to_string()))
                && event.claim.as_ref().is_some_and(|held| held.token == token)
            {
                event.claim = None;
            }
            Ok(())
        })
        .await
    }

    /// Seals a unit of work of a forgotten prediction, as the DynamoDB adapter does.
    pub async fn seal_work(&self, id: PredictionId, status: &Status) -> Result<()> {
        let now = crate::clock::now();
        self.call("UpdateItem", |state| {
            let key = (id, status.to_string());
            if let Some(event) = state.events.get_mut(&key) {
                event.forgotten_at.get_or_insert(now);
                state.set_work(&key, None);
            }
            Ok(())
        })
        .await
    }

    /// Deletes the items of `id` with these sort keys.
    pub async fn delete_items(&self, id: PredictionId, sort_keys: &[String]) -> Result<()> {
        self.call("BatchWriteItem", |state| {
            for sk in sort_keys {
                state.delete_item(id, sk);
            }
            Ok(())
        })
        .await
    }

    /// The event record of one unit of work, as a JSON object.
    pub async fn event_item(&self, id: PredictionId, status: &Status) -> Result<Option<Value>> {
        let sk = event_sk(status);
        self.call("GetItem", |state| Ok(state.items_of(id).into_iter().find(|item| item["sk"] == sk.as_str()))).await
    }

    /// Every event the worker acts on whose work ended (a run's end, a give-up), received
    /// from `since` to `until` (both included) that `keep` keeps, oldest first.
    pub async fn received_between(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        keep: impl Fn(&Received) -> bool + Sync,
    ) -> Result<Vec<Received>> {
        self.call("Query", |state| {
            let mut events: Vec<Received> = state
                .recv_index
                .values()
                .filter_map(|key: &EventKey| {
                    let row = state.events.get(key)?;
                    let status = Status::parse(&key.1).ok()?;
                    (row.received_at >= since && row.received_at <= until).then(|| Received {
                        id: key.0,
                        status,
                        received_at: rfc3339(row.received_at),
                        model: row.model.clone(),
                        work: work_state(row),
                        replayed_by: row.replay_runs.clone(),
                    })
                })
                .filter(|event| keep(event))
                .collect();
            events.sort_by(|a, b| {
                (&a.received_at, a.id, a.status.as_str()).cmp(&(&b.received_at, b.id, b.status.as_str()))
            });
            Ok(events)
        })
        .await
    }
}
