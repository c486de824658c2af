//! A Lambda Runtime API on 127.0.0.1 for one function process, as Lambda (or `cargo
//! lambda watch`) plays it: `next` hands out one event at a time with the real headers,
//! `response` and `error` complete it. It notes when the process first asks for work.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// One invocation's answer: `ok` is false for `/error` posts.
pub struct Answer {
    pub ok: bool,
    pub body: Bytes,
    pub took: Duration,
}

struct Pending {
    id: String,
    event: Bytes,
    deadline_ms: u128,
}

/// Where an invocation's answer goes: success or not, the body, when it arrived.
type Reply = oneshot::Sender<(bool, Bytes, Instant)>;

struct Shared {
    first_next: Mutex<Option<oneshot::Sender<Instant>>>,
    init_error: Mutex<Option<oneshot::Sender<String>>>,
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    waiting: Mutex<HashMap<String, Reply>>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    sender: mpsc::Sender<Pending>,
    shared: Arc<Shared>,
    ready: Option<oneshot::Receiver<Instant>>,
    init_error: Option<oneshot::Receiver<String>>,
}

impl RuntimeApi {
    pub async fn start() -> Result<Self> {
        let (sender, queue) = mpsc::channel(1);
        let (ready_tx, ready) = oneshot::channel();
        let (error_tx, init_error) = oneshot::channel();
        let shared = Arc::new(Shared {
            first_next: Mutex::new(Some(ready_tx)),
            init_error: Mutex::new(Some(error_tx)),
            queue: tokio::sync::Mutex::new(queue),
            waiting: Mutex::new(HashMap::new()),
        });
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_failed))
            .with_state(shared.clone());
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(Error::io("binding the runtime API"))?;
        let addr = listener.local_addr().map_err(Error::io("runtime API address"))?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(RuntimeApi { addr, sender, shared, ready: Some(ready), init_error: Some(init_error) })
    }

    /// Waits for the process's first `next`: the end of its init.
    pub async fn ready(&mut self, timeout: Duration) -> Result<Instant> {
        let (Some(ready), Some(init_error)) = (self.ready.take(), self.init_error.take()) else {
            return Err(Error::Failed("ready() called twice".into()));
        };
        tokio::select! {
            at = ready => at.map_err(|_| Error::Failed("runtime API stopped".into())),
            err = init_error => Err(Error::Failed(format!("init error: {}", err.unwrap_or_default()))),
            _ = tokio::time::sleep(timeout) => Err(Error::Failed(format!("no first `next` within {timeout:?}"))),
        }
    }

    /// Hands `event` to the process and waits for its answer. The clock runs from the
    /// moment the event is queued (the process is already parked on `next`) to the
    /// moment its answer arrives.
    pub async fn invoke(&self, event: Bytes, budget: Duration) -> Result<Answer> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().map_err(|_| poisoned())?.insert(id.clone(), tx);
        let deadline_ms = (SystemTime::now() + budget).duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        let start = Instant::now();
        self.sender
            .send(Pending { id, event, deadline_ms })
            .await
            .map_err(|_| Error::Failed("runtime API queue closed".into()))?;
        match tokio::time::timeout(budget + Duration::from_secs(5), rx).await {
            Ok(Ok((ok, body, at))) => Ok(Answer { ok, body, took: at - start }),
            Ok(Err(_)) => Err(Error::Failed("invocation dropped".into())),
            Err(_) => Err(Error::Failed(format!("no answer within {budget:?}"))),
        }
    }
}

fn poisoned() -> Error {
    Error::Failed("runtime API state poisoned".into())
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(tx) = shared.first_next.lock().ok().and_then(|mut slot| slot.take()) {
        let _ = tx.send(Instant::now());
    }
    let Some(pending) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", pending.id.clone()),
        ("lambda-runtime-deadline-ms", pending.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:bench".into()),
        (
            "lambda-runtime-trace-id",
            format!("Root=1-00000000-{};Parent=0;Sampled=0", &pending.id.replace('-', "")[..24]),
        ),
        ("content-type", "application/json".into()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (headers, pending.event).into_response()
}

fn complete(shared: &Shared, id: &str, ok: bool, body: Bytes) -> StatusCode {
    let at = Instant::now();
    match shared.waiting.lock().ok().and_then(|mut w| w.remove(id)) {
        Some(tx) => {
            let _ = tx.send((ok, body, at));
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn respond(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    complete(&shared, &id, true, body)
}

async fn fail(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    complete(&shared, &id, false, body)
}

async fn init_failed(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Some(tx) = shared.init_error.lock().ok().and_then(|mut slot| slot.take()) {
        let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
    }
    StatusCode::ACCEPTED
}
