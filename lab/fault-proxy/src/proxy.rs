//! The HTTP side: each call is routed by its `X-Amz-Target` to DynamoDB Local or moto,
//! unless the rules pick a fault for it; `/_faults` reads and changes the rules.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::partitions::{Partitions, Throttled, Upstream};
use crate::rules::{Faults, Kind, Settings};

pub struct Proxy {
    pub faults: Faults,
    /// DynamoDB's limits per partition key, when the proxy models them.
    pub partitions: Option<Partitions>,
    pub dynamodb: String,
    pub sqs: String,
    pub http: reqwest::Client,
}

/// The emulator, as the partition model reads it for itself: with the caller's
/// credentials header, which selects DynamoDB Local's database.
struct Emulator<'a> {
    proxy: &'a Proxy,
    authorization: Option<HeaderValue>,
}

impl Upstream for Emulator<'_> {
    async fn call(&self, operation: &str, body: serde_json::Value) -> Option<serde_json::Value> {
        let mut request = self
            .proxy
            .http
            .post(&self.proxy.dynamodb)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
            .body(body.to_string());
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization.clone());
        }
        let answer = request.send().await.ok()?;
        answer.status().is_success().then_some(())?;
        answer.json().await.ok()
    }
}

/// Returned to hyper to close the connection without an answer: what the caller sees
/// of a reset or a call that timed out.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose")]
pub struct Dropped;

type Answer = Result<Response<Full<Bytes>>, Dropped>;

impl Proxy {
    pub async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Answer {
        if request.uri().path().starts_with("/_faults") {
            return Ok(self.control(request).await);
        }
        if request.uri().path().starts_with("/_partitions") {
            return Ok(self.partitions_control(request.method()));
        }
        let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let upstream = if target.starts_with("DynamoDB") {
            &self.dynamodb
        } else if target.starts_with("AmazonSQS") {
            &self.sqs
        } else {
            return Ok(json(StatusCode::BAD_REQUEST, r#"{"message":"fault-proxy: no X-Amz-Target"}"#));
        };
        let (parts, body) = request.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else { return Err(Dropped) };
        let fault = self.faults.decide(&target, &body);
        match fault {
            Some((Kind::Throttle, _)) => return Ok(throttled(&target)),
            Some((Kind::ServerError, _)) => return Ok(server_error(&target)),
            Some((Kind::Reset, _)) => return Err(Dropped),
            Some((Kind::Timeout, hold_ms)) => {
                tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                return Err(Dropped);
            }
            Some((Kind::LostAnswer | Kind::Delay, _)) | None => {}
        }
        let modelled = target.strip_prefix("DynamoDB_20120810.").zip(self.partitions.as_ref());
        let answer = match modelled {
            Some((operation, partitions)) => {
                let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let emulator = Emulator { proxy: &self, authorization: parts.headers.get("authorization").cloned() };
                let forward = self.forward(upstream, parts.clone(), body.clone());
                match partitions.serve(&emulator, operation, &parsed, forward).await {
                    Ok(answer) => answer,
                    Err(throttled) => return Ok(partition_throttled(&throttled)),
                }
            }
            None => self.forward(upstream, parts, body).await,
        };
        self.faults.forwarded();
        match (fault, answer) {
            (Some((Kind::LostAnswer, _)), _) => Err(Dropped),
            (Some((Kind::Delay, hold_ms)), answer) => {
                tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                answer.ok_or(Dropped)
            }
            (_, Some(response)) => Ok(response),
            (_, None) => Err(Dropped),
        }
    }

    /// Sends the call on unchanged; `None` when the emulator could not be reached, which
    /// the caller then sees as a dropped connection, as it would without the proxy.
    async fn forward(
        &self,
        upstream: &str,
        parts: hyper::http::request::Parts,
        body: Bytes,
    ) -> Option<Response<Full<Bytes>>> {
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut outgoing = self.http.request(parts.method.clone(), format!("{upstream}{path}")).body(body);
        for (name, value) in &parts.headers {
            if !matches!(name.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
                outgoing = outgoing.header(name, value);
            }
        }
        let answer = outgoing.send().await.ok()?;
        let mut response = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if !matches!(name.as_str(), "content-length" | "connection" | "transfer-encoding") {
                response = response.header(name, value);
            }
        }
        let bytes = answer.bytes().await.ok()?;
        response.body(Full::new(bytes)).ok()
    }

    async fn control(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        match *request.method() {
            Method::GET => json(StatusCode::OK, &self.faults.snapshot().to_string()),
            Method::PUT => {
                let Ok(body) = request.into_body().collect().await.map(|b| b.to_bytes()) else {
                    return json(StatusCode::BAD_REQUEST, r#"{"message":"unreadable body"}"#);
                };
                let settings = serde_json::from_slice::<Settings>(&body).map_err(|e| e.to_string());
                match settings.and_then(|s| s.validate().map(|()| s).map_err(|e| e.to_string())) {
                    Ok(settings) => {
                        tracing::info!(?settings, "fault rules replaced");
                        self.faults.replace(settings);
                        json(StatusCode::OK, &self.faults.snapshot().to_string())
                    }
                    Err(message) => {
                        json(StatusCode::UNPROCESSABLE_ENTITY, &serde_json::json!({"message": message}).to_string())
                    }
                }
            }
            _ => json(StatusCode::METHOD_NOT_ALLOWED, r#"{"message":"GET or PUT"}"#),
        }
    }
}

impl Proxy {
    /// `GET /_partitions`: the partition model's counts; `PUT`: starts them again.
    fn partitions_control(&self, method: &Method) -> Response<Full<Bytes>> {
        let Some(partitions) = &self.partitions else {
            return json(StatusCode::NOT_FOUND, r#"{"message":"the partition model is off (--partition-scale)"}"#);
        };
        match *method {
            Method::GET => json(StatusCode::OK, &partitions.report().to_string()),
            Method::PUT => {
                partitions.reset();
                json(StatusCode::OK, &partitions.report().to_string())
            }
            _ => json(StatusCode::METHOD_NOT_ALLOWED, r#"{"message":"GET or PUT"}"#),
        }
    }
}

/// What DynamoDB answers a call past a partition's limit.
fn partition_throttled(throttled: &Throttled) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": format!("Throughput exceeds the limit of one partition: key {} of {} (fault-proxy's partition model)", throttled.key, throttled.scope),
    });
    let mut response = json(StatusCode::BAD_REQUEST, &body.to_string());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.0"));
    response
}

fn json(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The error bodies of the services' JSON protocols; the SDKs classify them by `__type`
/// (and SQS by its query-compatible error header), so these retry as the real ones do.
fn aws_error(status: StatusCode, target: &str, dynamodb: &str, sqs: &str) -> Response<Full<Bytes>> {
    let (kind, content_type) = if target.starts_with("AmazonSQS") {
        (format!("com.amazonaws.sqs#{sqs}"), "application/x-amz-json-1.0")
    } else {
        (format!("com.amazonaws.dynamodb.v20120810#{dynamodb}"), "application/x-amz-json-1.0")
    };
    let body = serde_json::json!({"__type": kind, "message": "injected by fault-proxy"}).to_string();
    let mut response = json(status, &body);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if target.starts_with("AmazonSQS")
        && let Ok(value) =
            HeaderValue::from_str(&format!("{sqs};{}", if status.is_server_error() { "Receiver" } else { "Sender" }))
    {
        response.headers_mut().insert("x-amzn-query-error", value);
    }
    response
}

fn throttled(target: &str) -> Response<Full<Bytes>> {
    // DynamoDB throttles tables with one error and the control plane with the other;
    // alternate by operation so both shapes are exercised.
    let dynamodb = if target.ends_with("Item") || target.ends_with("Items") {
        "ProvisionedThroughputExceededException"
    } else {
        "ThrottlingException"
    };
    aws_error(StatusCode::BAD_REQUEST, target, dynamodb, "RequestThrottled")
}

fn server_error(target: &str) -> Response<Full<Bytes>> {
    aws_error(StatusCode::INTERNAL_SERVER_ERROR, target, "InternalServerError", "InternalError")
}
