//! The lab's view of the local stack (its tests are in `tests/`, the load generator in
//! `src/bin/load.rs`): faults on the AWS side, the fault proxy's rules and counts
//! (`FAULT_PROXY_URL`, set when the stack runs with `FAULTS=1`), and freezing an
//! emulator for a while (SIGSTOP/SIGCONT, which keeps its state, unlike a restart).

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use e2e::{Item, Stack, api, our_webhook, status_of};
use serde_json::Value;
use wriftai_hooks::internals::adapters::dynamo::DynamoLedger;
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::create::CreateError;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::prediction::PredictionId;
use wriftai_hooks::internals::wriftai::CreatePrediction;

/// The fault proxy between the functions and the emulators.
pub struct FaultProxy {
    base: String,
    http: reqwest::Client,
}

impl FaultProxy {
    /// `None` when the stack runs without the proxy.
    pub fn from_env() -> Option<Self> {
        let base = std::env::var("FAULT_PROXY_URL").ok().filter(|s| !s.is_empty())?;
        Some(Self { base, http: reqwest::Client::new() })
    }

    /// Where it listens: the endpoint the functions use for DynamoDB and SQS.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Replaces the rules (`{"seed": 1, "rules": [{"operation", "kind", "rate"}]}`).
    pub async fn set(&self, settings: Value) -> Value {
        let response = self.http.put(format!("{}/_faults", self.base)).json(&settings).send().await.unwrap();
        assert!(response.status().is_success(), "fault rules refused: {}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// The partition model's counts (`GET /_partitions`): throttles and the hottest keys.
    pub async fn partitions(&self) -> Value {
        let answer = self.http.get(format!("{}/_partitions", self.base)).send().await.unwrap();
        assert!(answer.status().is_success(), "the partition model is off: {}", answer.text().await.unwrap());
        answer.json().await.unwrap()
    }

    /// Starts the partition model's counts again.
    pub async fn reset_partitions(&self) {
        let answer = self.http.put(format!("{}/_partitions", self.base)).send().await.unwrap();
        assert!(answer.status().is_success());
    }

    /// The stack's table through this proxy, as the functions reach it.
    pub fn ledger(&self, stack: &Stack) -> DynamoLedger {
        let config = aws_sdk_dynamodb::config::Builder::from(&stack.aws).endpoint_url(self.url()).build();
        stack.ledger_on(aws_sdk_dynamodb::Client::from_conf(config))
    }

    /// Counts so far: `forwarded`, `injected` by kind, `by_operation`.
    pub async fn stats(&self) -> Value {
        let answer: Value = self.http.get(format!("{}/_faults", self.base)).send().await.unwrap().json().await.unwrap();
        answer["stats"].clone()
    }
}

/// Creates one prediction of `acme/echo` with `input` through our client, with our
/// webhook; a create whose registration failed (the table was frozen or throttled) is
/// registered again, since creating again would make a second one.
pub async fn create(stack: &Stack, input: Value) -> PredictionId {
    create_on(stack, stack.ledger(), input).await
}

/// The same, recorded through `ledger` (the fault proxy's, where its writes count).
pub async fn create_on(stack: &Stack, ledger: DynamoLedger, input: Value) -> PredictionId {
    match create_by(stack, ledger, input, None).await {
        Ok(id) | Err(Some(id)) => id,
        Err(None) => unreachable!("without a deadline a create is tried until it is made"),
    }
}

/// Creates one prediction, recorded through `ledger`, tried again until `by`: `Err` when
/// the time ran out first, with the prediction's ID when WriftAI made it but it could not
/// be recorded as ours (its webhooks are refused: as good as lost).
pub async fn create_by(
    stack: &Stack,
    ledger: DynamoLedger,
    input: Value,
    by: Option<std::time::Instant>,
) -> Result<PredictionId, Option<PredictionId>> {
    let late = || by.is_some_and(|by| std::time::Instant::now() >= by);
    let ingest = Ingest::new(ledger.clone(), stack.queue(), ActOn::terminal(), Duration::from_secs(3600));
    let request = CreatePrediction { model: "acme/echo".into(), input, webhook: our_webhook(), wait: None };
    loop {
        match wriftai_hooks::internals::create::create(&api(), &ingest, &request).await {
            Ok(fetched) => return Ok(fetched.prediction.id),
            Err(CreateError::NotRecorded { id, .. }) => {
                use wriftai_hooks::internals::ports::Ledger;
                while ledger.register(id, time::OffsetDateTime::now_utc()).await.is_err() {
                    if late() {
                        return Err(Some(id));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                return Ok(id);
            }
            Err(_) if late() => return Err(None),
            Err(err) if err.is_retryable() => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(err) => panic!("create failed: {err}"),
        }
    }
}

/// Whether a delivery of `status` that was answered 200 is in the table: its event
/// (a status the worker acts on, or an unknown one), or when it moved the prediction
/// (`seen_<status>`, a status the worker does not act on), or, for the latter, nothing
/// because a later status was recorded first; `pending`, which the worker here does not
/// act on, by the registration itself (it writes nothing).
pub fn recorded(items: &HashMap<String, Item>, status: &str) -> bool {
    use wriftai_hooks::internals::prediction::Status;
    let prediction = items.get("PRED");
    let rank = |s: &str| Status::parse(s).ok().and_then(|s| s.rank());
    (status == "pending" && prediction.is_some())
        || items.contains_key(&format!("EVENT#{status}"))
        || prediction.is_some_and(|p| p.contains_key(&format!("seen_{status}")))
        || prediction.and_then(|p| rank(status_of(p))).zip(rank(status)).is_some_and(|(at, this)| at >= this)
            && !["succeeded", "failed", "cancelled", "abandoned"].contains(&status)
}

/// Whether a prediction is where it must end: the table at WriftAI's final status, the
/// terminal event's work done, and the output written.
pub fn settled(items: &HashMap<String, Item>, truth: &str) -> bool {
    let event = items.get(&format!("EVENT#{truth}"));
    items.get("PRED").is_some_and(|p| status_of(p) == truth)
        && event.and_then(|e| e.get("work")).and_then(|w| w.as_s().ok()).is_some_and(|w| w == "done")
        && items.contains_key("RECORD#result")
}

/// Freezes one part of the local stack (its whole process group) until dropped.
pub struct Frozen(String);

impl Frozen {
    pub fn new(part: &str) -> Self {
        let file = format!("{}/../../.local/pids/{part}.pid", env!("CARGO_MANIFEST_DIR"));
        let pid = std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("{file}: is the stack up?"));
        let group = format!("-{}", pid.trim());
        assert!(Command::new("kill").args(["-STOP", "--", &group]).status().unwrap().success());
        Self(group)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", "--", &self.0]).status();
    }
}

/// `after[key] - before[key]` for each numeric key of `after` (an object of counts).
pub fn diff(before: &Value, after: &Value) -> Vec<(String, i64)> {
    let Some(after) = after.as_object() else { return Vec::new() };
    after
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_i64()? - before.get(k).and_then(Value::as_i64).unwrap_or(0))))
        .collect()
}
