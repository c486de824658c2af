//! Work claims on event records.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use serde_json::Value;
use time::OffsetDateTime;

use super::{DynamoLedger, Item, conditional, is_condition_failed, n, resend, rfc3339, s, string};
use crate::error::{Error, Result};
use crate::ports::{Claim, Claims, kept_error};
use crate::prediction::{PredictionId, Status};
use crate::records::{RESULT_BYTES, cut};

/// How long a done event is kept when it does not say (`EVENT_TTL_DAYS`' default).
pub(super) const DEFAULT_KEEP_SECS: i64 = 30 * 86_400;

fn attempts(item: &Item) -> u32 {
    item.get("work_attempts").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
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
        let request = self.update_event(id, status)
            .update_expression("SET #work = :in_progress, work_token = :token, work_until = :until ADD work_attempts :one")
            // Free, or held by a run whose deadline has passed (it timed out or died).
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#work) OR (#work = :in_progress AND work_until < :now))",
            )
            .expression_attribute_names("#work", "work")
            .expression_attribute_values(":in_progress", s("in_progress"))
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":until", n(until.unix_timestamp()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match resend(|| request.clone().send()).await {
            Ok(out) => Ok(Claim::Acquired { token, attempt: out.attributes().map_or(1, attempts) }),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => Ok(match e.item() {
                    None => Claim::Missing,
                    Some(old) if string(old, "work") == Some("done") => Claim::Done,
                    // Our own claim: an earlier attempt of this call was applied but its
                    // answer was lost, and the SDK (or `resend`) tried again. Without
                    // this the unit would look busy until the claim expired.
                    Some(old) if string(old, "work_token") == Some(token.as_str()) => {
                        Claim::Acquired { attempt: attempts(old), token }
                    }
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
        now: OffsetDateTime,
    ) -> Result<bool> {
        let request = self
            .update_event(id, status)
            // Leaving the `work` index: the reconciler stops looking at it.
            // From now on the event may expire: `keep_secs` after the work was done (an
            // event recorded before `keep_secs` existed keeps the default TTL).
            .update_expression(
                "SET #work = :done, work_result = :result, done_at = :now, done_by = :token, \
                 expires_at = if_not_exists(keep_secs, :keep) + :now_secs \
                 REMOVE work_token, work_until, work_pk, work_since",
            )
            .condition_expression("work_token = :token")
            .expression_attribute_names("#work", "work")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":result", s(cut(result.clone(), RESULT_BYTES).to_string()))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":now_secs", n(now.unix_timestamp()))
            .expression_attribute_values(":keep", n(DEFAULT_KEEP_SECS))
            .expression_attribute_values(":token", s(token))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match resend(|| request.clone().send()).await {
            Err(err) if is_condition_failed(&err) => {
                // Done by this very call, on an attempt whose answer was lost: still ours.
                let old = err.as_service_error().and_then(|e| match e {
                    UpdateItemError::ConditionalCheckFailedException(e) => e.item(),
                    _ => None,
                });
                Ok(old.is_some_and(|old| string(old, "done_by") == Some(token)))
            }
            other => conditional(other),
        }
    }

    async fn release(&self, id: PredictionId, status: &Status, token: &str, error: &str) -> Result<()> {
        let request = self
            .update_event(id, status)
            .update_expression("SET last_error = :error, failed_at = :now REMOVE #work, work_token, work_until")
            .condition_expression("work_token = :token")
            .expression_attribute_names("#work", "work")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":error", s(kept_error(error)))
            .expression_attribute_values(":now", s(rfc3339(OffsetDateTime::now_utc())));
        // Already released, or taken over after it expired: nothing of ours to free.
        conditional(resend(|| request.clone().send()).await).map(drop)
    }
}
