//! Test fixtures: a moto of the test's own, a recording fake invoke API, `local-aws` as a child.
// Each test binary uses a different subset of these.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router, routing::post};
use serde_json::{Value, json};

pub const REGION: &str = "eu-west-1";

/// moto from the project's virtualenv (`make up` installs it), or `MOTO_PYTHON`.
fn python() -> String {
    std::env::var("MOTO_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.local/venv/bin/python").into())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Polls `check` every 100 ms until it holds; fails the test with `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new(python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {} (run `make up` once to install it): {e}", python()));
        let mut moto = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        let ready = format!("{}/moto-api/", moto.endpoint);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if reqwest::get(&ready).await.is_ok_and(|r| r.status().is_success()) {
                return moto;
            }
            assert!(moto.child.try_wait().ok().flatten().is_none(), "moto exited at start");
            assert!(Instant::now() < deadline, "moto did not answer on {ready}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn client(&self) -> Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .build();
        Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Queues {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
}

/// A work queue and its dead-letter queue, like `infra/resources.json` makes them but
/// with a short visibility timeout.
pub async fn queues(sqs: &Client, visibility_secs: u32, max_receive_count: u32) -> Queues {
    let dlq_url = sqs.create_queue().queue_name("work-dlq").send().await.unwrap().queue_url.unwrap();
    let dlq_arn = arn(sqs, &dlq_url).await;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}).to_string();
    let url = sqs
        .create_queue()
        .queue_name("work")
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_secs.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    Queues { arn: arn(sqs, &url).await, url, dlq_url }
}

async fn arn(sqs: &Client, url: &str) -> String {
    let out = sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await;
    out.unwrap().attributes.unwrap()[&QueueAttributeName::QueueArn].clone()
}

/// Messages in the queue, visible or in flight.
pub async fn count(sqs: &Client, url: &str) -> usize {
    let out = sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All).send().await;
    let attributes = out.unwrap().attributes.unwrap();
    [QueueAttributeName::ApproximateNumberOfMessages, QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .map(|name| attributes[name].parse::<usize>().unwrap())
        .sum()
}

/// What the fake function answers to its `n`th call (from 0): an HTTP status and a body.
pub type Answer = Box<dyn Fn(usize, &Value) -> (StatusCode, Value) + Send + Sync>;

#[derive(Clone, Debug)]
pub struct Call {
    pub function: String,
    pub event: Value,
    pub at: Instant,
}

struct Shared {
    answer: Answer,
    delay: Duration,
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// `POST /2015-03-31/functions/{name}/invocations`, as `cargo lambda watch` serves it.
pub struct FakeFunction {
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeFunction {
    pub async fn start(delay: Duration, answer: Answer) -> Self {
        let shared = Arc::new(Shared {
            answer,
            delay,
            calls: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let app =
            Router::new().route("/2015-03-31/functions/{name}/invocations", post(invoke)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, server }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    pub fn max_concurrent_calls(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every record delivered with this body, in delivery order.
    pub fn deliveries(&self, body: &str) -> Vec<Value> {
        let calls = self.calls();
        let records = calls.iter().flat_map(|c| c.event["Records"].as_array().cloned().unwrap_or_default());
        records.filter(|r| r["body"] == body).collect()
    }
}

impl Drop for FakeFunction {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    Path(function): Path<String>,
    Json(event): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let n = {
        let mut calls = shared.calls.lock().unwrap();
        calls.push(Call { function, event: event.clone(), at: Instant::now() });
        calls.len() - 1
    };
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(shared.delay).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    let (status, body) = (shared.answer)(n, &event);
    (status, Json(body))
}

/// Answers `batchItemFailures` naming every record whose body starts with `fail`.
pub fn fail_bodies_starting_with_fail() -> Answer {
    Box::new(|_, event| {
        let records = event["Records"].as_array().cloned().unwrap_or_default();
        let failures: Vec<Value> = records
            .iter()
            .filter(|r| r["body"].as_str().is_some_and(|b| b.starts_with("fail")))
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        (StatusCode::OK, json!({"batchItemFailures": failures}))
    })
}

/// The `local-aws` binary under test, logging to a file the test can read.
pub struct LocalAws {
    child: Child,
    log: PathBuf,
    pub started: Instant,
}

impl LocalAws {
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "local-aws-test-{}-{}.log",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let file = std::fs::File::create(&log).unwrap();
        // A clean environment: nothing from the developer's shell (QUEUE_URL, a real
        // AWS profile) leaks into the run.
        let child = Command::new(env!("CARGO_BIN_EXE_local-aws"))
            .args(args)
            .env_clear()
            .envs([("AWS_REGION", REGION), ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")])
            .envs([("AWS_EC2_METADATA_DISABLED", "true"), ("RUST_LOG", "info"), ("NO_COLOR", "1")])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child, log, started: Instant::now() }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then its exit status; fails the test if it does not stop within 10 s.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "cannot send SIGTERM to {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "local-aws did not stop on SIGTERM; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
