//! In-memory claims, and a stand-in for WriftAI's `GET`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;
use time::OffsetDateTime;

use super::records::refuse_over_item_limit;
use super::{MemoryLedger, Work};
use crate::error::Result;
use crate::ports::{Claim, Claims, PredictionSource, kept_error};
use crate::prediction::{PredictionId, Status};
use crate::records::{RESULT_BYTES, cut};
use crate::wriftai::{ApiError, Fetched};

impl Claims for MemoryLedger {
    async fn claim(
        &self,
        id: PredictionId,
        status: &Status,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Claim> {
        let mut state = self.lock();
        let Some(event) = state.events.get_mut(&(id, status.to_string())) else {
            return Ok(Claim::Missing);
        };
        match &event.work {
            Work::Done(_) => return Ok(Claim::Done),
            Work::InProgress { until: held, .. } if *held >= now => return Ok(Claim::Busy),
            Work::InProgress { .. } | Work::None => {}
        }
        let token = uuid::Uuid::new_v4().to_string();
        event.work = Work::InProgress { token: token.clone(), until };
        event.attempts += 1;
        Ok(Claim::Acquired { token, attempt: event.attempts })
    }

    async fn complete(
        &self,
        id: PredictionId,
        status: &Status,
        token: &str,
        result: &Value,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut state = self.lock();
        let Some(event) = state.events.get_mut(&(id, status.to_string())) else { return Ok(false) };
        if !matches!(&event.work, Work::InProgress { token: held, .. } if held == token) {
            return Ok(false);
        }
        let result = cut(result.clone(), RESULT_BYTES);
        refuse_over_item_limit(event.payload.as_ref().map_or(0, String::len) + result.to_string().len())?;
        event.work = Work::Done(result);
        event.work_since = None;
        event.expires_at = Some(now + event.keep);
        Ok(true)
    }

    async fn release(&self, id: PredictionId, status: &Status, token: &str, error: &str) -> Result<()> {
        let mut state = self.lock();
        if let Some(event) = state.events.get_mut(&(id, status.to_string()))
            && matches!(&event.work, Work::InProgress { token: held, .. } if held == token)
        {
            event.work = Work::None;
            event.last_error = Some(kept_error(error).to_owned());
        }
        Ok(())
    }
}

/// What WriftAI would answer to `GET /v1/predictions/{id}`, set by the test, and how
/// slowly.
#[derive(Default)]
pub struct MemorySource {
    predictions: Mutex<BTreeMap<PredictionId, String>>,
    delay: Mutex<std::time::Duration>,
}

impl MemorySource {
    pub fn set(&self, raw: &str) {
        let prediction =
            crate::prediction::Prediction::from_json(raw.as_bytes()).expect("a test sets a valid prediction");
        self.predictions.lock().unwrap_or_else(|p| p.into_inner()).insert(prediction.id, raw.to_owned());
    }

    /// Makes every `get` take `delay`, as a degraded WriftAI would.
    pub fn slow(&self, delay: std::time::Duration) {
        *self.delay.lock().unwrap_or_else(|p| p.into_inner()) = delay;
    }

    pub fn forget(&self, id: PredictionId) {
        self.predictions.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

impl PredictionSource for MemorySource {
    async fn get(&self, id: PredictionId) -> Result<Option<Fetched>, ApiError> {
        let delay = *self.delay.lock().unwrap_or_else(|p| p.into_inner());
        tokio::time::sleep(delay).await;
        let raw = self.predictions.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
        raw.map(|raw| {
            let prediction = crate::prediction::Prediction::from_json(raw.as_bytes()).map_err(ApiError::Decode)?;
            Ok(Fetched { prediction, raw })
        })
        .transpose()
    }
}
