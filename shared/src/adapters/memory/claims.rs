//! In-memory claims.

use serde_json::Value;
use time::OffsetDateTime;

use super::records::refuse_over_item_limit;
use super::{BodyRow, Claimed, MemoryLedger};
use crate::error::Result;
use crate::ports::{Claim, Claims, Reopened, Rerun, WorkState, kept_error};
use crate::prediction::{PredictionId, Status};
use crate::records::{RESULT_BYTES, cut};
use crate::shards::Index;

impl Claims for MemoryLedger {
    async fn claim(
        &self,
        id: PredictionId,
        status: &Status,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Claim> {
        let token = uuid::Uuid::new_v4().to_string();
        self.call("UpdateItem", |state| {
            let Some(event) = state.events.get_mut(&(id, status.to_string())) else {
                return Ok(Claim::Missing);
            };
            if event.forgotten_at.is_some() {
                return Ok(Claim::Forgotten);
            }
            if event.done.is_some() && !event.replay {
                return Ok(Claim::Done);
            }
            // DynamoDB compares whole seconds: `work_until < :now`.
            if event.claim.as_ref().is_some_and(|held| held.until.unix_timestamp() >= now.unix_timestamp()) {
                return Ok(Claim::Busy);
            }
            event.claim = Some(Claimed { token: token.clone(), until });
            event.attempts += 1;
            // An event holding no body: the run keeps it, as long as the event is kept.
            let keep_body = event.payload.is_none().then_some(event.keep);
            Ok(Claim::Acquired {
                token,
                attempt: event.attempts,
                rerun: event.replay || event.done.is_some(),
                keep_body,
            })
        })
        .await
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
        let shards = self.shards();
        let done = self
            .call("UpdateItem", |state| {
                let key = (id, status.to_string());
                let Some(event) = state.events.get_mut(&key) else { return Ok(None) };
                if event.claim.as_ref().is_none_or(|held| held.token != token) {
                    // Done by this very call, on an attempt whose answer was lost: still ours.
                    return Ok(event.done_by.as_deref().filter(|by| *by == token).and(event.expires_at));
                }
                let result = cut(result.clone(), RESULT_BYTES);
                refuse_over_item_limit(event.payload.as_ref().map_or(0, String::len) + result.to_string().len())?;
                event.done = Some(result);
                event.done_by = Some(token.to_owned());
                event.claim = None;
                event.replay = false;
                let expires_at = now + event.keep;
                event.expires_at = Some(expires_at);
                state.set_work(&key, None);
                state.enter_received(&key, shards);
                Ok(Some(expires_at))
            })
            .await?;
        let Some(expires_at) = done else { return Ok(false) };
        // The steps' expiry, as the DynamoDB adapter writes it: one write each, after.
        for name in steps {
            let stamped = self.call("UpdateItem", |state| {
                if let Some(row) = state.steps.get_mut(&(id, status.to_string(), name.clone()))
                    && row.outcome.is_some()
                {
                    row.expires_at = Some(expires_at);
                }
                Ok(())
            });
            if let Err(err) = stamped.await {
                tracing::warn!(step = %name, error = %err, "a done step keeps no expiry: it is kept");
            }
        }
        Ok(true)
    }

    async fn keep_body(&self, id: PredictionId, status: &Status, body: &str, expires_at: OffsetDateTime) -> Result<()> {
        self.call("PutItem", |state| {
            let row = BodyRow { body: body.to_owned(), expires_at: Some(expires_at) };
            state.bodies.insert((id, status.to_string()), row);
            Ok(())
        })
        .await
    }

    async fn release(
        &self,
        id: PredictionId,
        status: &Status,
        token: &str,
        error: &str,
        body: Option<&str>,
    ) -> Result<()> {
        let (now, shards) = (crate::clock::now(), self.shards());
        self.call("UpdateItem", |state| {
            let key = (id, status.to_string());
            if let Some(event) = state.events.get_mut(&key)
                && event.claim.as_ref().is_some_and(|held| held.token == token)
            {
                if event.payload.is_none() {
                    event.payload = body.map(str::to_owned);
                }
                event.claim = None;
                event.last_error = Some(kept_error(error).to_owned());
                event.failed_at = Some(now);
                state.enter_received(&key, shards);
            }
            Ok(())
        })
        .await
    }

    async fn reopen(
        &self,
        id: PredictionId,
        status: &Status,
        forget: &[String],
        rerun: Option<Rerun<'_>>,
    ) -> Result<Reopened> {
        let now = crate::clock::now();
        let pk = Index::Work.partition(id, self.shards());
        // The body to resend, read before anything is written, as the DynamoDB adapter does.
        let body = self.call("GetItem", |state| Ok(state.kept_body(&(id, status.to_string()), now))).await?;
        self.call("TransactWriteItems", |state| {
            let key = (id, status.to_string());
            let Some(event) = state.events.get_mut(&key) else { return Ok(Reopened::Missing) };
            // Past its expiry, which DynamoDB's TTL deletes days late, the event is gone:
            // its steps may be too, and reviving it would run them again.
            if event.expires_at.is_some_and(|at| at.unix_timestamp() <= now.unix_timestamp())
                || event.forgotten_at.is_some()
            {
                return Ok(Reopened::Missing);
            }
            if !event.needs_work {
                return Ok(Reopened::NoWork);
            }
            if let Some(rerun) = rerun {
                if event.replay_runs.iter().any(|run| run == rerun.run) {
                    return Ok(Reopened::AlreadyReplayed);
                }
                let state = WorkState::of(event.done.is_some(), event.gave_up.is_some(), event.failed_at.is_some());
                if rerun.only.is_some_and(|only| only != state) {
                    return Ok(Reopened::NotSelected);
                }
            }
            if event.claim.as_ref().is_some_and(|held| held.until.unix_timestamp() >= now.unix_timestamp()) {
                return Ok(Reopened::Running);
            }
            if let Some(rerun) = rerun {
                event.replay_runs.push(rerun.run.to_owned());
            }
            event.replay = true;
            event.expires_at = None;
            event.requeues = 0;
            event.gave_up = None;
            let reopened = Reopened::Reopened { payload: body, was_done: event.done.is_some() };
            state.set_work(&key, Some((pk, now)));
            for name in forget {
                state.steps.remove(&(id, status.to_string(), name.clone()));
            }
            // A body kept apart stops expiring too, as the DynamoDB adapter's reopen writes
            // it, until the rerun's completion keeps it again.
            if state.events.get(&key).is_some_and(|event| event.payload.is_none())
                && let Some(body) = state.bodies.get_mut(&key)
            {
                body.expires_at = None;
            }
            // The steps live until the work is done again, as the DynamoDB adapter keeps them.
            let status = status.to_string();
            let from = (id, status.clone(), String::new());
            for (_, step) in state.steps.range_mut(from..).take_while(|((of, at, _), _)| *of == id && *at == status) {
                step.expires_at = None;
            }
            Ok(reopened)
        })
        .await
    }
}
