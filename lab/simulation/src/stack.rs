//! The stack under test: the engine's receiver, worker and reconciler, and the operator's
//! `hooks`, on the in-memory adapters, under the simulation's weather. And the work it
//! runs: a user's `handle`, which chains the next prediction, runs one side effect once,
//! and calls a downstream service that has outages.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use wriftai_hooks::examples;
use wriftai_hooks::internals::adapters::backend::{Queue, Table};
use wriftai_hooks::internals::adapters::memory::{
    MemoryBucket, MemoryDeadLetters, MemoryLedger, MemoryQueue, MemoryWriftAi, Weather,
};
use wriftai_hooks::internals::clock;
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::ports::WorkQueue;
use wriftai_hooks::internals::reconcile::ReconcileConfig;
use wriftai_hooks::internals::signature::{DEFAULT_TOLERANCE, Verifier};
use wriftai_hooks::internals::trace::TraceHeader;
use wriftai_hooks::internals::webhook::Checks;
use wriftai_hooks::internals::{Job, ReceiverApp, ReconcilerApp, Worker};
use wriftai_hooks::ops::Ops;
use wriftai_hooks::{BoxError, Context, Failure, Prediction, PredictionId, Webhook, WriftAi};

/// The webhook secret WriftAI signs with.
pub const SECRET: &str = "simulated-secret";
/// The receiver's URL, as the predictions the work creates carry it.
pub const RECEIVER_URL: &str = "https://receiver.simulated/";
/// How long a done event is kept (`EVENT_TTL_DAYS`' default).
pub const EVENT_TTL: Duration = Duration::from_secs(30 * 86_400);
/// The worker's batch size and concurrency (`WorkerBatchSize`).
pub const BATCH: usize = 10;

/// Each (prediction, status, step) whose effect ran: the times it ran.
pub type EffectTimes = BTreeMap<(PredictionId, String, &'static str), Vec<OffsetDateTime>>;

/// What the work did, as the world outside the stack saw it: each side effect, when.
#[derive(Default)]
pub struct Effects {
    /// Each (prediction, status, step): the times its effect ran.
    pub ran: Mutex<EffectTimes>,
    /// Each prediction: when its work last began to run.
    pub began: Mutex<BTreeMap<PredictionId, OffsetDateTime>>,
}

impl Effects {
    fn ran(&self, id: PredictionId, status: &str, name: &'static str) {
        let mut ran = self.ran.lock().unwrap_or_else(|p| p.into_inner());
        ran.entry((id, status.to_owned(), name)).or_default().push(clock::now());
    }

    /// How often the effect of step `name` ran for (`id`, `status`).
    pub fn count(&self, id: PredictionId, status: &str, name: &'static str) -> usize {
        let ran = self.ran.lock().unwrap_or_else(|p| p.into_inner());
        ran.get(&(id, status.to_owned(), name)).map_or(0, Vec::len)
    }
}

/// The settings of the simulated work: where its effects land, and whether the service
/// it calls is down.
pub struct Work {
    pub effects: Arc<Effects>,
    pub downstream_down: Arc<AtomicBool>,
}

/// A user's `handle`: the next prediction of a pipeline (`examples::chain`, once), one
/// side effect (a step, once), then a call to a service that is sometimes down (its
/// failure fails the work, which runs again), and the result kept as a record (large
/// ones in the bucket).
pub async fn handle(prediction: &Prediction, ctx: &Context<Work>) -> Result<Value, BoxError> {
    let work = ctx.settings();
    work.effects.began.lock().unwrap_or_else(|p| p.into_inner()).insert(prediction.id, clock::now());
    let next = examples::chain(prediction, ctx).await?;
    let steps = ctx.steps(prediction);
    let status = prediction.status.as_str().to_owned();
    steps
        .once("effect", || async {
            work.effects.ran(prediction.id, &status, "effect");
            Ok::<_, Failure>(true)
        })
        .await?;
    if work.downstream_down.load(Ordering::SeqCst) {
        return Err("the downstream service is down".into());
    }
    let padding = prediction.input.get("pad").and_then(Value::as_u64).unwrap_or(0);
    let record = json!({"output": prediction.output, "pad": "x".repeat(padding as usize)});
    ctx.records().store(prediction.id, "result", &record).await?;
    Ok(json!({"next": next.map(|id| id.to_string())}))
}

/// `handle` on its context, as the worker runs it.
pub struct SimJob {
    pub context: Context<Work>,
}

impl Job for SimJob {
    async fn run(&self, prediction: Prediction) -> Result<Value, BoxError> {
        handle(&prediction, &self.context).await
    }
}

/// What the reconciler sends to the dead-letter queue.
pub struct DeadLetters(pub Arc<MemoryDeadLetters>);

impl WorkQueue for DeadLetters {
    async fn send(&self, body: String, trace: Option<&TraceHeader>) -> wriftai_hooks::internals::error::Result<()> {
        self.0.send(body, trace).await
    }
}

/// The stack: its adapters, shared by its three functions and the operator.
pub struct Stack {
    pub ledger: Arc<MemoryLedger>,
    pub queue: Arc<MemoryQueue>,
    pub bucket: Arc<MemoryBucket>,
    pub dead_letters: Arc<MemoryDeadLetters>,
    pub api: Arc<MemoryWriftAi>,
    pub receiver: ReceiverApp<Table, Queue>,
    pub worker: Worker<SimJob>,
    pub reconciler: ReconcilerApp<Table, Queue, WriftAi, DeadLetters>,
    pub ops: Ops,
    pub effects: Arc<Effects>,
    pub downstream_down: Arc<AtomicBool>,
}

/// The reconciler's settings: the template's defaults.
pub fn reconcile_config() -> ReconcileConfig {
    ReconcileConfig {
        min_age: Duration::from_secs(300),
        overdue_after: Duration::from_secs(35 * 60),
        work_stale_after: Duration::from_secs(15 * 60),
        max_requeues: 10,
        concurrency: 8,
        page_size: 50,
        save_margin: Duration::from_secs(5),
    }
}

impl Stack {
    /// The stack on `shards` index shards, every call under `weather`, `sent` told of
    /// each message to the work queue; WriftAI's new predictions numbered from `seed`.
    pub fn new(seed: u64, shards: u16, weather: Weather, sent: Arc<dyn Fn() + Send + Sync>) -> Self {
        let ledger = Arc::new(MemoryLedger::sharded(shards).under(weather.clone()));
        let queue = Arc::new(MemoryQueue::default().under(weather.clone()).telling(sent));
        let bucket = Arc::new(MemoryBucket::default().under(weather));
        let dead_letters = Arc::new(MemoryDeadLetters::default());
        let api = Arc::new(MemoryWriftAi::default().numbered(seed));
        let ingest =
            || Ingest::new(Table::Memory(ledger.clone()), Queue::Memory(queue.clone()), ActOn::terminal(), EVENT_TTL);
        let effects = Arc::new(Effects::default());
        let downstream_down = Arc::new(AtomicBool::new(false));
        let webhook = Webhook { url: RECEIVER_URL.to_owned(), secret: Some(SECRET.to_owned()) };
        let work = Work { effects: effects.clone(), downstream_down: downstream_down.clone() };
        let context =
            Context::simulated(ingest(), WriftAi::on_memory(api.clone()), bucket.clone(), Some(webhook), work);
        Self {
            receiver: ReceiverApp {
                ingest: ingest(),
                checks: Checks { verifier: Verifier::new([SECRET], DEFAULT_TOLERANCE), ..Checks::default() },
            },
            worker: Worker::new(ingest(), WriftAi::on_memory(api.clone()), BATCH, SimJob { context }),
            reconciler: ReconcilerApp {
                ingest: ingest(),
                dead_letters: DeadLetters(dead_letters.clone()),
                source: WriftAi::on_memory(api.clone()),
                reconcile: reconcile_config(),
                safety_margin: Duration::from_secs(10),
            },
            ops: Ops::in_memory(ingest(), dead_letters.clone(), Some(bucket.clone())),
            ledger,
            queue,
            bucket,
            dead_letters,
            api,
            effects,
            downstream_down,
        }
    }
}
