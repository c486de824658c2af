//! WriftAI in memory: a stand-in for its API, for tests. It creates, lists and cancels
//! predictions of its own, and answers `GET` for those and for any a test set.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::ports::PredictionSource;
use crate::prediction::{Prediction, PredictionId, Status};
use crate::wriftai::{ApiError, CreatePrediction, Fetched, Page};

/// What WriftAI would answer, set by the test or made by `create`, and how slowly.
#[derive(Default)]
pub struct MemoryWriftAi {
    /// Each prediction's JSON text, and the order they were made or set in.
    predictions: Mutex<BTreeMap<PredictionId, (u64, String)>>,
    made: Mutex<u64>,
    delay: Mutex<std::time::Duration>,
    asked: Mutex<BTreeMap<PredictionId, usize>>,
    /// Every `get`, in the order asked.
    order: Mutex<Vec<PredictionId>>,
    /// Every `get` is answered with this status, as a WriftAI that refuses the token.
    refusing: Mutex<Option<u16>>,
    /// Where the IDs of the predictions `create` makes come from: a seed and a count,
    /// so a simulation's are the same on every run; random without one.
    numbering: Mutex<Option<(u64, u64)>>,
    /// The predictions `create` made, until a simulation takes them.
    created: Mutex<Vec<PredictionId>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryWriftAi {
    /// Makes `raw` (a prediction's JSON) what WriftAI answers for its ID.
    pub fn set(&self, raw: &str) {
        let prediction = Prediction::from_json(raw.as_bytes()).expect("a test sets a valid prediction");
        let order = {
            let mut made = lock(&self.made);
            *made += 1;
            *made
        };
        let mut predictions = lock(&self.predictions);
        let order = predictions.get(&prediction.id).map_or(order, |(kept, _)| *kept);
        predictions.insert(prediction.id, (order, raw.to_owned()));
    }

    /// The prediction WriftAI holds under `id`, as it would answer.
    pub fn prediction(&self, id: PredictionId) -> Option<Prediction> {
        let raw = lock(&self.predictions).get(&id).map(|(_, raw)| raw.clone())?;
        Prediction::from_json(raw.as_bytes()).ok()
    }

    /// Every prediction it holds, oldest first.
    pub fn predictions(&self) -> Vec<Prediction> {
        let mut held: Vec<_> = lock(&self.predictions).values().cloned().collect();
        held.sort_by_key(|(order, _)| *order);
        held.into_iter().filter_map(|(_, raw)| Prediction::from_json(raw.as_bytes()).ok()).collect()
    }

    /// Makes every `get` take `delay`, as a degraded WriftAI would.
    pub fn slow(&self, delay: std::time::Duration) {
        *lock(&self.delay) = delay;
    }

    /// How often `get` was asked about `id`.
    pub fn asked(&self, id: PredictionId) -> usize {
        lock(&self.asked).get(&id).copied().unwrap_or(0)
    }

    /// The IDs asked about, in the order asked.
    pub fn order(&self) -> Vec<PredictionId> {
        lock(&self.order).clone()
    }

    /// Makes every `get` answer `status` (401: the token was revoked), or work again.
    pub fn refuse(&self, status: Option<u16>) {
        *lock(&self.refusing) = status;
    }

    /// Makes the IDs of the predictions `create` makes follow from `seed`, the same on
    /// every run.
    pub fn numbered(self, seed: u64) -> Self {
        *lock(&self.numbering) = Some((seed, 0));
        self
    }

    /// The predictions `create` made since the last take.
    pub fn take_created(&self) -> Vec<PredictionId> {
        std::mem::take(&mut *lock(&self.created))
    }

    fn next_id(&self) -> PredictionId {
        let mut numbering = lock(&self.numbering);
        let Some((seed, n)) = numbering.as_mut() else { return PredictionId::random() };
        *n += 1;
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let (high, low) = (mix(*seed ^ mix(*n)), mix(mix(*seed).wrapping_add(*n)));
        let uuid = uuid::Builder::from_random_bytes(((u128::from(high) << 64) | u128::from(low)).to_be_bytes());
        PredictionId::parse(&uuid.into_uuid().hyphenated().to_string()).expect("a hyphenated UUID is an ID")
    }

    /// Forgets a prediction, as WriftAI does some time after it ended: `get` answers
    /// that it does not know it.
    pub fn forget(&self, id: PredictionId) {
        lock(&self.predictions).remove(&id);
    }

    pub(crate) fn create(&self, request: &CreatePrediction) -> Result<Fetched, ApiError> {
        let (name, version) = match request.model.split_once(':') {
            Some((name, version)) => (name, Some(version)),
            None => (request.model.as_str(), None),
        };
        let Some((owner, name)) = name.split_once('/') else {
            return Err(ApiError::Status { status: 422, body: "model must be owner/name".into() });
        };
        let now = crate::clock::now().format(&Rfc3339).unwrap_or_default();
        let id = self.next_id();
        let version = version.map(|v| v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n)));
        let raw = json!({
            "id": id.to_string(), "status": "starting",
            "created_at": now, "updated_at": now,
            "model": {"owner": owner, "name": name, "version_number": version},
            "input": request.input, "output": null, "error": null, "metrics": null,
            "setup_time": null, "execution_time": null, "stream": false,
        })
        .to_string();
        self.set(&raw);
        lock(&self.created).push(id);
        Fetched::parse(raw)
    }

    pub(crate) fn list(&self, statuses: &[Status], cursor: Option<&str>, page_size: u32) -> Result<Page, ApiError> {
        let skip: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let wanted = |p: &Prediction| statuses.is_empty() || statuses.contains(&p.status);
        // Newest first, as WriftAI lists.
        let mut all: Vec<Prediction> = self.predictions().into_iter().filter(wanted).collect();
        all.reverse();
        let size = usize::try_from(page_size.max(1)).unwrap_or(usize::MAX);
        let items: Vec<Prediction> = all.iter().skip(skip).take(size).cloned().collect();
        let next = (skip + items.len() < all.len()).then(|| (skip + items.len()).to_string());
        let previous = (skip > 0).then(|| skip.saturating_sub(size).to_string());
        Ok(Page { items, next_cursor: next, previous_cursor: previous })
    }

    /// The IDs of the newest `n` predictions it holds, as a list's first page gives them.
    pub(crate) fn newest(&self, n: u32) -> Result<Vec<PredictionId>, ApiError> {
        if let Some(status) = *lock(&self.refusing) {
            return Err(ApiError::Status { status, body: "refused by the test".into() });
        }
        let mut held: Vec<(u64, PredictionId)> =
            lock(&self.predictions).iter().map(|(id, (order, _))| (*order, *id)).collect();
        held.sort_unstable_by(|a, b| b.cmp(a));
        Ok(held.into_iter().take(usize::try_from(n).unwrap_or(usize::MAX)).map(|(_, id)| id).collect())
    }

    pub(crate) fn cancel(&self, id: PredictionId) -> Result<Option<Fetched>, ApiError> {
        let Some(prediction) = self.prediction(id) else { return Ok(None) };
        if !prediction.status.is_terminal() {
            let raw = lock(&self.predictions).get(&id).map(|(_, raw)| raw.clone()).unwrap_or_default();
            let mut value: Value = serde_json::from_str(&raw).map_err(ApiError::Decode)?;
            value["status"] = json!("cancelled");
            self.set(&value.to_string());
        }
        let raw = lock(&self.predictions).get(&id).map(|(_, raw)| raw.clone()).unwrap_or_default();
        Fetched::parse(raw).map(Some)
    }

    pub(crate) async fn get(&self, id: PredictionId) -> Result<Option<Fetched>, ApiError> {
        *lock(&self.asked).entry(id).or_default() += 1;
        lock(&self.order).push(id);
        let delay = *lock(&self.delay);
        tokio::time::sleep(delay).await;
        if let Some(status) = *lock(&self.refusing) {
            return Err(ApiError::Status { status, body: "refused by the test".into() });
        }
        let raw = lock(&self.predictions).get(&id).map(|(_, raw)| raw.clone());
        raw.map(Fetched::parse).transpose()
    }
}

impl PredictionSource for MemoryWriftAi {
    async fn get(&self, id: PredictionId) -> Result<Option<Fetched>, ApiError> {
        MemoryWriftAi::get(self, id).await
    }

    async fn newest(&self, n: u32) -> Result<Vec<PredictionId>, ApiError> {
        MemoryWriftAi::newest(self, n)
    }
}
