//! `/v1/predictions`: create (with `Prefer: wait` and `Validate-Input`), get, cancel.

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::Shared;
use crate::behaviour::Behaviour;
use crate::delivery::{self, Target};
use crate::error::ApiError;
use crate::lifecycle::{self, Run};
use crate::log::Stats;
use crate::prediction::{ModelRef, Prediction, Status, now_rfc3339};

/// `Prefer: wait` without a number, and the most any wait may hold a connection.
/// WriftAI's own cap is not documented; 60 s is the brief's default.
const MAX_WAIT_SECS: f64 = 60.0;

#[derive(Deserialize)]
struct CreateBody {
    model: Option<String>,
    input: Option<Value>,
    webhook: Option<WebhookBody>,
    stream: Option<bool>,
}

#[derive(Deserialize)]
struct WebhookBody {
    url: String,
    secret: Option<String>,
}

pub async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Prediction>), ApiError> {
    let body: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body is not a create request: {e}")))?;
    let model = body.model.ok_or_else(|| ApiError::bad_request("model is required"))?;
    let input = body.input.ok_or_else(|| ApiError::bad_request("input is required"))?;
    if validate_input(&headers) && !input.is_object() {
        return Err(ApiError::unprocessable("input must be a JSON object"));
    }
    let model = ModelRef::parse(&model)?;
    let behaviour = Behaviour::parse(&input, &model, state.config.step)?;
    let target = body.webhook.map(|w| webhook_target(w, state.config.allow_any_webhook_host)).transpose()?;

    let now = now_rfc3339();
    let prediction = Prediction {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: now.clone(),
        updated_at: now,
        status: Status::Pending,
        setup_time: None,
        execution_time: None,
        model,
        input,
        output: Value::Null,
        error: None,
        metrics: None,
        stream: body.stream.unwrap_or(false),
    };
    // Every creation takes a plan, webhook or not, so the chaos sequence depends only
    // on the number of creations.
    let plan = state.chaos.plan_next();
    Stats::bump(&state.stats.predictions);
    let cancel = state.store.insert(prediction.clone(), behaviour.clone());
    let id = prediction.id.clone();
    tracing::info!(prediction_id = %id, status = "pending", model = %prediction.model.name, "created");
    let outbox = target.map(|t| delivery::spawn(state.clone(), id.clone(), t, behaviour.clone(), plan));
    lifecycle::spawn(Run { state: state.clone(), initial: prediction.clone(), behaviour, cancel, outbox });
    let answer = match prefer_wait(&headers) {
        Some(wait) => wait_for_terminal(&state, &id, wait, prediction).await,
        None => prediction,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

pub async fn get(State(state): State<Shared>, Path(id): Path<String>) -> Result<Json<Prediction>, ApiError> {
    state.store.get(&id).map(Json).ok_or_else(|| ApiError::not_found("prediction"))
}

pub async fn cancel(State(state): State<Shared>, Path(id): Path<String>) -> Result<Json<Prediction>, ApiError> {
    let prediction = state.store.request_cancel(&id).ok_or_else(|| ApiError::not_found("prediction"))?;
    tracing::info!(prediction_id = %id, status = prediction.status.as_str(), "cancel requested");
    Ok(Json(prediction))
}

fn validate_input(headers: &HeaderMap) -> bool {
    headers.get("validate-input").and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The webhook URL must be http(s); and, unless allowed, on a loopback host.
fn webhook_target(webhook: WebhookBody, any_host: bool) -> Result<Target, ApiError> {
    let url = reqwest::Url::parse(&webhook.url)
        .map_err(|e| ApiError::unprocessable(format!("webhook.url is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::unprocessable("webhook.url must be http or https"));
    }
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback && !any_host {
        return Err(ApiError::unprocessable(
            "webhook.url must be on a loopback host (set SIM_ALLOW_ANY_WEBHOOK_HOST=1 to lift this)",
        ));
    }
    Ok(Target { url: webhook.url, secret: webhook.secret.filter(|s| !s.is_empty()) })
}

/// `Prefer: wait` or `Prefer: wait=<seconds>` (the official client sends floats such
/// as `wait=5.0`), among other preferences. An unreadable number is ignored, as RFC 7240
/// asks of preferences a server does not understand.
pub fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    let tokens = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .map(str::trim);
    for token in tokens {
        let (key, value) = match token.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (token, None),
        };
        if !key.eq_ignore_ascii_case("wait") {
            continue;
        }
        let secs = match value {
            None => MAX_WAIT_SECS,
            Some(v) => match v.parse::<f64>() {
                Ok(s) if s.is_finite() => s.clamp(0.0, MAX_WAIT_SECS),
                _ => continue,
            },
        };
        return Duration::try_from_secs_f64(secs).ok();
    }
    None
}

/// Holds until the prediction is terminal or `wait` elapses; answers the latest state.
async fn wait_for_terminal(state: &Shared, id: &str, wait: Duration, mut last: Prediction) -> Prediction {
    let deadline = Instant::now() + wait;
    // Subscribe before reading, so a change between the read and the wait still wakes us.
    let mut changes = state.store.subscribe();
    loop {
        match state.store.get(id) {
            Some(now) => last = now,
            None => return last,
        }
        if last.status.is_terminal() {
            return last;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return last },
            _ = tokio::time::sleep_until(deadline) => return last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn prefer(value: &'static str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("prefer", HeaderValue::from_static(value));
        prefer_wait(&headers)
    }

    #[test]
    fn prefer_wait_reads_plain_whole_and_fractional_forms() {
        assert_eq!(prefer("wait"), Some(Duration::from_secs(60)));
        assert_eq!(prefer("wait=5"), Some(Duration::from_secs(5)));
        assert_eq!(prefer("wait=2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(prefer("respond-async, wait=1"), Some(Duration::from_secs(1)));
        assert_eq!(prefer("wait=9999"), Some(Duration::from_secs(60)));
    }

    #[test]
    fn no_or_unreadable_prefer_wait_means_no_wait() {
        assert_eq!(prefer("respond-async"), None);
        assert_eq!(prefer("wait=soon"), None);
        assert_eq!(prefer_wait(&HeaderMap::new()), None);
    }

    #[test]
    fn webhooks_go_to_loopback_hosts_unless_allowed() {
        let hook = |url: &str| WebhookBody { url: url.into(), secret: None };
        assert!(webhook_target(hook("http://127.0.0.1:9/x"), false).is_ok());
        assert!(webhook_target(hook("http://localhost:9/x"), false).is_ok());
        assert!(webhook_target(hook("http://[::1]:9/x"), false).is_ok());
        assert!(webhook_target(hook("http://example.com/x"), false).is_err());
        assert!(webhook_target(hook("http://example.com/x"), true).is_ok());
        assert!(webhook_target(hook("ftp://127.0.0.1/x"), true).is_err());
    }
}
