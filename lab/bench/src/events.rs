//! The events handed to functions: signed WriftAI deliveries wrapped as Function URL
//! requests, SQS batches of work messages, and a schedule tick.

use axum::body::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// A `succeeded` delivery for `id`, as WriftAI sends it.
pub fn prediction(id: &str, input: Value) -> String {
    json!({
        "id": id,
        "status": "succeeded",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:02Z",
        "input": input,
        "output": "echo: hi",
    })
    .to_string()
}

/// `t=<unix>,v1=<hex>`: HMAC-SHA256 over `<t>.<raw body>` (the receiver's scheme).
pub fn sign(secret: &str, body: &str) -> String {
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    // Any key length is valid for HMAC, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A Function URL request (payload format 2.0) carrying `body`, signed when `secret`
/// is given.
pub fn function_url(body: &str, secret: Option<&str>) -> Bytes {
    let mut headers = json!({"content-type": "application/json", "user-agent": "WriftAI-Webhooks/1.0"});
    if let Some(secret) = secret {
        headers["wriftai-webhook-signature"] = json!(sign(secret, body));
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "bench",
            "domainName": "bench.lambda-url.us-east-1.on.aws",
            "domainPrefix": "bench",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "WriftAI-Webhooks/1.0"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000u64,
        },
        "body": body,
        "isBase64Encoded": false,
    });
    Bytes::from(event.to_string())
}

/// An SQS batch of `n` work messages for fresh predictions whose input is `input`
/// (the worker's message format: prediction ID, status, raw payload).
pub fn sqs_batch(n: usize, input: &Value) -> Bytes {
    let records: Vec<Value> = (0..n)
        .map(|_| {
            let id = uuid::Uuid::new_v4().to_string();
            let body = format!(
                r#"{{"prediction_id":"{id}","status":"succeeded","payload":{}}}"#,
                prediction(&id, input.clone())
            );
            json!({
                "messageId": uuid::Uuid::new_v4().to_string(),
                "receiptHandle": "bench",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767225600000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    Bytes::from(json!({"Records": records}).to_string())
}

/// An SQS event of one work message for `id`, whose prediction's output is `output`.
pub fn sqs_output(id: &str, output: &str) -> Bytes {
    let mut payload: Value = serde_json::from_str(&prediction(id, json!({"prompt": "copy"}))).unwrap_or_default();
    payload["output"] = json!(output);
    let body = format!(r#"{{"prediction_id":"{id}","status":"succeeded","payload":{payload}}}"#);
    let record = json!({
        "messageId": uuid::Uuid::new_v4().to_string(), "receiptHandle": "bench", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767225600000"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench", "awsRegion": "us-east-1",
    });
    Bytes::from(json!({"Records": [record]}).to_string())
}

/// An EventBridge schedule tick, as the reconciler's rule sends it.
pub fn schedule() -> Bytes {
    Bytes::from(
        json!({
            "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "000000000000", "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1", "resources": [], "detail": {},
        })
        .to_string(),
    )
}
