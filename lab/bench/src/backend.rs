//! Two small servers the harness points functions at. The null backend answers the
//! DynamoDB and SQS calls our functions and the Python peer make, at once, with valid
//! responses, so a run measures the function's own cost and not an emulator's. The
//! counting proxy sits in front of the WriftAI simulator and counts what reaches it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, Result};

/// Calls seen, by operation (`PutItem`, `SendMessage`, `GET 404`...).
#[derive(Clone, Default)]
pub struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counts {
    fn bump(&self, op: String) {
        if let Ok(mut map) = self.0.lock() {
            *map.entry(op).or_default() += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.lock().map(|m| m.values().sum()).unwrap_or(0)
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

async fn serve(app: axum::Router) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(Error::io("binding a backend"))?;
    let addr = listener.local_addr().map_err(Error::io("backend address"))?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Starts the null backend; DynamoDB and SQS share its one endpoint, told apart by
/// `X-Amz-Target` as the JSON protocols do. `repeats`: every conditional write fails its
/// condition as a repeat of done work does, so each delivery is a duplicate.
pub async fn start_null(repeats: bool) -> Result<(SocketAddr, Counts)> {
    let counts = Counts::default();
    let app = axum::Router::new().fallback(null).with_state((counts.clone(), repeats));
    Ok((serve(app).await?, counts))
}

/// A prediction at `succeeded` and its event done, as a condition failure returns them.
const DONE_ITEMS: &str = r#"{"Code":"ConditionalCheckFailed","Item":{"status":{"S":"succeeded"},"rank":{"N":"3"}}},{"Code":"ConditionalCheckFailed","Item":{"status":{"S":"succeeded"},"enqueue":{"S":"queued"},"work":{"S":"done"}}}"#;

async fn null(State((counts, repeats)): State<(Counts, bool)>, headers: HeaderMap) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let op = target.rsplit('.').next().unwrap_or_default().to_owned();
    if repeats && op == "TransactWriteItems" {
        counts.bump(format!("{op} repeat"));
        let body = format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled","CancellationReasons":[{DONE_ITEMS}]}}"#
        );
        return (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.0")], body).into_response();
    }
    let body = match op.as_str() {
        // Success with nothing returned: every condition passed, as for a new event of a
        // registered prediction; an update's `ReturnValues` come back empty.
        "TransactWriteItems" | "PutItem" | "UpdateItem" | "DeleteItem" | "GetItem" => "{}".to_owned(),
        "BatchWriteItem" => r#"{"UnprocessedItems":{}}"#.to_owned(),
        "Query" => r#"{"Items":[],"Count":0,"ScannedCount":0}"#.to_owned(),
        "SendMessage" => format!(r#"{{"MessageId":"{}"}}"#, uuid::Uuid::new_v4()),
        _ => {
            counts.bump(format!("unknown {target}"));
            let body = format!(r#"{{"__type":"UnknownOperationException","message":"{target}"}}"#);
            return (StatusCode::BAD_REQUEST, body).into_response();
        }
    };
    counts.bump(op);
    let request_id = uuid::Uuid::new_v4().to_string();
    ([("content-type", "application/x-amz-json-1.0"), ("x-amzn-requestid", request_id.as_str())], body).into_response()
}

/// Bytes of the files [`start_files`] serves, a chunk at a time.
static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// Serves `GET /file/<n>`: `n` bytes, streamed, so the harness holds none of them.
pub async fn start_files() -> Result<SocketAddr> {
    let app = axum::Router::new().route("/file/{bytes}", axum::routing::get(file));
    serve(app).await
}

async fn file(axum::extract::Path(bytes): axum::extract::Path<u64>) -> Response {
    let chunks = (0..bytes).step_by(CHUNK.len()).map(move |start| {
        let len = (bytes - start).min(CHUNK.len() as u64) as usize;
        Ok::<_, std::convert::Infallible>(Bytes::from_static(&CHUNK[..len]))
    });
    let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
    ([("content-type", "application/octet-stream"), ("content-length", &bytes.to_string())], body).into_response()
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    counts: Counts,
}

/// Starts a proxy to `upstream` (scheme and authority) that counts requests by method
/// and upstream status.
pub async fn start_counting_proxy(upstream: &str) -> Result<(SocketAddr, Counts)> {
    let counts = Counts::default();
    let proxy = Proxy { upstream: upstream.to_owned(), client: reqwest::Client::new(), counts: counts.clone() };
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    Ok((serve(app).await?, counts))
}

async fn forward(State(proxy): State<Proxy>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = proxy.client.request(method.clone(), format!("{}{path}", proxy.upstream)).body(body);
    for (name, value) in &headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        proxy.counts.bump(format!("{method} unreachable"));
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    proxy.counts.bump(format!("{method} {}", status.as_u16()));
    let mut out = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "content-length" {
            out.insert(name.clone(), value.clone());
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    (status, out, body).into_response()
}
