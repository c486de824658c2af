//! The simulator's errors: why it could not start, and the JSON errors its API answers.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why the simulator could not start once its settings were read (clap refuses bad
/// settings before that). Each names what to fix, so a script's log says it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the webhook HTTP client")]
    HttpClient(#[source] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// An API error: the HTTP status and a JSON body `{"error": code, "message": text}`.
/// WriftAI's own error body shape is not documented; the official client only looks at
/// the status code, so this shape is ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Set on 429 only: the unix second at which the rate-limit window resets.
    pub ratelimit_reset: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), ratelimit_reset: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or invalid bearer token")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn rate_limited(reset: u64) -> Self {
        Self {
            ratelimit_reset: Some(reset),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; retry after x-ratelimit-reset",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "message": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(reset) = self.ratelimit_reset {
            response.headers_mut().insert("x-ratelimit-reset", HeaderValue::from(reset));
        }
        response
    }
}
