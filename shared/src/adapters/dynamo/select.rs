//! What `hooks replay` by filter selects from: the events the worker acts on whose work
//! a run ended (done, failed) or the reconciler gave up on, received within a window, read from the sparse `received` index alone (a `Query` of each shard
//! within the window, never a scan). The index carries what a filter looks at (`model`,
//! the work's state, the runs that replayed it), a few hundred bytes an event, so the
//! read costs that, never the items' payloads, and only the matches are kept.

use futures_util::{StreamExt, TryStreamExt, stream};
use time::OffsetDateTime;

use super::claims::work_state;
use super::{DynamoLedger, Item, index_keys, rfc3339, s, string};
use crate::error::{Error, Result};
use crate::ports::WorkState;
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;

/// Partitions queried at once.
const AT_ONCE: usize = 16;

/// One event the worker acts on, as a filter sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub id: PredictionId,
    pub status: Status,
    /// When the receiver (or the reconciler) recorded it, as the table keeps it.
    pub received_at: String,
    /// `owner/name`, when the body named one.
    pub model: Option<String>,
    pub work: WorkState,
    /// The bulk replays that reopened it (`replay_runs`).
    pub replayed_by: Vec<String>,
}

impl Received {
    pub fn replayed_by(&self, run: &str) -> bool {
        self.replayed_by.iter().any(|r| r == run)
    }
}

impl DynamoLedger {
    /// Every event the worker acts on whose work ended (a run's end, a give-up), received
    /// from `since` to `until` (both included) that `keep` keeps, oldest first. Read a
    /// page at a time, sixteen shards at once.
    pub async fn received_between(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        keep: impl Fn(&Received) -> bool + Sync,
    ) -> Result<Vec<Received>> {
        let (since, until) = (rfc3339(since), rfc3339(until));
        let keep = &keep;
        let mut events: Vec<Received> = stream::iter(Index::Received.partitions(self.walked_shards()))
            .map(|partition| self.received_in(partition, &since, &until, keep))
            .buffered(AT_ONCE)
            .try_concat()
            .await?;
        events
            .sort_by(|a, b| (&a.received_at, a.id, a.status.as_str()).cmp(&(&b.received_at, b.id, b.status.as_str())));
        Ok(events)
    }

    /// What `keep` keeps of one partition's events in the window.
    async fn received_in(
        &self,
        partition: String,
        since: &str,
        until: &str,
        keep: &(impl Fn(&Received) -> bool + Sync),
    ) -> Result<Vec<Received>> {
        let (name, key, sort) = index_keys(Index::Received);
        let mut kept = Vec::new();
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
            kept.extend(out.items().iter().filter_map(received).filter(|event| keep(event)));
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(kept);
            }
        }
    }
}

/// An index entry as a filter sees it; `None` for one that is not an event's.
fn received(item: &Item) -> Option<Received> {
    let id = PredictionId::parse(string(item, "pk")?.strip_prefix("PRED#")?).ok()?;
    let status = Status::parse(string(item, "sk")?.strip_prefix("EVENT#")?).ok()?;
    let replayed_by = item.get("replay_runs").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
    Some(Received {
        id,
        status,
        received_at: string(item, "received_at")?.to_owned(),
        model: string(item, "model").map(str::to_owned),
        work: work_state(item),
        replayed_by,
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
        let mut replayed = item(&[&base[..], &[("model", "acme/echo")]].concat());
        replayed.insert("replay_runs".into(), AttributeValue::Ss(vec!["r1".into(), "r2".into()]));
        let event = received(&replayed).unwrap();
        assert_eq!((event.id, &event.status, event.model.as_deref()), (id, &Status::Failed, Some("acme/echo")));
        assert!(event.replayed_by("r2") && !event.replayed_by("r3"));
    }

    #[test]
    fn an_entry_without_its_keys_is_passed_over() {
        assert!(received(&item(&[("pk", "PRED#not-an-id"), ("sk", "EVENT#failed"), ("received_at", "t")])).is_none());
        let id = PredictionId::random().to_string();
        assert!(received(&item(&[("pk", &format!("PRED#{id}")), ("sk", "RECORD#x"), ("received_at", "t")])).is_none());
        assert!(received(&item(&[("pk", &format!("PRED#{id}")), ("sk", "EVENT#failed")])).is_none());
    }
}
