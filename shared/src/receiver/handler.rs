//! Maps one Function URL request to one call of the record-and-enqueue path, and its
//! outcome to an HTTP answer. Every answer has a JSON body; none carries internals.

use std::convert::Infallible;

use super::checks::{self, Checks, Rejection};
use crate::adapters::SdkConfig;
use crate::adapters::backend::{Queue, Table};
use crate::adapters::secrets;
use crate::deadline::{ANSWER_MARGIN, time_left, within};
use crate::error::BoxError;
use crate::error::Error::OutOfTime;
use crate::ingest::{Ingest, Ingested};
use crate::metrics::Metrics;
use crate::ports::{Ledger, WorkQueue};
use crate::receiver::signature::{self, Verifier};
use crate::trace::TraceHeader;
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use tokio::time::{Instant, timeout_at};
use tracing::Instrument;

use super::config::ReceiverConfig;
use super::metrics::delivery_metrics;

/// How long WriftAI should wait before retrying a delivery for an ID we do not know yet.
const UNKNOWN_RETRY_AFTER_SECS: &str = "30";

/// What the receiver needs, built once per cold start: on Lambda, DynamoDB and SQS
/// ([`App::on_aws`]); the tests below use the in-memory adapters.
pub struct App<L, Q> {
    pub ingest: Ingest<L, Q>,
    pub checks: Checks,
}

impl App<Table, Queue> {
    /// Resolves the webhook secrets (Secrets Manager ARNs are read now, so no secret sits
    /// in the environment) and builds the record-and-enqueue path.
    pub async fn on_aws(aws: &SdkConfig, config: ReceiverConfig) -> Result<Self, BoxError> {
        let mut keys = Vec::with_capacity(config.secrets.len());
        for (var, secret) in &config.secrets {
            keys.push(secrets::resolve_var(aws, var, secret).await?);
        }
        if config.allow_unsigned {
            tracing::warn!(
                "ALLOW_UNSIGNED_WEBHOOKS=true and no WRIFTAI_WEBHOOK_SECRET: signatures are not checked, only prediction IDs"
            );
        }
        Ok(Self {
            ingest: Ingest::on_aws(aws, &config.ingest),
            checks: Checks { limits: config.limits, verifier: Verifier::new(keys, config.tolerance) },
        })
    }
}

impl<L: Ledger, Q: WorkQueue> App<L, Q> {
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, Infallible> {
        handle(&self.ingest, &self.checks, request).await
    }
}

pub(crate) async fn handle<L: Ledger, Q: WorkQueue>(
    ingest: &Ingest<L, Q>,
    checks: &Checks,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    // The calls below end `ANSWER_MARGIN` before the invocation's deadline (three
    // writes of up to `OPERATION_TIMEOUT` each would outlast the 10 s timeout): past it
    // the answer is a 503, and WriftAI's repeat finishes what was begun.
    let answer_by = request
        .lambda_context_ref()
        .map(|context| Instant::now() + time_left(context.deadline).saturating_sub(ANSWER_MARGIN));
    // This invocation's X-Ray trace: the work message carries it, and so the worker's
    // span for it joins this trace.
    let trace = request.lambda_context_ref().and_then(|context| context.xray_trace_id.as_deref());
    let trace = trace.and_then(TraceHeader::parse);
    let (parts, body) = request.into_parts();
    let body = match body {
        Body::Empty => Vec::new(),
        Body::Text(text) => text.into_bytes(),
        // lambda_http has already decoded a base64 body from the Function URL.
        Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    let now = crate::clock::now();
    let checked = checks::check(
        checks::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            content_type: parts.headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            signature: parts.headers.get(signature::HEADER).map(|v| v.as_bytes()),
            body,
        },
        checks,
        now.unix_timestamp(),
    );
    let delivery = match checked {
        Ok(delivery) => delivery,
        Err(rejection) => {
            tracing::info!(code = rejection.code(), reason = %rejection, "request refused");
            let mut metrics = Metrics::new("receiver");
            metrics.count("Rejected", 1);
            if matches!(rejection, Rejection::Unauthorized(_)) {
                metrics.count("SignatureFailures", 1);
            }
            metrics.emit();
            return Ok(refused(&rejection));
        }
    };

    let prediction = &delivery.prediction;
    let span = tracing::info_span!(
        "delivery",
        prediction_id = %prediction.id,
        status = %prediction.status,
        trace_id = trace.as_ref().map(TraceHeader::root),
    );
    let ingest = ingest.traced(trace.as_ref());
    let recorded = async {
        match checks.verifier {
            Some(_) => ingest.ingest(prediction, &delivery.raw, now).await,
            // Unsigned: anyone who knows the ID could have written this body, so nothing
            // in it is recorded; the worker asks WriftAI instead.
            None => ingest.trigger(prediction.id, now).await,
        }
    };
    let outcome = match answer_by {
        Some(by) => timeout_at(by, within(by, recorded)).instrument(span.clone()).await.unwrap_or(Err(OutOfTime)),
        None => recorded.instrument(span.clone()).await,
    };
    let _entered = span.enter();
    let metrics = delivery_metrics(checks, prediction, &outcome, crate::clock::now());
    metrics.emit();
    Ok(match outcome {
        Ok(Ingested::UnknownPrediction) => {
            // 429, not 404: WriftAI retries only 429 and 5xx, and a genuine event can
            // beat our own record of the prediction it belongs to. Forged IDs cost a
            // failed condition and a read, and write nothing. See docs/design.md, "Unknown IDs".
            tracing::warn!(outcome = "unknown_prediction", "delivery for a prediction we did not create");
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "unknown_prediction", "message": "no prediction with this id was created here"}),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static(UNKNOWN_RETRY_AFTER_SECS));
            response
        }
        Ok(Ingested::TooSoon { until }) => {
            // 429: WriftAI delivers it again after Retry-After, when a check may begin.
            let wait = (until - crate::clock::now()).whole_seconds().clamp(1, 60);
            tracing::info!(outcome = "check_too_soon", wait, "a check of this prediction began moments ago");
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "check_too_soon", "message": "a check of this prediction began moments ago; deliver again after Retry-After"}),
            );
            if let Ok(value) = header::HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Ok(outcome) => {
            let enqueued = matches!(
                outcome,
                Ingested::Recorded { enqueued: true }
                    | Ingested::Duplicate { enqueued: true }
                    | Ingested::Triggered { enqueued: true }
            );
            tracing::info!(outcome = outcome.as_str(), enqueued, "delivery accepted");
            json_response(StatusCode::OK, json!({"outcome": outcome.as_str(), "enqueued": enqueued}))
        }
        Err(err) => {
            // 5xx so WriftAI delivers again; the repeat finishes the job exactly once.
            tracing::error!(
                error = %crate::error::chain(&err),
                retryable = err.is_retryable(),
                "delivery not recorded"
            );
            let status =
                if err.is_retryable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::adapters::memory::{MemoryLedger, MemoryQueue};
    use crate::config::ActOn;
    use crate::ports::Ledger;
    use crate::prediction::PredictionId;
    use lambda_http::http;

    use super::*;

    async fn answer(ingest: &Ingest<&MemoryLedger, &MemoryQueue>, body: Body) -> (u16, serde_json::Value) {
        let request = http::Request::builder()
            .method("POST")
            .uri("https://example.lambda-url.us-east-1.on.aws/")
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let response = handle(ingest, &Checks::default(), request).await.unwrap();
        let status = response.status().as_u16();
        let json = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("expected a JSON text body, got {other:?}"),
        };
        (status, json)
    }

    fn body(id: PredictionId, status: &str) -> String {
        format!(r#"{{"id":"{id}","status":"{status}"}}"#)
    }

    #[tokio::test]
    async fn a_binary_body_is_read_like_a_text_one() {
        let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
        let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(60));
        let id = PredictionId::random();
        ledger.register(id, crate::clock::now()).await.unwrap();
        // Unsigned (the checks hold no secret): a body that parses asks for a check.
        let (status, json) = answer(&ingest, Body::Binary(body(id, "failed").into_bytes())).await;
        assert_eq!((status, &json["outcome"]), (200, &"check".into()));
        assert_eq!(queue.messages().len(), 1);
    }

    #[tokio::test]
    async fn a_backend_failure_is_a_503_without_details() {
        let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
        let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(60));
        let id = PredictionId::random();
        ledger.register(id, crate::clock::now()).await.unwrap();
        queue.fail_next.store(1, Ordering::SeqCst);
        let (status, json) = answer(&ingest, Body::Text(body(id, "succeeded"))).await;
        assert_eq!(status, 503);
        assert_eq!(json, serde_json::json!({"error": "unavailable", "message": "try again later"}));
    }

    #[tokio::test]
    async fn an_unsigned_delivery_records_nothing_it_claims_and_only_asks_for_a_check() {
        let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
        let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(60));
        let id = PredictionId::random();
        ledger.register(id, crate::clock::now()).await.unwrap();
        // Anyone who knows the ID can post this; Checks::default() checks no signature.
        let forged = format!(r#"{{"id":"{id}","status":"succeeded","output":"https://evil.example/x.png"}}"#);
        let (status, json) = answer(&ingest, Body::Text(forged)).await;
        assert_eq!((status, json), (200, serde_json::json!({"outcome": "check", "enqueued": true})));
        assert!(ledger.event(id, "succeeded").is_none(), "the forged status is not recorded");
        assert_eq!(ledger.prediction(id).unwrap().status, None, "nor does it move the prediction");
        assert_eq!(queue.messages(), [crate::message::Message::check(id)], "only a check is enqueued");
    }

    #[tokio::test]
    async fn an_unsigned_delivery_inside_a_checks_gap_is_a_429_with_its_end() {
        let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
        let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(60));
        let id = PredictionId::random();
        ledger.register(id, crate::clock::now()).await.unwrap();
        let gap_ends = crate::clock::now() + crate::ingest::CHECK_GAP;
        crate::ports::Ledger::check_begun(&ledger, id, Some(gap_ends)).await.unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri("https://example.lambda-url.us-east-1.on.aws/")
            .header("content-type", "application/json")
            .body(Body::Text(body(id, "succeeded")))
            .unwrap();
        let response = handle(&ingest, &Checks::default(), request).await.unwrap();
        assert_eq!(response.status(), 429);
        let wait: i64 = response.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=10).contains(&wait), "{wait}");
        assert!(queue.messages().is_empty(), "no check inside the gap");
    }

    #[tokio::test]
    async fn the_work_message_carries_the_trace_of_the_invocation_that_received_it() {
        let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
        let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(60));
        let checks = Checks { verifier: Verifier::new(["s3cret"], signature::DEFAULT_TOLERANCE), ..Checks::default() };
        let id = PredictionId::random();
        ledger.register(id, crate::clock::now()).await.unwrap();
        let text = body(id, "succeeded");
        let mut context = lambda_http::Context::default();
        context.deadline = u64::try_from(crate::clock::now().unix_timestamp() * 1000 + 10_000).unwrap();
        context.xray_trace_id =
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
        let request = http::Request::builder()
            .method("POST")
            .uri("https://example.lambda-url.us-east-1.on.aws/")
            .header("content-type", "application/json")
            .header(signature::HEADER, signature::sign("s3cret", crate::clock::now().unix_timestamp(), text.as_bytes()))
            .body(Body::Text(text))
            .unwrap()
            .with_lambda_context(context);
        assert_eq!(handle(&ingest, &checks, request).await.unwrap().status(), 200);
        let sent = queue.sent();
        let traces: Vec<_> = sent.iter().map(|(_, trace)| trace.as_ref().map(ToString::to_string)).collect();
        assert_eq!(
            traces,
            [Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_owned())]
        );
        assert!(ingest.trace().is_none(), "the path built at cold start keeps no invocation's trace");
    }

    #[tokio::test]
    async fn an_unknown_prediction_is_a_429() {
        let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
        let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(60));
        let (status, json) = answer(&ingest, Body::Text(body(PredictionId::random(), "succeeded"))).await;
        assert_eq!((status, &json["error"]), (429, &"unknown_prediction".into()));
        assert_eq!(ledger.item_count(), 0);
    }
}
