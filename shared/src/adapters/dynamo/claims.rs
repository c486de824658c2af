//! Work claims on event records. A run holds the work by its token (`work_token`,
//! `work_until`); `work = done` with its result marks it done, and stays so through a
//! replay until the replayed run stores a new result.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use serde_json::Value;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::{DynamoLedger, ENTER_RECEIVED, Item, conditional, is_condition_failed, n, resend, rfc3339, s, string};
use crate::error::{Error, Result};
use crate::ports::{Claim, Claims, Reopened, Rerun, WorkState, kept_error};
use crate::prediction::{PredictionId, Status};
use crate::records::{RESULT_BYTES, cut};

/// The most actions one `TransactWriteItems` takes.
const TRANSACTION_ITEMS: usize = 100;

/// How long a done event is kept when it does not say (`EVENT_TTL_DAYS`' default).
pub(super) const DEFAULT_KEEP_SECS: i64 = 30 * 86_400;

fn attempts(item: &Item) -> u32 {
    item.get("work_attempts").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// A run a replay asked for (issue 33, defect 8: not only of done work), or of done work.
fn rerun(item: &Item) -> bool {
    item.contains_key("replay") || string(item, "work") == Some("done")
}

/// How long past its completion a run keeps the body it works on, when the event holds
/// none: as long as the event is kept once its work is done.
fn keep_body(item: &Item) -> Option<time::Duration> {
    if item.contains_key("payload") {
        return None;
    }
    let keep = item.get("keep_secs").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
    Some(time::Duration::seconds(keep.unwrap_or(DEFAULT_KEEP_SECS)))
}

/// Done, and no replay asked for since.
fn done(item: &Item) -> bool {
    string(item, "work") == Some("done") && !item.contains_key("replay")
}

impl Claims for DynamoLedger {
    async fn claim(
        &self,
        id: PredictionId,
        status: &Status,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Claim> {
        let token = uuid::Uuid::new_v4().to_string();
        let request = self
            .update_event(id, status)
            .update_expression("SET work_token = :token, work_until = :until ADD work_attempts :one")
            // Not done (or done with a replay asked for), and free or held by a run whose
            // deadline has passed (it timed out or died).
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(forgotten_at) \
                 AND (attribute_not_exists(#work) OR attribute_exists(replay)) \
                 AND (attribute_not_exists(work_token) OR work_until < :now)",
            )
            .expression_attribute_names("#work", "work")
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":until", n(until.unix_timestamp()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .expression_attribute_values(":one", n(1))
            // The whole item, not only what changed: whether it was done before (a
            // replay's rerun, which the worker's EndToEnd metric leaves out).
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match resend(|| request.clone().send()).await {
            Ok(out) => Ok(Claim::Acquired {
                token,
                attempt: out.attributes().map_or(1, attempts),
                rerun: out.attributes().is_some_and(rerun),
                keep_body: out.attributes().and_then(keep_body),
            }),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => Ok(match e.item() {
                    None => Claim::Missing,
                    Some(old) if old.contains_key("forgotten_at") => Claim::Forgotten,
                    // Our own claim: an earlier attempt of this call was applied but its
                    // answer was lost, and the SDK (or `resend`) tried again. Without
                    // this the unit would look busy until the claim expired.
                    Some(old) if string(old, "work_token") == Some(token.as_str()) => {
                        Claim::Acquired { attempt: attempts(old), rerun: rerun(old), keep_body: keep_body(old), token }
                    }
                    Some(old) if done(old) => Claim::Done,
                    Some(_) => Claim::Busy,
                }),
                _ => Err(Error::store("UpdateItem", err)),
            },
        }
    }

    async fn complete(
        &self,
        id: PredictionId,
        status: &Status,
        token: &str,
        result: &Value,
        steps: &[String],
        now: OffsetDateTime,
    ) -> Result<bool> {
        let request = self
            .entering_received(id, self.update_event(id, status))
            // Leaving the `work` index: the reconciler stops looking at it; entering
            // `received`, done, for `hooks replay` by filter.
            // From now on the event may expire: `keep_secs` after the work was done (an
            // event recorded before `keep_secs` existed keeps the default TTL).
            .update_expression(format!(
                "SET #work = :done, work_result = :result, done_at = :now, done_by = :token, \
                 expires_at = if_not_exists(keep_secs, :keep) + :now_secs, {ENTER_RECEIVED} \
                 REMOVE work_token, work_until, work_pk, work_since, replay",
            ))
            .condition_expression("work_token = :token")
            .expression_attribute_names("#work", "work")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":result", s(cut(result.clone(), RESULT_BYTES).to_string()))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":now_secs", n(now.unix_timestamp()))
            .expression_attribute_values(":keep", n(DEFAULT_KEEP_SECS))
            .expression_attribute_values(":token", s(token))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let expires_at = match resend(|| request.clone().send()).await {
            Ok(out) => out.attributes().and_then(|new| new.get("expires_at")).cloned(),
            Err(err) if is_condition_failed(&err) => {
                // Done by this very call, on an attempt whose answer was lost: still ours.
                let old = err.as_service_error().and_then(|e| match e {
                    UpdateItemError::ConditionalCheckFailedException(e) => e.item(),
                    _ => None,
                });
                match old.filter(|old| string(old, "done_by") == Some(token)) {
                    Some(old) => old.get("expires_at").cloned(),
                    None => return Ok(false),
                }
            }
            Err(err) => return Err(Error::store("UpdateItem", err)),
        };
        if let Some(expires_at) = expires_at {
            self.expire_steps(id, status, steps, expires_at).await;
        }
        Ok(true)
    }

    async fn keep_body(&self, id: PredictionId, status: &Status, body: &str, expires_at: OffsetDateTime) -> Result<()> {
        // A put, whole: a rerun's completion (a replay's) writes it again, with the
        // event's new expiry, from the body its message carried.
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(super::prediction_pk(id)))
            .item("sk", s(super::body_sk(status)))
            .item("body", s(body))
            .item("expires_at", n(expires_at.unix_timestamp()));
        resend(|| request.clone().send()).await.map(drop).map_err(|e| Error::store("PutItem", e))
    }

    async fn release(
        &self,
        id: PredictionId,
        status: &Status,
        token: &str,
        error: &str,
        body: Option<&str>,
    ) -> Result<()> {
        // Only the claim goes: done work (a replay that failed) stays done, with its
        // result, and the replay stays asked for.
        let keep = if body.is_some() { ", payload = if_not_exists(payload, :body)" } else { "" };
        let request = self
            .entering_received(id, self.update_event(id, status))
            .update_expression(format!(
                "SET last_error = :error, failed_at = :now, {ENTER_RECEIVED}{keep} REMOVE work_token, work_until"
            ))
            .condition_expression("work_token = :token")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":error", s(kept_error(error)))
            .expression_attribute_values(":now", s(rfc3339(crate::clock::now())));
        let request = match body {
            Some(body) => request.expression_attribute_values(":body", s(body)),
            None => request,
        };
        // Already released, or taken over after it expired: nothing of ours to free.
        conditional(resend(|| request.clone().send()).await).map(drop)
    }

    async fn reopen(
        &self,
        id: PredictionId,
        status: &Status,
        forget: &[String],
        rerun: Option<Rerun<'_>>,
    ) -> Result<Reopened> {
        // Whether a claim is still live is judged on the table's clock, not the
        // operator's: the clock that set `work_until` is the Lambda's, and a laptop's
        // may be minutes off.
        let (now, event) = self.server_now(id, status).await?;
        let Some(event) = event else { return Ok(Reopened::Missing) };
        // The body to resend, read before anything is written: a read that fails leaves
        // the work as it was. Kept apart, it stops expiring in the same write, as the
        // event does, until the rerun's completion keeps it again with the new expiry.
        let body = self.kept_body(id, status, Some(&event), now).await?;
        let apart = body.as_ref().is_some_and(|(_, at)| *at == super::BodyIn::Apart);
        let payload = body.map(|(body, _)| body);
        // Its steps live as long as the event, and the event is about to live until its
        // work is done again: their expiry goes in the same write, so none of them
        // vanishes (by its time, or by TTL) before the replayed run reaches it.
        let expiring = self.expiring_steps(id, status, forget).await?;
        let (stamp, once) = match rerun {
            Some(rerun) => {
                (", replay_runs :runs", format!(" AND NOT contains(replay_runs, :run){}", still_in(rerun.only)))
            }
            None => ("", String::new()),
        };
        let reopen = Update::builder()
            .table_name(&self.table)
            .key("pk", s(super::prediction_pk(id)))
            .key("sk", s(super::event_sk(status)))
            .update_expression(format!(
                "SET work_pk = :work, work_since = :since, reopened_at = :since, replay = :since, \
                 keep_secs = if_not_exists(keep_secs, :keep) \
                 ADD reopened :one{stamp} \
                 REMOVE expires_at, requeues, gave_up, gave_up_at",
            ))
            // An event past its expiry, which DynamoDB's TTL deletes days late, is gone:
            // its steps may be too, and reviving it would run them again.
            .condition_expression(format!(
                "attribute_exists(enqueue) AND attribute_not_exists(forgotten_at) \
                 AND (attribute_not_exists(expires_at) OR expires_at > :now) \
                 AND (attribute_not_exists(work_token) OR work_until < :now){once}",
            ))
            .expression_attribute_values(":work", s(crate::shards::Index::Work.partition(id, self.shards)))
            // The walk orders by `work_since`: this write's own time, to the nanosecond,
            // never the Date header's whole second that many reopens share.
            .expression_attribute_values(":since", s(rfc3339(crate::clock::now())))
            .expression_attribute_values(":keep", n(DEFAULT_KEEP_SECS))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let reopen = match rerun {
            Some(rerun) => {
                let reopen = reopen
                    .expression_attribute_values(":run", s(rerun.run))
                    .expression_attribute_values(":runs", AttributeValue::Ss(vec![rerun.run.to_owned()]));
                match rerun.only {
                    Some(_) => reopen
                        .expression_attribute_names("#work", "work")
                        .expression_attribute_values(":done", s("done")),
                    None => reopen,
                }
            }
            None => reopen,
        };
        let reopen = reopen.build().map_err(|e| Error::store("TransactWriteItems", e))?;
        // The steps to run again go in the same write: no run can claim the work between
        // the two and find their old outcomes.
        let mut items = vec![TransactWriteItem::builder().update(reopen).build()];
        for name in forget {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(super::prediction_pk(id)))
                .key("sk", s(super::step_sk(status, name)))
                .build()
                .map_err(|e| Error::store("TransactWriteItems", e))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        let body_sk = apart.then(|| super::body_sk(status));
        for sk in expiring.into_iter().chain(body_sk) {
            let keep = Update::builder()
                .table_name(&self.table)
                .key("pk", s(super::prediction_pk(id)))
                .key("sk", s(sk))
                .update_expression("REMOVE expires_at")
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(|e| Error::store("TransactWriteItems", e))?;
            items.push(TransactWriteItem::builder().update(keep).build());
        }
        // One token for every attempt: a repeat after a lost answer is not applied twice.
        // A transaction that met another write of the event (the reconciler's requeue, a
        // claim) is sent again, twice at most.
        let token = uuid::Uuid::new_v4().to_string();
        let send =
            || self.client.transact_write_items().set_transact_items(Some(items.clone())).client_request_token(&token);
        let mut sent = send().send().await;
        for _ in 0..2 {
            match &sent {
                Err(err) if conflicted(err) => sent = send().send().await,
                _ => break,
            }
        }
        match sent {
            Ok(_) => Ok(Reopened::Reopened { payload, was_done: string(&event, "work") == Some("done") }),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled))
                    if cancelled.cancellation_reasons().first().and_then(|r| r.code())
                        == Some("ConditionalCheckFailed") =>
                {
                    Ok(match cancelled.cancellation_reasons()[0].item() {
                        None => Reopened::Missing,
                        // Gone, or its prediction forgotten: nothing of it runs again.
                        Some(old) if !super::live(old, now) || old.contains_key("forgotten_at") => Reopened::Missing,
                        Some(old) if !old.contains_key("enqueue") => Reopened::NoWork,
                        Some(old) => match rerun {
                            Some(rerun) if replayed_by(old, rerun.run) => Reopened::AlreadyReplayed,
                            Some(rerun) if rerun.only.is_some_and(|only| only != work_state(old)) => {
                                Reopened::NotSelected
                            }
                            _ => Reopened::Running,
                        },
                    })
                }
                _ => Err(Error::store("TransactWriteItems", err)),
            },
        }
    }
}

impl DynamoLedger {
    /// The sort keys of the unit's steps that carry an expiry (a done unit's), but those
    /// in `forget`, which the reopen deletes: at most what one transaction holds beside
    /// the reopen and the deletes (a unit of more steps keeps the rest's expiry).
    async fn expiring_steps(&self, id: PredictionId, status: &Status, forget: &[String]) -> Result<Vec<String>> {
        let forgotten: Vec<String> = forget.iter().map(|name| super::step_sk(status, name)).collect();
        // Room is left for the reopen, the deletes and the body kept apart.
        let room = TRANSACTION_ITEMS.saturating_sub(2 + forget.len());
        let (mut expiring, mut start) = (Vec::new(), None);
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :steps)")
                .filter_expression("attribute_exists(expires_at)")
                .projection_expression("sk")
                .expression_attribute_values(":pk", s(super::prediction_pk(id)))
                .expression_attribute_values(":steps", s(format!("STEP#{status}#")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::store("Query", e))?;
            let sks = out.items().iter().filter_map(|item| string(item, "sk"));
            expiring.extend(sks.filter(|sk| !forgotten.iter().any(|f| f == sk)).map(str::to_owned));
            start = out.last_evaluated_key;
            if start.is_none() || expiring.len() >= room {
                expiring.truncate(room);
                return Ok(expiring);
            }
        }
    }

    /// Gives the finished `steps` of a unit of work done the event's expiry. A step
    /// forgotten meanwhile (a replay's `--forget-step`) is not written back.
    async fn expire_steps(&self, id: PredictionId, status: &Status, steps: &[String], expires_at: AttributeValue) {
        for name in steps {
            let stamp = self
                .update(super::prediction_pk(id), super::step_sk(status, name))
                .update_expression("SET expires_at = :at")
                .condition_expression("#state = :finished")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":finished", s("finished"))
                .expression_attribute_values(":at", expires_at.clone());
            if let Err(err) = conditional(resend(|| stamp.clone().send()).await) {
                tracing::warn!(step = %name, error = %crate::error::chain(&err), "a done step keeps no expiry: it is kept");
            }
        }
    }
}

/// The condition that an event's work is still in `state`.
fn still_in(state: Option<WorkState>) -> &'static str {
    match state {
        None => "",
        Some(WorkState::Done) => " AND #work = :done",
        Some(WorkState::DeadLettered) => " AND NOT (#work = :done) AND attribute_exists(gave_up)",
        Some(WorkState::Failed) => {
            " AND NOT (#work = :done) AND attribute_not_exists(gave_up) AND attribute_exists(failed_at)"
        }
        Some(WorkState::Waiting) => {
            " AND NOT (#work = :done) AND attribute_not_exists(gave_up) AND attribute_not_exists(failed_at)"
        }
    }
}

/// Where an event item's work stands.
pub(super) fn work_state(item: &Item) -> WorkState {
    WorkState::of(string(item, "work") == Some("done"), item.contains_key("gave_up"), item.contains_key("failed_at"))
}

/// Whether the bulk replay `run` reopened this event item.
fn replayed_by(item: &Item, run: &str) -> bool {
    item.get("replay_runs").and_then(|v| v.as_ss().ok()).is_some_and(|runs| runs.iter().any(|r| r == run))
}

/// A transaction cancelled only for meeting another write of the same items.
fn conflicted(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error() else {
        return false;
    };
    let codes: Vec<Option<&str>> = cancelled.cancellation_reasons().iter().map(|r| r.code()).collect();
    codes.contains(&Some("TransactionConflict"))
        && codes.iter().all(|c| matches!(c, Some("TransactionConflict" | "None") | None))
}

/// `Date: Wed, 02 Dec 2026 03:23:35 GMT`, the clock of an HTTP answer.
const HTTP_DATE: &str = "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT";

/// Keeps the `Date` of the answer to one call.
#[derive(Clone, Debug, Default)]
struct AnswerDate(Arc<Mutex<Option<String>>>);

impl Intercept for AnswerDate {
    fn name(&self) -> &'static str {
        "AnswerDate"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let date = context.response().headers().get("date").map(str::to_owned);
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = date;
        Ok(())
    }
}

impl DynamoLedger {
    /// The time on the table's side, the `Date` of DynamoDB's answer to a read of the
    /// event, and what the event holds of what a replay needs (its payload, whether it
    /// is done).
    pub(super) async fn server_now(&self, id: PredictionId, status: &Status) -> Result<(OffsetDateTime, Option<Item>)> {
        let date = AnswerDate::default();
        let read =
            self.get(super::prediction_pk(id), super::event_sk(status)).projection_expression("pk, payload, #work");
        let read = read.expression_attribute_names("#work", "work");
        let out = read.customize().interceptor(date.clone()).send().await.map_err(|e| Error::store("GetItem", e))?;
        let header = date.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let format = time::format_description::parse_borrowed::<2>(HTTP_DATE).ok();
        let parsed = header.as_deref().zip(format).and_then(|(h, f)| PrimitiveDateTime::parse(h, &f).ok());
        let now = parsed.map(PrimitiveDateTime::assume_utc).ok_or(Error::Corrupt {
            key: "Date".into(),
            reason: "DynamoDB's answer carries no readable Date header",
        })?;
        Ok((now, out.item))
    }
}
