//! `/_sim/notify`: a notification sink for the worker's notification example. It keeps
//! every JSON body posted to it, so a test can count the posts per prediction.

use std::sync::Mutex;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::Shared;
use crate::chaos::lock;
use crate::error::ApiError;

/// Posts kept; the oldest go first.
const MAX_POSTS: usize = 100_000;

#[derive(Default)]
pub struct Sink {
    posts: Mutex<Vec<Value>>,
}

impl Sink {
    /// Every post, or those whose `prediction_id` is `prediction_id`.
    pub fn posts(&self, prediction_id: Option<&str>) -> Vec<Value> {
        let posts = lock(&self.posts);
        posts.iter().filter(|p| prediction_id.is_none_or(|id| p["prediction_id"] == id)).cloned().collect()
    }

    fn keep(&self, post: Value) {
        let mut posts = lock(&self.posts);
        if posts.len() >= MAX_POSTS {
            posts.remove(0);
        }
        posts.push(post);
    }
}

pub async fn post(State(state): State<Shared>, body: Bytes) -> Result<StatusCode, ApiError> {
    let post: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("not a JSON body: {e}")))?;
    tracing::info!(prediction_id = %post["prediction_id"], "notification received");
    state.notifications.keep(post);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Filter {
    prediction_id: Option<String>,
}

pub async fn list(State(state): State<Shared>, Query(filter): Query<Filter>) -> Json<Vec<Value>> {
    Json(state.notifications.posts(filter.prediction_id.as_deref()))
}
