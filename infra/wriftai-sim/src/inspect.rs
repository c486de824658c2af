//! `/_sim/*`, unauthenticated: health, chaos settings, the delivery log, counters, the
//! files that `output_url` predictions point at, and a redirect to anywhere.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::behaviour::FileFault;
use crate::chaos::{ChaosPatch, ChaosSettings};
use crate::error::ApiError;
use crate::log::{Attempt, StatsView};

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn get_chaos(State(state): State<Shared>) -> Json<ChaosSettings> {
    Json(state.chaos.settings())
}

/// Any subset of the settings; answers all of them. Parsed by hand so a bad body gets
/// the same JSON error shape as the API.
pub async fn put_chaos(State(state): State<Shared>, body: Bytes) -> Result<Json<ChaosSettings>, ApiError> {
    let patch: ChaosPatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not a chaos settings object: {e}")))?;
    let settings = state.chaos.apply(patch).map_err(ApiError::unprocessable)?;
    tracing::info!(?settings, "chaos settings changed");
    Ok(Json(settings))
}

#[derive(Deserialize)]
pub struct DeliveryFilter {
    prediction_id: Option<String>,
}

pub async fn deliveries(State(state): State<Shared>, Query(filter): Query<DeliveryFilter>) -> Json<Vec<Attempt>> {
    Json(state.log.list(filter.prediction_id.as_deref()))
}

pub async fn stats(State(state): State<Shared>) -> Json<StatsView> {
    Json(state.stats.view())
}

#[derive(Deserialize)]
pub struct InFlightOf {
    prediction_id: String,
}

/// `{"in_flight": n}`: deliveries of one prediction queued or being sent right now.
pub async fn in_flight(State(state): State<Shared>, Query(of): Query<InFlightOf>) -> Json<Value> {
    Json(json!({ "in_flight": state.stats.in_flight_of(&of.prediction_id) }))
}

#[derive(Deserialize)]
pub struct RedirectTo {
    to: String,
}

/// `302` to `?to=`: a redirect for the tests of what the worker fetches.
pub async fn redirect(Query(target): Query<RedirectTo>) -> Response {
    (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, target.to)]).into_response()
}

/// Deterministic content for `output_url` predictions, gone when the prediction's data
/// expires, like a real signed output URL; or the fault `input.sim.file_fault` asks for.
pub async fn file(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (content, fault) = state.store.file(&id).ok_or_else(|| ApiError::not_found("file"))?;
    let content = Bytes::from(content);
    let headers = [(CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()), (CONTENT_LENGTH, content.len().to_string())];
    let body = match fault {
        None => return Ok((headers, content).into_response()),
        // `once` is served as none or missing by the store.
        Some(FileFault::Missing | FileFault::Once) => return Err(ApiError::not_found("file")),
        Some(FileFault::ErrorOnce) => {
            return Ok((axum::http::StatusCode::SERVICE_UNAVAILABLE, "file_fault: error_once").into_response());
        }
        Some(FileFault::LongType) => {
            let long = format!("text/plain; x={}", "y".repeat(16 * 1024));
            return Ok(([(CONTENT_TYPE, long), (CONTENT_LENGTH, content.len().to_string())], content).into_response());
        }
        Some(FileFault::Cut) => {
            let half = content.slice(..content.len() / 2);
            let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "file_fault: cut");
            Body::from_stream(stream::iter([Ok(half), Err(cut)]))
        }
        Some(FileFault::Stall) => {
            let first = content.slice(..content.len().min(1024));
            Body::from_stream(stream::once(async { Ok::<_, std::io::Error>(first) }).chain(stream::pending()))
        }
    };
    Ok((headers, body).into_response())
}
