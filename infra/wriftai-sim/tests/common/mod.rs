//! Test harness: a simulator started in-process on port 0, and a tiny webhook receiver.
#![allow(dead_code)] // Each test file uses its own subset of these helpers.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use wriftai_sim::{Config, Running};

pub const TOKEN: &str = "test-token";

/// A simulator on a free port, with steps and backoffs short enough for tests.
pub struct Sim {
    pub running: Running,
    pub http: reqwest::Client,
}

impl Sim {
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Sim {
        let mut config = Config::new(TOKEN);
        config.port = 0;
        config.step = Duration::from_millis(10);
        config.retry_base = Duration::from_millis(10);
        config.retry_cap = Duration::from_millis(40);
        tweak(&mut config);
        let running = wriftai_sim::start(config).await.expect("simulator starts");
        let http = reqwest::Client::builder().no_proxy().build().expect("client");
        Sim { running, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url)
    }

    /// A `/v1` request with the right token.
    pub fn v1(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(&format!("/v1{path}"))).bearer_auth(TOKEN)
    }

    /// Creates a prediction and returns it; fails the test unless the answer is 201.
    pub async fn create(&self, body: Value) -> Value {
        let response = self.v1(reqwest::Method::POST, "/predictions").json(&body).send().await.expect("create sent");
        assert_eq!(response.status(), 201, "create answers 201");
        response.json().await.expect("create answers JSON")
    }

    /// GET a path; the status code and the JSON body (Null when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let request = if path.starts_with("/v1") {
            self.http.get(self.url(path)).bearer_auth(TOKEN)
        } else {
            self.http.get(self.url(path))
        };
        let response = request.send().await.expect("GET sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn put_chaos(&self, body: Value) -> (u16, Value) {
        let response = self.http.put(self.url("/_sim/chaos")).json(&body).send().await.expect("PUT sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The delivery log of one prediction.
    pub async fn deliveries(&self, id: &str) -> Vec<Value> {
        let (_, log) = self.get(&format!("/_sim/deliveries?prediction_id={id}")).await;
        log.as_array().cloned().unwrap_or_default()
    }

    /// Waits until the prediction is terminal and returns it.
    pub async fn finished(&self, id: &str) -> Value {
        eventually("the prediction ends", || async {
            let (_, p) = self.get(&format!("/v1/predictions/{id}")).await;
            let terminal = matches!(p["status"].as_str(), Some("succeeded" | "failed" | "cancelled"));
            terminal.then_some(p)
        })
        .await
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.running.stop();
    }
}

/// Polls `check` until it gives a value. The 10 s limit only stops a broken test from
/// hanging; nothing asserts how fast things happen.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    // 30 s at most: on a machine also running the end-to-end stack, the deliveries a
    // test waits for (with their retries and chaos delays) take a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// One webhook request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub body: Vec<u8>,
    pub json: Value,
    pub signature: Option<String>,
    pub content_type: Option<String>,
}

impl Hit {
    pub fn status(&self) -> &str {
        self.json["status"].as_str().unwrap_or("")
    }
}

#[derive(Clone, Default)]
struct Inbox {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Status codes to answer, in order; 200 once they run out.
    script: Arc<Mutex<VecDeque<u16>>>,
}

/// A webhook receiver on a free loopback port.
pub struct Receiver {
    pub url: String,
    inbox: Inbox,
}

impl Receiver {
    pub async fn start(script: &[u16]) -> Receiver {
        let inbox = Inbox::default();
        inbox.script.lock().expect("lock").extend(script);
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("receiver binds");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url: format!("http://{addr}/hook"), inbox }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.inbox.hits.lock().expect("lock").clone()
    }

    pub fn statuses(&self) -> Vec<String> {
        self.hits().iter().map(|h| h.status().to_owned()).collect()
    }

    /// Waits until `n` requests have arrived and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Hit> {
        eventually(&format!("{n} webhooks arrive"), || async {
            let hits = self.hits();
            (hits.len() >= n).then_some(hits)
        })
        .await
    }
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    inbox.hits.lock().expect("lock").push(Hit {
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body: body.to_vec(),
        signature: text("wriftai-webhook-signature"),
        content_type: text("content-type"),
    });
    let code = inbox.script.lock().expect("lock").pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
}
