//! What the end-to-end tests share: the running local stack's endpoints (from the
//! environment `make test` exports out of `.local/stack.env`) and ways to look at it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::Value;
use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::dynamo::{DynamoLedger, prediction_pk, record_sk};
use wriftai_hooks::internals::adapters::sqs::SqsQueue;
use wriftai_hooks::internals::adapters::{AwsSettings, aws_config};
use wriftai_hooks::internals::config::{Env, webhook_from_env};
use wriftai_hooks::internals::message::WorkMessage;
use wriftai_hooks::internals::ports::Ledger;
use wriftai_hooks::internals::prediction::PredictionId;
use wriftai_hooks::internals::signature;
use wriftai_hooks::internals::wriftai::{ApiConfig, Webhook, WriftAi};

pub mod logs;

pub type Item = HashMap<String, AttributeValue>;

pub struct Stack {
    pub receiver_url: String,
    pub table: String,
    pub queue_url: String,
    /// The receiver's webhook secret; deliveries are signed with it when set.
    pub secret: Option<String>,
    pub aws: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub http: reqwest::Client,
}

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: these tests need the local stack (run `make test`)"))
}

/// Work messages taken off the queue so far, by prediction, with the trace header each
/// carried (`AWSTraceHeader`): tests run in parallel on one queue, so whoever drains it
/// files every message for the others to find.
static RECEIVED: OnceLock<Mutex<HashMap<String, Vec<Filed>>>> = OnceLock::new();

/// A message's body, and its `AWSTraceHeader`.
type Filed = (String, Option<String>);

/// One look at the dead-letter queue at a time: a look hides what it receives for a
/// moment, and the redrive test must see every message.
static DEAD_LETTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Holds the dead-letter queue for a test that needs it to itself across several looks
/// (pass the guard to [`Stack::dead_letters`]).
pub async fn dlq_lock() -> tokio::sync::MutexGuard<'static, ()> {
    DEAD_LETTERS.lock().await
}

/// One drain at a time: a message another test's drain has taken off the queue but not
/// filed yet would be missing from both the queue and the files.
static DRAINING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Stack {
    pub async fn from_env() -> Self {
        let aws = aws_config(&AwsSettings::from_env(&Env::process()).unwrap().system_roots()).await;
        Self {
            receiver_url: var("RECEIVER_URL"),
            table: var("TABLE_NAME"),
            queue_url: var("QUEUE_URL"),
            secret: std::env::var("WRIFTAI_WEBHOOK_SECRET").ok().filter(|s| !s.is_empty()),
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            sqs: aws_sdk_sqs::Client::new(&aws),
            http: reqwest::Client::new(),
            aws,
        }
    }

    pub fn ledger(&self) -> DynamoLedger {
        self.ledger_on(self.dynamodb.clone())
    }

    /// The stack's table through `client` (another endpoint: the fault proxy).
    pub fn ledger_on(&self, client: aws_sdk_dynamodb::Client) -> DynamoLedger {
        let shards = Env::process()
            .parsed("INDEX_SHARDS", wriftai_hooks::internals::shards::DEFAULT)
            .expect("INDEX_SHARDS, a number");
        DynamoLedger::new(client, &self.table, shards)
    }

    pub fn queue(&self) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), &self.queue_url)
    }

    /// The record `name` the work kept for a prediction (`"result"`, say; read back from
    /// the bucket when kept there), and how many store calls wrote it (the test worker
    /// counts them).
    pub async fn record(&self, id: PredictionId, name: &str) -> Option<(Value, usize)> {
        let items = self.items(id).await;
        let item = items.get(&record_sk(name))?;
        let record = match item.get("record_key").and_then(|key| key.as_s().ok()) {
            // Kept in the bucket (over `RECORD_ITEM_BYTES`): read back from there.
            Some(key) => {
                let (s3, bucket) = bucket(&self.aws);
                let object = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
                serde_json::from_slice(&object.body.collect().await.ok()?.into_bytes()).ok()?
            }
            None => serde_json::from_str(item.get("record")?.as_s().ok()?).ok()?,
        };
        Some((record, writes(item)))
    }

    /// A fresh prediction registered as ours.
    pub async fn registered(&self) -> PredictionId {
        let id = PredictionId::random();
        assert!(self.ledger().register(id, OffsetDateTime::now_utc()).await.unwrap());
        id
    }

    /// POSTs `body` as JSON to the receiver, signed as WriftAI would; returns the
    /// status and the JSON answer.
    pub async fn post(&self, body: impl Into<String>) -> (u16, serde_json::Value) {
        self.send(self.json(body.into())).await
    }

    /// A signed JSON POST to the receiver, ready to send.
    pub fn json(&self, body: String) -> reqwest::RequestBuilder {
        let request = self.http.post(&self.receiver_url).header("content-type", "application/json");
        self.signed(request, &body).body(body)
    }

    /// Adds the signature header WriftAI would send for `body`, when a secret is set.
    pub fn signed(&self, request: reqwest::RequestBuilder, body: &str) -> reqwest::RequestBuilder {
        match &self.secret {
            Some(secret) => request.header(signature::HEADER, self.signature(secret, body)),
            None => request,
        }
    }

    pub fn signature(&self, secret: &str, body: &str) -> String {
        signature::sign(secret, OffsetDateTime::now_utc().unix_timestamp(), body.as_bytes())
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let response = request.send().await.expect("receiver reachable");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("answer is not JSON: {text:?}"));
        (status, json)
    }

    /// The bodies in the dead-letter queue now. Each is hidden for 2 s while they are
    /// collected, so a poll sees every one, and then comes back: a caller that looks
    /// again, or redrives, waits that long. Under the [`dlq_lock`], its own or `held`.
    pub async fn dead_letters(&self, held: Option<&tokio::sync::MutexGuard<'static, ()>>) -> Vec<String> {
        let _own = match held {
            Some(_) => None,
            None => Some(dlq_lock().await),
        };
        let dlq = var("DLQ_URL");
        let mut bodies = Vec::new();
        loop {
            let receive = self.sqs.receive_message().queue_url(&dlq).max_number_of_messages(10).visibility_timeout(2);
            let out = receive.send().await.unwrap();
            if out.messages().is_empty() {
                // The hold ends before anyone else looks.
                tokio::time::sleep(Duration::from_millis(2100)).await;
                return bodies;
            }
            bodies.extend(out.messages().iter().filter_map(|m| m.body().map(str::to_owned)));
        }
    }

    /// Every item stored for a prediction, by sort key.
    pub async fn items(&self, id: PredictionId) -> HashMap<String, Item> {
        let out = self
            .dynamodb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(prediction_pk(id)))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.items().iter().map(|item| (item["sk"].as_s().unwrap().clone(), item.clone())).collect()
    }

    /// Sets one string attribute of a prediction's event, as another writer (an older
    /// version, the worker) would have left it.
    pub async fn set_event(&self, id: PredictionId, status: &str, name: &str, value: &str) {
        self.dynamodb
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(prediction_pk(id)))
            .key("sk", AttributeValue::S(format!("EVENT#{status}")))
            .update_expression("SET #name = :value")
            .expression_attribute_names("#name", name)
            .expression_attribute_values(":value", AttributeValue::S(value.to_owned()))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .unwrap();
    }

    /// The work messages for one prediction that have reached the queue.
    pub async fn messages_for(&self, id: PredictionId) -> Vec<WorkMessage> {
        {
            let _one_at_a_time = DRAINING.lock().await;
            self.drain().await;
        }
        let received = RECEIVED.get_or_init(Default::default).lock().unwrap();
        let bodies = received.get(&id.to_string()).into_iter().flatten();
        bodies.map(|(body, _)| WorkMessage::decode(body).unwrap()).collect()
    }

    /// The `AWSTraceHeader` of each work message for one prediction that reached the
    /// queue, in the order of [`Stack::messages_for`].
    pub async fn traces_for(&self, id: PredictionId) -> Vec<Option<String>> {
        {
            let _one_at_a_time = DRAINING.lock().await;
            self.drain().await;
        }
        let received = RECEIVED.get_or_init(Default::default).lock().unwrap();
        received.get(&id.to_string()).into_iter().flatten().map(|(_, trace)| trace.clone()).collect()
    }

    async fn drain(&self) {
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            if out.messages().is_empty() {
                return;
            }
            for message in out.messages() {
                let body = message.body().unwrap().to_owned();
                let id = WorkMessage::decode(&body).map(|m| m.prediction_id.to_string()).unwrap_or_default();
                let trace = message.attributes().and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader));
                let filed = (body, trace.cloned());
                RECEIVED.get_or_init(Default::default).lock().unwrap().entry(id).or_default().push(filed);
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// A webhook body for `id` at `status`, with an output of `output_bytes` characters.
pub fn payload(id: PredictionId, status: &str, output_bytes: usize) -> String {
    let output = if status == "succeeded" { Value::String("o".repeat(output_bytes)) } else { Value::Null };
    serde_json::json!({
        "id": id.to_string(), "status": status,
        "created_at": "2026-11-26T10:00:00Z", "updated_at": "2026-11-26T10:00:05Z",
        "model": {"owner": "acme", "name": "echo", "version_number": 1}, "input": {"prompt": "hi"},
        "output": output, "error": null, "metrics": null, "setup_time": null, "execution_time": null, "stream": false,
    })
    .to_string()
}

/// How many store calls wrote a record's item (`writes` holds one ID per call).
pub fn writes(item: &Item) -> usize {
    item.get("writes").and_then(|v| v.as_ss().ok()).map_or(0, Vec::len)
}

pub fn status_of(item: &Item) -> &str {
    item.get("status").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("")
}

pub fn api() -> WriftAi {
    WriftAi::new(ApiConfig::from_env(&Env::process()).unwrap()).unwrap()
}

pub fn our_webhook() -> Option<Webhook> {
    webhook_from_env(&Env::process()).map(|(url, secret)| Webhook { url, secret })
}

/// Runs the `hooks` CLI (built by `make test` with the stack) on the stack's
/// environment: its standard output, or its error output when it fails.
pub fn hooks(args: &[&str]) -> Result<String, String> {
    let (code, stdout, stderr) = hooks_exit(args);
    if code == Some(0) { Ok(stdout) } else { Err(stderr) }
}

/// `hooks` with `args`: its exit code, stdout and stderr.
pub fn hooks_exit(args: &[&str]) -> (Option<i32>, String, String) {
    let target =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/../../target", env!("CARGO_MANIFEST_DIR")));
    let out = std::process::Command::new(format!("{target}/debug/hooks"))
        .args(args)
        .output()
        .expect("target/debug/hooks runs (infra/up.sh builds it)");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The stack's output bucket (`OUTPUT_BUCKET`) and an S3 client for it.
pub fn bucket(aws: &aws_config::SdkConfig) -> (aws_sdk_s3::Client, String) {
    let config = aws_sdk_s3::config::Builder::from(aws).force_path_style(true).build();
    (aws_sdk_s3::Client::from_conf(config), var("OUTPUT_BUCKET"))
}

/// The keys of the objects kept for a prediction.
pub async fn objects(aws: &aws_config::SdkConfig, id: PredictionId) -> Vec<String> {
    let (s3, bucket) = bucket(aws);
    let listed = s3.list_objects_v2().bucket(bucket).prefix(format!("predictions/{id}/")).send().await.unwrap();
    listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

/// Polls `check` until it gives a value, for at most `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {seconds}s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The WriftAI simulator's own endpoints: chaos settings and the delivery log.
pub struct Sim {
    base: String,
    http: reqwest::Client,
}

impl Sim {
    pub fn from_env() -> Self {
        let api = std::env::var("WRIFTAI_API_BASE_URL").expect("the stack sets WRIFTAI_API_BASE_URL");
        Self { base: api.trim_end_matches("/v1").to_owned(), http: reqwest::Client::new() }
    }

    pub async fn chaos(&self, settings: Value) -> Value {
        let response = self.http.put(format!("{}/_sim/chaos", self.base)).json(&settings).send().await.unwrap();
        assert!(response.status().is_success());
        response.json().await.unwrap()
    }

    pub async fn deliveries(&self, id: PredictionId) -> Vec<Value> {
        let url = format!("{}/_sim/deliveries?prediction_id={id}", self.base);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Every delivery attempt the simulator still remembers (the last 100 000).
    pub async fn all_deliveries(&self) -> Vec<Value> {
        self.http.get(format!("{}/_sim/deliveries", self.base)).send().await.unwrap().json().await.unwrap()
    }

    /// What the notification sink (`/_sim/notify`) got for one prediction.
    pub async fn notifications(&self, id: PredictionId) -> Vec<Value> {
        let url = format!("{}/_sim/notifications?prediction_id={id}", self.base);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The simulator's own address, `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn stats(&self) -> Value {
        self.http.get(format!("{}/_sim/stats", self.base)).send().await.unwrap().json().await.unwrap()
    }

    /// Deliveries of one prediction queued or being sent right now.
    pub async fn in_flight(&self, id: PredictionId) -> u64 {
        let url = format!("{}/_sim/in_flight?prediction_id={id}", self.base);
        let answer: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
        answer["in_flight"].as_u64().expect("the simulator counts in_flight")
    }

    /// Waits until each of `ids` is finished and none of their deliveries is in flight.
    /// Other tests' deliveries may go on: only these predictions are waited for.
    pub async fn settle(&self, ids: &[PredictionId], api: &WriftAi) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut unsettled = Vec::new();
            for id in ids {
                let finished = api.get(*id).await.unwrap().is_some_and(|f| f.prediction.status.is_terminal());
                if !finished || self.in_flight(*id).await > 0 {
                    unsettled.push(*id);
                }
            }
            if unsettled.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "these predictions did not settle: {unsettled:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
