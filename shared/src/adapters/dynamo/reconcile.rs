//! The reconciler's walks over the sparse indexes, its cursors and its last run.

use aws_sdk_dynamodb::types::ReturnValue;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{
    DynamoLedger, ENTER_RECEIVED, PREDICTION_SK, RECONCILER_PK, conditional, decode_cursor, encode_cursor, event_sk,
    index_keys, n, parse_rfc3339, prediction_pk, resend, rfc3339, s, string,
};
use crate::error::{Error, Result};
use crate::ports::{OpenPrediction, Page, PageAsk, ReconcileStore, StaleWork};
use crate::prediction::{PredictionId, Status};
use crate::shards::Index;

const LAST_RUN_SK: &str = "LAST_RUN";

fn id_of(pk: Option<&str>) -> Option<PredictionId> {
    PredictionId::parse(pk?.strip_prefix("PRED#")?).ok()
}

impl DynamoLedger {
    /// One page of one partition of a sparse index.
    async fn walk(
        &self,
        index: Index,
        PageAsk { partition, from, before, after, limit }: PageAsk<'_>,
    ) -> Result<(Vec<super::Item>, Option<String>)> {
        let (name, pk, since) = index_keys(index);
        if from.is_some_and(|from| from >= before) {
            // A place past this run's bound (an age setting raised since it was saved):
            // nothing to read yet, and DynamoDB refuses a BETWEEN whose ends are reversed.
            return Ok((Vec::new(), None));
        }
        let (before, from) = (rfc3339(before), from.map(rfc3339));
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(name)
            .expression_attribute_names("#pk", pk)
            .expression_attribute_names("#since", since)
            .expression_attribute_values(":partition", s(partition))
            .expression_attribute_values(":before", s(&before));
        let query = match &from {
            // BETWEEN holds both ends: an item at `before` itself is dropped below.
            Some(from) => query
                .key_condition_expression("#pk = :partition AND #since BETWEEN :from AND :before")
                .expression_attribute_values(":from", s(from)),
            None => query.key_condition_expression("#pk = :partition AND #since < :before"),
        };
        let out = query
            .set_exclusive_start_key(decode_cursor(after))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| Error::store("Query", e))?;
        let items = out.items().iter().filter(|item| string(item, since) != Some(before.as_str())).cloned().collect();
        Ok((items, encode_cursor(out.last_evaluated_key())))
    }
}

impl ReconcileStore for DynamoLedger {
    fn partitions(&self, index: Index) -> Vec<String> {
        index.partitions(self.walked_shards())
    }

    async fn learn_shards(&self) -> Result<()> {
        self.learn_shards(true).await.map(drop)
    }

    async fn open_predictions(&self, ask: PageAsk<'_>) -> Result<Page<OpenPrediction>> {
        let (items, next) = self.walk(Index::Open, ask).await?;
        let items = items
            .iter()
            .filter_map(|item| {
                Some(OpenPrediction {
                    id: id_of(string(item, "pk"))?,
                    registered_at: parse_rfc3339(item, "open_since")?,
                })
            })
            .collect();
        Ok(Page { items, next })
    }

    async fn close(&self, id: PredictionId, reason: &str, now: OffsetDateTime) -> Result<()> {
        let outcome = self
            .update(prediction_pk(id), PREDICTION_SK)
            .update_expression("SET closed = :reason, closed_at = :now REMOVE open_pk, open_since")
            .condition_expression("attribute_exists(open_pk)")
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .send()
            .await;
        // Already out of the set: a webhook finished it meanwhile.
        conditional(outcome).map(drop)
    }

    async fn stale_work(&self, ask: PageAsk<'_>) -> Result<Page<StaleWork>> {
        let (items, next) = self.walk(Index::Work, ask).await?;
        let items = items
            .iter()
            .filter_map(|item| {
                let status = Status::parse(string(item, "sk")?.strip_prefix("EVENT#")?).ok()?;
                Some(StaleWork { id: id_of(string(item, "pk"))?, status, since: parse_rfc3339(item, "work_since")? })
            })
            .collect();
        Ok(Page { items, next })
    }

    async fn work_payload(&self, id: PredictionId, status: &Status) -> Result<Option<String>> {
        let get = self.get(prediction_pk(id), event_sk(status)).projection_expression("payload");
        let out = get.send().await.map_err(|e| Error::store("GetItem", e))?;
        match out.item() {
            Some(event) => {
                Ok(self.kept_body(id, status, Some(event), crate::clock::now()).await?.map(|(body, _)| body))
            }
            None => Ok(None),
        }
    }

    async fn touch_work(&self, id: PredictionId, status: &Status, now: OffsetDateTime) -> Result<Option<u32>> {
        // Work no run ended (a run that died without a word, a lost message) enters
        // `received` here, so a filter finds it while the reconciler requeues it.
        let outcome = self
            .entering_received(id, self.update_event(id, status))
            .update_expression(format!("SET work_since = :now, {ENTER_RECEIVED} ADD requeues :one"))
            .condition_expression("attribute_exists(work_pk)")
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        // Done meanwhile: it left the index, nothing to requeue.
        match outcome {
            Ok(out) => {
                let requeues = out.attributes().and_then(|a| a.get("requeues")).and_then(|v| v.as_n().ok());
                Ok(Some(requeues.and_then(|n| n.parse().ok()).unwrap_or(1)))
            }
            Err(err) if super::is_condition_failed(&err) => Ok(None),
            Err(err) => Err(Error::store("UpdateItem", err)),
        }
    }

    async fn give_up_work(&self, id: PredictionId, status: &Status, reason: &str, now: OffsetDateTime) -> Result<()> {
        let outcome = self
            .entering_received(id, self.update_event(id, status))
            .update_expression(format!(
                "SET gave_up = :reason, gave_up_at = :now, {ENTER_RECEIVED} REMOVE work_pk, work_since"
            ))
            .condition_expression("attribute_exists(work_pk)")
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .send()
            .await;
        conditional(outcome).map(drop)
    }

    async fn cursor(&self, walk: &str) -> Result<Option<String>> {
        let get = self.get(RECONCILER_PK, format!("CURSOR#{walk}"));
        let out = get.send().await.map_err(|e| Error::store("GetItem", e))?;
        Ok(out.item().and_then(|item| string(item, "cursor")).map(str::to_owned))
    }

    async fn save_cursor(&self, walk: &str, cursor: Option<&str>) -> Result<()> {
        let sk = format!("CURSOR#{walk}");
        match cursor {
            Some(cursor) => self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(RECONCILER_PK))
                .item("sk", s(sk))
                .item("cursor", s(cursor))
                .send()
                .await
                .map(drop)
                .map_err(|e| Error::store("PutItem", e)),
            None => self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(RECONCILER_PK))
                .key("sk", s(sk))
                .send()
                .await
                .map(drop)
                .map_err(|e| Error::store("DeleteItem", e)),
        }
    }
    async fn save_last_run(&self, summary: &Value, at: OffsetDateTime) -> Result<()> {
        let request = self
            .update(RECONCILER_PK.into(), LAST_RUN_SK)
            .update_expression("SET summary = :summary, ran_at = :at")
            .expression_attribute_values(":summary", s(summary.to_string()))
            .expression_attribute_values(":at", s(rfc3339(at)));
        resend(|| request.clone().send()).await.map(drop).map_err(|e| Error::store("UpdateItem", e))
    }

    async fn last_run(&self) -> Result<Option<Value>> {
        let out = self.get(RECONCILER_PK, LAST_RUN_SK).send().await.map_err(|e| Error::store("GetItem", e))?;
        Ok(out.item().map(|item| {
            let summary: Option<Value> = string(item, "summary").and_then(|text| serde_json::from_str(text).ok());
            json!({"ran_at": string(item, "ran_at"), "summary": summary})
        }))
    }
}
