//! The bad-input catalogue: every kind of hostile or broken request we know of, sent over
//! real HTTP to the receiver, each with the answer it must get. The README's
//! "Bad-input catalogue" table is this file's table; none of these may answer 5xx, and
//! none but the rows marked `Accepted` may write or enqueue anything.

use base64::Engine;
use e2e::{Stack, payload};
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use time::OffsetDateTime;
use wriftai_hooks::internals::prediction::PredictionId;
use wriftai_hooks::internals::signature::{self, sign};

/// What a row may do to the table and the queue.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Effect {
    /// Nothing written for the prediction, nothing enqueued.
    Nothing,
    /// Accepted as a delivery (recorded, and enqueued if terminal): for the rows that
    /// show a trick is harmless rather than refused.
    Accepted,
    /// Only the event kept as seen, the prediction's status untouched, nothing enqueued.
    EventOnly,
}

/// How the signature header is made for a row.
enum Sig {
    /// Signed over the row's body, now, with the stack's secret: WriftAI's own header.
    Good,
    None,
    Raw(String),
}

struct Row {
    name: &'static str,
    method: Method,
    path: &'static str,
    /// Extra headers, in order; `content-type: application/json` is added unless one is given.
    headers: Vec<(&'static str, Vec<u8>)>,
    sig: Sig,
    body: Vec<u8>,
    want: u16,
    code: Option<&'static str>,
    effect: Effect,
}

fn row(name: &'static str, body: impl Into<Vec<u8>>, want: u16, code: &'static str) -> Row {
    Row {
        name,
        method: Method::POST,
        path: "",
        headers: vec![],
        sig: Sig::Good,
        body: body.into(),
        want,
        code: Some(code),
        effect: Effect::Nothing,
    }
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Every row of the catalogue, for the registered prediction `id`.
fn catalogue(id: PredictionId, secret: &str) -> Vec<Row> {
    let good = payload(id, "succeeded", 1);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let with = |mut r: Row, f: &dyn Fn(&mut Row)| {
        f(&mut r);
        r
    };
    let at = |status: &str| good.replace("\"status\":\"succeeded\"", &format!("\"status\":{status}"));
    let field = |json: &str| format!(r#"{{"id":"{id}","status":"succeeded",{json}}}"#);
    let ok = |name, body: String| with(row(name, body, 200, ""), &|r| (r.code, r.effect) = (None, Effect::Accepted));
    vec![
        // Bodies that are not a prediction.
        row("malformed JSON", "{\"id\":", 400, "invalid_prediction"),
        row("truncated JSON", &good[..good.len() / 2], 400, "invalid_prediction"),
        row("trailing garbage after the object", format!("{good}}}x"), 400, "invalid_prediction"),
        row("a JSON array", "[]", 400, "invalid_prediction"),
        row("JSON null", "null", 400, "invalid_prediction"),
        row(
            "a JSON string holding the prediction",
            serde_json::to_string(&good).unwrap_or_default(),
            400,
            "invalid_prediction",
        ),
        row("id is a number", r#"{"id":42,"status":"succeeded"}"#, 400, "invalid_prediction"),
        row("status is a number", at("3"), 400, "invalid_prediction"),
        row("status is an object", at("{\"s\":1}"), 400, "invalid_prediction"),
        row("model is a string", field(r#""model":"acme/echo""#), 400, "invalid_prediction"),
        row("stream is a string", field(r#""stream":"yes""#), 400, "invalid_prediction"),
        row("missing id", r#"{"status":"succeeded"}"#, 400, "invalid_prediction"),
        row("missing status", format!(r#"{{"id":"{id}"}}"#), 400, "invalid_prediction"),
        row("null id", r#"{"id":null,"status":"succeeded"}"#, 400, "invalid_prediction"),
        row("null status", at("null"), 400, "invalid_prediction"),
        row("id not a UUID", r#"{"id":"../../etc/passwd","status":"succeeded"}"#, 400, "invalid_prediction"),
        row(
            "id a UUID without hyphens",
            good.replace(&id.to_string(), &id.to_string().replace('-', "")),
            400,
            "invalid_prediction",
        ),
        row("status with odd characters", at("\"succ eeded#\""), 400, "invalid_prediction"),
        row("status of 1,000 characters", at(&format!("\"{}\"", "s".repeat(1000))), 400, "invalid_prediction"),
        row(
            "status twice (duplicate key)",
            format!(r#"{{"id":"{id}","status":"pending","status":"succeeded"}}"#),
            400,
            "invalid_prediction",
        ),
        row(
            "nested 100,000 deep in input",
            field(&format!(r#""input":{}"#, nested(100_000))),
            400,
            "invalid_prediction",
        ),
        row(
            "nested 129 deep (serde_json's limit is 128)",
            field(&format!(r#""input":{}"#, nested(129))),
            400,
            "invalid_prediction",
        ),
        // Valid JSON: serde skips an unknown field without recursing, so depth there is
        // harmless and the event is kept like any other.
        ok("nested 100,000 deep in an unknown field", field(&format!(r#""extra":{}"#, nested(100_000)))),
        row("UTF-8 byte order mark before the JSON", format!("\u{feff}{good}"), 400, "invalid_prediction"),
        row("NUL bytes", format!("{good}\0\0"), 400, "invalid_prediction"),
        row("empty body", "", 400, "empty_body"),
        row("whitespace only", " \r\n\t ", 400, "empty_body"),
        row(
            "a base64 body, not flagged as base64",
            base64::engine::general_purpose::STANDARD.encode(&good),
            400,
            "invalid_prediction",
        ),
        row(
            "over MAX_BODY_BYTES (6 MiB)",
            payload(id, "succeeded", wriftai_hooks::internals::webhook::DEFAULT_MAX_BODY_BYTES),
            413,
            "payload_too_large",
        ),
        // Statuses and IDs.
        with(ok("an unknown status", at("\"warming_up\"")), &|r| r.effect = Effect::EventOnly),
        with(
            row(
                "a forged ID (never created here)",
                payload(PredictionId::random(), "succeeded", 1),
                429,
                "unknown_prediction",
            ),
            &|_| (),
        ),
        // Signatures.
        with(row("unsigned", good.clone(), 401, "signature_missing"), &|r| r.sig = Sig::None),
        with(row("replayed old signed request (10 min)", good.clone(), 401, "signature_stale"), &|r| {
            r.sig = Sig::Raw(sign(secret, now - 600, good.as_bytes()))
        }),
        with(row("signed 10 min in the future", good.clone(), 401, "signature_stale"), &|r| {
            r.sig = Sig::Raw(sign(secret, now + 600, good.as_bytes()))
        }),
        with(row("signature for another body", good.clone(), 401, "signature_mismatch"), &|r| {
            r.sig = Sig::Raw(sign(secret, now, payload(id, "failed", 1).as_bytes()))
        }),
        with(row("signature by another secret", good.clone(), 401, "signature_mismatch"), &|r| {
            r.sig = Sig::Raw(sign("whsec_forged", now, good.as_bytes()))
        }),
        with(row("signature over re-serialised JSON", good.clone(), 401, "signature_mismatch"), &|r| {
            r.sig = Sig::Raw(sign(secret, now, reserialised(&good).as_bytes()))
        }),
        with(row("signature in uppercase hex", good.clone(), 401, "signature_mismatch"), &|r| {
            r.sig =
                Sig::Raw(sign(secret, now, good.as_bytes()).to_uppercase().replace("T=", "t=").replace("V1=", "v1="))
        }),
        with(row("signature header without t=", good.clone(), 401, "signature_no_timestamp"), &|r| {
            r.sig = Sig::Raw(format!("v1={}", "0".repeat(64)))
        }),
        with(row("signature header with a huge t=", good.clone(), 401, "signature_no_timestamp"), &|r| {
            r.sig = Sig::Raw(format!("t={},v1={}", "9".repeat(40), "0".repeat(64)))
        }),
        with(row("signature header with only v2=", good.clone(), 401, "signature_no_v1"), &|r| {
            r.sig = Sig::Raw(format!("t={now},v2={}", "0".repeat(64)))
        }),
        with(row("signature header of 16 KiB", good.clone(), 401, "signature_mismatch"), &|r| {
            r.sig = Sig::Raw(format!("t={now}{}", format!(",v1={}", "0".repeat(64)).repeat(240)))
        }),
        // Header tricks.
        with(row("two signature headers, both forged", good.clone(), 401, "signature_mismatch"), &|r| {
            r.sig = Sig::Raw(sign("whsec_forged", now, good.as_bytes()));
            r.headers.push((signature::HEADER, sign("whsec_other", now, good.as_bytes()).into_bytes()));
        }),
        with(row("a forged signature header before the good one", good.clone(), 401, "signature_mismatch"), &|r| {
            r.sig = Sig::None;
            r.headers.push((signature::HEADER, sign("whsec_forged", now, good.as_bytes()).into_bytes()));
            r.headers.push((signature::HEADER, sign(secret, now, good.as_bytes()).into_bytes()));
        }),
        with(ok("header names in odd casing", good.clone()), &|r| {
            r.sig = Sig::None;
            r.headers.push(("CoNtEnT-TyPe", b"Application/JSON; Charset=UTF-8".to_vec()));
            r.headers.push(("WriftAI-Webhook-Signature", sign(secret, now, good.as_bytes()).into_bytes()));
        }),
        // The first value is the one read: a signed, valid prediction is a delivery whatever follows.
        with(ok("two content types (json, then text/plain)", good.clone()), &|r| {
            r.headers.push(("content-type", b"application/json".to_vec()));
            r.headers.push(("content-type", b"text/plain".to_vec()));
        }),
        with(row("two content types (text/plain, then json)", good.clone(), 415, "unsupported_media_type"), &|r| {
            r.headers.push(("content-type", b"text/plain".to_vec()));
            r.headers.push(("content-type", b"application/json".to_vec()));
        }),
        with(row("a 32 KiB junk header", good.clone(), 200, ""), &|r| {
            r.headers.push(("x-junk", vec![b'a'; 32 * 1024]));
            (r.code, r.effect) = (None, Effect::Accepted);
        }),
        // Content types.
        with(row("content type text/plain", good.clone(), 415, "unsupported_media_type"), &|r| {
            r.headers.push(("content-type", b"text/plain".to_vec()))
        }),
        with(row("content type form-urlencoded", good.clone(), 415, "unsupported_media_type"), &|r| {
            r.headers.push(("content-type", b"application/x-www-form-urlencoded".to_vec()))
        }),
        with(row("content type application/jsonx", good.clone(), 415, "unsupported_media_type"), &|r| {
            r.headers.push(("content-type", b"application/jsonx".to_vec()))
        }),
        with(row("content type of 4 KiB", good.clone(), 415, "unsupported_media_type"), &|r| {
            r.headers.push(("content-type", format!("application/json{}", "x".repeat(4096)).into_bytes()))
        }),
        with(row("no content type", good.clone(), 415, "unsupported_media_type"), &|r| {
            r.headers.push(("content-type", Vec::new()))
        }),
        // Methods and paths.
        with(row("GET", "", 405, "method_not_allowed"), &|r| r.method = Method::GET),
        with(row("PUT", good.clone(), 405, "method_not_allowed"), &|r| r.method = Method::PUT),
        with(row("DELETE", "", 405, "method_not_allowed"), &|r| r.method = Method::DELETE),
        with(row("PATCH", good.clone(), 405, "method_not_allowed"), &|r| r.method = Method::PATCH),
        // `cargo lambda watch` answers a preflight itself (200, empty) without invoking
        // the function, as a Function URL with CORS would; the function would say 405.
        with(row("OPTIONS", "", 200, ""), &|r| (r.method, r.code) = (Method::OPTIONS, None)),
        with(row("HEAD", "", 405, ""), &|r| (r.method, r.code) = (Method::HEAD, None)),
        with(row("another path", good.clone(), 404, "not_found"), &|r| r.path = "admin"),
        with(row("a path with a query string", good.clone(), 200, ""), &|r| {
            (r.path, r.code, r.effect) = ("?x=1", None, Effect::Accepted)
        }),
    ]
}

fn reserialised(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).map(|v| v.to_string()).unwrap_or_default() + " "
}

async fn run(stack: &Stack, secret: &str, pick: &dyn Fn(&Row) -> bool) {
    // Each row on a prediction of its own: eight at a time, since each waits on the stack.
    let rows = 0..catalogue(PredictionId::random(), secret).len();
    let failures: Vec<String> = futures_util::stream::iter(rows)
        .map(|index| check_row(stack, secret, pick, index))
        .buffer_unordered(8)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    assert!(failures.is_empty(), "catalogue rows failed:\n{}", failures.join("\n"));
}

/// Sends the catalogue's row `index` (if `pick` takes it) and checks what it did: what
/// went wrong, if anything.
async fn check_row(stack: &Stack, secret: &str, pick: &dyn Fn(&Row) -> bool, index: usize) -> Option<String> {
    let id = stack.registered().await;
    let row = catalogue(id, secret).into_iter().nth(index).filter(|r| pick(r))?;
    let before = stack.items(id).await;
    let mut request = stack.http.request(row.method.clone(), format!("{}{}", stack.receiver_url, row.path));
    if !row.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in &row.headers {
        // An empty content-type entry stands for "none at all".
        if value.is_empty() {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        request = request.header(name, HeaderValue::from_bytes(value).expect("a valid header value"));
    }
    match &row.sig {
        Sig::Good => request = request.header(signature::HEADER, sign(secret, now(), &row.body)),
        Sig::Raw(header) => request = request.header(signature::HEADER, header.as_str()),
        Sig::None => {}
    }
    let response = request.body(row.body.clone()).send().await.expect("receiver reachable");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    let mut problems = Vec::new();
    if status >= 500 || status != row.want {
        problems.push(format!("answered {status}, want {}", row.want));
    }
    if ![Method::HEAD, Method::OPTIONS].contains(&row.method) && !answer.is_object() {
        problems.push(format!("answer is not a JSON object: {text:.200}"));
    }
    if let Some(code) = row.code
        && answer["error"] != code
    {
        problems.push(format!("error {}, want {code}", answer["error"]));
    }
    let after = stack.items(id).await;
    let messages = stack.messages_for(id).await;
    match row.effect {
        Effect::Nothing if after != before => problems.push("it wrote to the table".into()),
        Effect::Nothing | Effect::EventOnly if !messages.is_empty() => problems.push("it enqueued".into()),
        Effect::EventOnly if after.get("PRED") != before.get("PRED") => problems.push("the status moved".into()),
        Effect::Accepted if after == before => problems.push("it was not recorded".into()),
        _ => {}
    }
    println!("{:<48} {status} {}", row.name, answer["error"].as_str().unwrap_or("-"));
    (!problems.is_empty()).then(|| format!("{}: {}", row.name, problems.join("; ")))
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn every_bad_request_in_the_catalogue_gets_its_answer_and_changes_nothing() {
    let stack = Stack::from_env().await;
    let secret = stack.secret.clone().expect("the local stack sets WRIFTAI_WEBHOOK_SECRET");
    run(&stack, &secret, &|_| true).await;
}

#[tokio::test]
async fn a_base64_body_flagged_as_such_is_decoded_and_bad_base64_is_refused_not_a_crash() {
    let stack = Stack::from_env().await;
    let secret = stack.secret.clone().expect("the local stack sets WRIFTAI_WEBHOOK_SECRET");
    let invoke = stack.receiver_url.replace("/lambda-url/receiver/", "/2015-03-31/functions/receiver/invocations");
    let event = |body: &str, signed_over: &[u8]| {
        serde_json::json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "",
            "headers": {"content-type": "application/json", "wriftai-webhook-signature": sign(&secret, now(), signed_over)},
            "requestContext": {"http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                               "accountId": "123456789012", "apiId": "x", "domainName": "x", "domainPrefix": "x",
                               "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "26/Nov/2026:10:00:00 +0000", "timeEpoch": 0},
            "body": body, "isBase64Encoded": true,
        })
    };
    // A base64 body of invalid UTF-8: decoded, then refused like the raw bytes would be.
    let id = stack.registered().await;
    let raw = [format!(r#"{{"id":"{id}","status":"succeeded","output":""#).as_bytes(), b"\xff\"}"].concat();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
    let answer: serde_json::Value =
        stack.http.post(&invoke).json(&event(&encoded, &raw)).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["statusCode"], 400, "{answer}");
    assert_eq!(stack.items(id).await.len(), 1);
    // Not base64 at all, though flagged as such: AWS never sends this; whatever the
    // runtime does with it, nothing is written and the process lives on.
    let response = stack.http.post(&invoke).json(&event("%%% not base64 %%%", b"")).send().await.unwrap();
    println!("invalid base64 flagged as base64: HTTP {}", response.status());
    assert_eq!(stack.items(id).await.len(), 1);
    assert!(stack.messages_for(id).await.is_empty());
    let (status, _) = stack.post(payload(id, "started", 0)).await;
    assert_eq!(status, 200, "the receiver still answers after it");
}
