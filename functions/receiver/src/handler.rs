//! Maps one Function URL request to one call of the record-and-enqueue path, and its
//! outcome to an HTTP answer. Every answer has a JSON body; none carries internals.

use std::convert::Infallible;

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use shared::ingest::{Ingest, Ingested};
use shared::ports::{Ledger, WorkQueue};
use shared::webhook::{self, Limits, Rejection};
use time::OffsetDateTime;
use tracing::Instrument;

/// How long WriftAI should wait before retrying a delivery for an ID we do not know yet.
const UNKNOWN_RETRY_AFTER_SECS: &str = "30";

pub async fn handle<L: Ledger, Q: WorkQueue>(
    ingest: &Ingest<L, Q>,
    limits: &Limits,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body {
        Body::Empty => Vec::new(),
        Body::Text(text) => text.into_bytes(),
        // lambda_http has already decoded a base64 body from the Function URL.
        Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    let checked = webhook::check(
        webhook::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            content_type: parts.headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            body,
        },
        limits,
    );
    let delivery = match checked {
        Ok(delivery) => delivery,
        Err(rejection) => {
            tracing::info!(code = rejection.code(), reason = %rejection, "request refused");
            return Ok(refused(&rejection));
        }
    };

    let prediction = &delivery.prediction;
    let span = tracing::info_span!("delivery", prediction_id = %prediction.id, status = %prediction.status);
    let outcome = ingest.ingest(prediction, &delivery.raw, OffsetDateTime::now_utc()).instrument(span.clone()).await;
    let _entered = span.enter();
    Ok(match outcome {
        Ok(Ingested::UnknownPrediction) => {
            // 429, not 404: WriftAI retries only 429 and 5xx, and a genuine event can
            // beat our own record of the prediction it belongs to. Forged IDs cost a
            // failed condition and write nothing. See README, "Unknown IDs".
            tracing::warn!(outcome = "unknown_prediction", "delivery for a prediction we did not create");
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "unknown_prediction", "message": "no prediction with this id was created here"}),
            );
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static(UNKNOWN_RETRY_AFTER_SECS));
            response
        }
        Ok(outcome) => {
            let enqueued = matches!(outcome, Ingested::Recorded { enqueued: true } | Ingested::Duplicate { enqueued: true });
            tracing::info!(outcome = outcome.as_str(), enqueued, "delivery accepted");
            json_response(StatusCode::OK, json!({"outcome": outcome.as_str(), "enqueued": enqueued}))
        }
        Err(err) => {
            // 5xx so WriftAI delivers again; the repeat finishes the job exactly once.
            tracing::error!(error = &err as &dyn std::error::Error, retryable = err.is_retryable(), "delivery not recorded");
            let status = if err.is_retryable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
            json_response(status, json!({"error": "unavailable", "message": "try again later"}))
        }
    })
}

fn refused(rejection: &Rejection) -> Response<Body> {
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json_response(status, json!({"error": rejection.code(), "message": rejection.to_string()}));
    if *rejection == Rejection::MethodNotAllowed {
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    }
    response
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}
