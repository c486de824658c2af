//! The truth about a prediction, from WriftAI.

use std::future::Future;

use crate::prediction::PredictionId;
use crate::wriftai::{ApiError, Fetched};

/// WriftAI's `GET /v1/predictions/{id}`. [`crate::wriftai::WriftAi`] is the real one.
pub trait PredictionSource: Send + Sync {
    /// `None` when WriftAI no longer knows it (never created, or its data expired).
    fn get(&self, id: PredictionId) -> impl Future<Output = Result<Option<Fetched>, ApiError>> + Send;

    /// The IDs of the account's newest predictions, at most `n` (`GET /v1/predictions`):
    /// what the token's account holds, to tell a purged prediction from a wrong token.
    fn newest(&self, n: u32) -> impl Future<Output = Result<Vec<PredictionId>, ApiError>> + Send;
}
