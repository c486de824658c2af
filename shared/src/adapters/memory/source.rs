//! A stand-in for WriftAI's `GET /v1/predictions/{id}`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::ports::PredictionSource;
use crate::prediction::PredictionId;
use crate::wriftai::{ApiError, Fetched};

/// What WriftAI would answer to `GET /v1/predictions/{id}`, set by the test, and how
/// slowly.
#[derive(Default)]
pub struct MemorySource {
    predictions: Mutex<BTreeMap<PredictionId, String>>,
    delay: Mutex<std::time::Duration>,
    asked: Mutex<BTreeMap<PredictionId, usize>>,
    /// Every `get`, in the order asked.
    order: Mutex<Vec<PredictionId>>,
    /// Every `get` is answered with this status, as a WriftAI that refuses the token.
    refusing: Mutex<Option<u16>>,
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

    /// How often `get` was asked about `id`.
    pub fn asked(&self, id: PredictionId) -> usize {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).get(&id).copied().unwrap_or(0)
    }

    /// The IDs asked about, in the order asked.
    pub fn order(&self) -> Vec<PredictionId> {
        self.order.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes every `get` answer `status` (401: the token was revoked), or work again.
    pub fn refuse(&self, status: Option<u16>) {
        *self.refusing.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    pub fn forget(&self, id: PredictionId) {
        self.predictions.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

impl PredictionSource for MemorySource {
    async fn get(&self, id: PredictionId) -> Result<Option<Fetched>, ApiError> {
        *self.asked.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default() += 1;
        self.order.lock().unwrap_or_else(|p| p.into_inner()).push(id);
        let delay = *self.delay.lock().unwrap_or_else(|p| p.into_inner());
        tokio::time::sleep(delay).await;
        if let Some(status) = *self.refusing.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(ApiError::Status { status, body: "refused by the test".into() });
        }
        let raw = self.predictions.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
        raw.map(|raw| {
            let prediction = crate::prediction::Prediction::from_json(raw.as_bytes()).map_err(ApiError::Decode)?;
            Ok(Fetched { prediction, raw })
        })
        .transpose()
    }
}
