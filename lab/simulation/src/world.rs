//! The world around the stack, and the processes that drive it on the virtual clock:
//! WriftAI (its predictions' lives, their webhooks, its API's bad spells and purges),
//! SQS and the Lambda event source (`sqs`), the scheduler that runs the reconciler,
//! DynamoDB's TTL and S3's lifecycle, the downstream service's outages, and the operator
//! (`operator`). Every process is a task on one thread; every chance is drawn from the
//! run's seed.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lambda_http::{Body, RequestExt};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wriftai_hooks::internals::clock;
use wriftai_hooks::internals::ports::Ledger;
use wriftai_hooks::internals::signature;
use wriftai_hooks::{PredictionId, Status};

use crate::checks::Checks;
use crate::rng::Rng;
use crate::sky::Sky;
use crate::sqs::Sqs;
use crate::stack::{SECRET, Stack};
use crate::{Settings, Stats};

/// WriftAI's retries of a delivery answered 429 or 5xx, or not at all: the waits
/// before each.
const RETRIES: [u64; 5] = [5, 30, 120, 600, 1800];

/// What WriftAI knows of one prediction: the truth the stack must come to.
#[derive(Clone, Debug)]
pub struct Truth {
    /// Its last status, once it ended.
    pub ended: Option<(Status, OffsetDateTime)>,
    /// WriftAI deleted it: `GET` answers 404 from then on.
    pub purged: bool,
    /// Recorded as ours (`register` answered).
    pub registered: bool,
}

/// One entry of a prediction's story, for a failure's trace.
#[derive(Clone, Debug)]
pub struct Told {
    pub at: OffsetDateTime,
    pub what: String,
}

pub struct World {
    pub settings: Settings,
    pub stack: Stack,
    pub sky: std::sync::Arc<Sky>,
    pub rng: RefCell<Rng>,
    pub start: OffsetDateTime,
    pub truth: RefCell<BTreeMap<PredictionId, Truth>>,
    pub sqs: RefCell<Sqs>,
    pub stats: RefCell<Stats>,
    pub checks: RefCell<Checks>,
    /// Each prediction's story, its last entries.
    pub stories: RefCell<BTreeMap<PredictionId, Vec<Told>>>,
    /// New predictions are still being made.
    pub creating: Cell<bool>,
    /// The reconciler's runs in a row that learned nothing.
    pub learned_nothing: Cell<u32>,
    /// WriftAI refuses every `GET` until then (a revoked token, an outage).
    pub api_refusing_until: Cell<Option<OffsetDateTime>>,
    /// Predictions a `hooks forget` marked, and when.
    pub marked: RefCell<BTreeMap<PredictionId, OffsetDateTime>>,
    /// Predictions a `hooks forget` erased whole.
    pub erased: RefCell<BTreeSet<PredictionId>>,
    /// The index shards new writes use.
    pub shards: Cell<u16>,
    /// A process panicked, saying this: the run stops.
    pub panicked: RefCell<Option<String>>,
    /// Told of each message the stack sends to the work queue.
    pub sent: std::sync::Arc<tokio::sync::Notify>,
}

/// The most entries of a story kept.
const STORY: usize = 40;

impl World {
    pub fn new(settings: Settings) -> Rc<Self> {
        let mut rng = Rng::new(settings.seed);
        let sky = Sky::new(rng.fork());
        let sent = std::sync::Arc::new(tokio::sync::Notify::new());
        let told = sent.clone();
        let stack =
            Stack::new(rng.next_u64(), settings.shards, sky.weather(), std::sync::Arc::new(move || told.notify_one()));
        let shards = settings.shards;
        Rc::new(Self {
            shards: Cell::new(shards),
            settings,
            stack,
            sky,
            rng: RefCell::new(rng),
            start: clock::now(),
            truth: RefCell::default(),
            sqs: RefCell::default(),
            stats: RefCell::default(),
            checks: RefCell::default(),
            stories: RefCell::default(),
            creating: Cell::new(true),
            learned_nothing: Cell::new(0),
            api_refusing_until: Cell::new(None),
            marked: RefCell::default(),
            erased: RefCell::default(),
            panicked: RefCell::default(),
            sent,
        })
    }

    pub fn rng(&self) -> std::cell::RefMut<'_, Rng> {
        self.rng.borrow_mut()
    }

    pub fn chance(&self, p: f64) -> bool {
        self.rng().chance(p)
    }

    pub fn between(&self, lo: Duration, hi: Duration) -> Duration {
        self.rng().between(lo, hi)
    }

    /// Adds to `id`'s story.
    pub fn tell(&self, id: PredictionId, what: impl Into<String>) {
        let mut stories = self.stories.borrow_mut();
        let story = stories.entry(id).or_default();
        if story.len() == STORY {
            story.remove(0);
        }
        story.push(Told { at: clock::now(), what: what.into() });
    }

    /// Days since the run began, for the trace.
    pub fn day(&self, at: OffsetDateTime) -> String {
        let since = at - self.start;
        format!(
            "day {:>2} {:02}:{:02}:{:02}",
            since.whole_days(),
            since.whole_hours() % 24,
            since.whole_minutes() % 60,
            since.whole_seconds() % 60
        )
    }
}

/// Runs `process` beside the others. A panic in it stops the run, reported as broken.
pub fn spawn(world: &Rc<World>, process: impl std::future::Future<Output = ()> + 'static) {
    let world = world.clone();
    tokio::task::spawn_local(async move {
        if let Err(panic) = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(process)).await {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            world.panicked.borrow_mut().get_or_insert(text);
        }
    });
}

/// `process`, crashed (dropped where it awaits) at its `polls`th poll when it is given:
/// `None` when it crashed.
pub async fn crashing<T>(polls: Option<u32>, process: impl std::future::Future<Output = T>) -> Option<T> {
    let mut process = std::pin::pin!(process);
    let mut left = polls;
    std::future::poll_fn(move |cx| {
        if left == Some(0) {
            return std::task::Poll::Ready(None);
        }
        left = left.map(|n| n - 1);
        process.as_mut().poll(cx).map(Some)
    })
    .await
}

pub async fn sleep(long: Duration) {
    tokio::time::sleep(long).await;
}

/// A prediction's JSON as WriftAI writes it.
fn body(id: PredictionId, status: &Status, created: OffsetDateTime, input: &Value) -> String {
    let now = clock::now().format(&Rfc3339).unwrap_or_default();
    let created = created.format(&Rfc3339).unwrap_or_default();
    let (output, error) = match status {
        Status::Succeeded => (json!(format!("output of {id}")), Value::Null),
        Status::Failed => (Value::Null, json!({"source": "internal", "message": "the model failed", "detail": null})),
        _ => (Value::Null, Value::Null),
    };
    json!({
        "id": id.to_string(), "status": status.as_str(), "created_at": created, "updated_at": now,
        "model": {"owner": "acme", "name": "echo", "version_number": 3},
        "input": input, "output": output, "error": error, "metrics": null,
        "setup_time": null, "execution_time": null, "stream": false,
    })
    .to_string()
}

/// Makes predictions for the run's first days, at random times.
pub async fn creator(world: Rc<World>) {
    let mean = Duration::from_secs(world.settings.days * 86_400) / world.settings.predictions.max(1) as u32;
    for _ in 0..world.settings.predictions {
        let wait = world.rng().exponential(mean);
        sleep(wait).await;
        let id = new_id(&world);
        // A pipeline of two steps now and then, a body too large for its event (kept by
        // the run that works it), and a result too large for an item.
        let input = {
            let mut rng = world.rng();
            let mut input = json!({"prompt": "hello"});
            if rng.chance(0.15) {
                input["then"] = json!({"model": "acme/echo:3"});
            }
            if rng.chance(0.3) {
                input["note"] = json!("n".repeat(600));
            }
            if rng.chance(0.005) {
                input["pad"] = json!(410_000);
            }
            input
        };
        spawn(&world, life(world.clone(), id, input, true));
    }
    world.creating.set(false);
}

pub fn new_id(world: &World) -> PredictionId {
    let (high, low) = {
        let mut rng = world.rng();
        (rng.next_u64(), rng.next_u64())
    };
    let bits = (u128::from(high) << 64) | u128::from(low);
    let uuid = uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid();
    PredictionId::parse(&uuid.hyphenated().to_string()).expect("a hyphenated UUID")
}

/// Drives the predictions the work created (a chain's next one) through their lives.
pub fn adopt(world: &Rc<World>) {
    for id in world.stack.api.take_created() {
        let input = world.stack.api.prediction(id).map(|p| p.input).unwrap_or(Value::Null);
        world.stats.borrow_mut().chained += 1;
        world.checks.borrow_mut().chained(world, id, &input);
        spawn(world, life(world.clone(), id, input, false));
    }
}

/// One prediction's life at WriftAI: created (and, for ours, recorded as ours), its
/// statuses one after another with a webhook each, then, some time after it ended,
/// purged.
async fn life(world: Rc<World>, id: PredictionId, input: Value, register: bool) {
    let created = clock::now();
    world.truth.borrow_mut().insert(id, Truth { ended: None, purged: false, registered: !register });
    if register {
        // `create`: WriftAI makes it, then the stack records it as ours; a failed record
        // is tried again, as `hooks register` would be.
        let raw = body(id, &Status::Starting, created, &input);
        world.stack.api.set(&raw);
        for _ in 0..5 {
            if world.stack.ledger.register(id, clock::now()).await.is_ok() {
                world.truth.borrow_mut().get_mut(&id).expect("just made").registered = true;
                break;
            }
            sleep(Duration::from_secs(1)).await;
        }
        world.tell(id, "created and registered");
    }
    let (end, lasts) = {
        let mut rng = world.rng();
        let end = match rng.below(100) {
            0..=84 => Status::Succeeded,
            85..=94 => Status::Failed,
            95..=98 => Status::Cancelled,
            _ => Status::Abandoned,
        };
        // Fast models: nearly all finish within the reconciler's minimum age; a few run
        // long.
        let lasts = if rng.chance(0.995) {
            rng.between(Duration::from_secs(2), Duration::from_secs(240))
        } else {
            rng.between(Duration::from_secs(240), Duration::from_secs(1800))
        };
        (end, lasts)
    };
    let statuses = [Status::Starting, Status::Started, end.clone()];
    let mut at = Duration::ZERO;
    for (n, status) in statuses.iter().enumerate() {
        let next = if n + 1 == statuses.len() { lasts } else { lasts / 10 };
        sleep(next.saturating_sub(at).max(Duration::from_millis(50))).await;
        at = at.max(next);
        let raw = body(id, status, created, &input);
        world.stack.api.set(&raw);
        if status.is_terminal() {
            world.truth.borrow_mut().get_mut(&id).expect("made").ended = Some((status.clone(), clock::now()));
        }
        world.tell(id, format!("WriftAI: {status}"));
        spawn(&world, deliver(world.clone(), id, raw.clone()));
        // The same event more than once, now and then.
        if world.chance(0.08) {
            world.stats.borrow_mut().duplicates += 1;
            spawn(&world, deliver(world.clone(), id, raw));
        }
    }
    // Purged some time after it ended: hours mostly, days at most, minutes now and then
    // (WriftAI does not say how long it keeps a prediction).
    let kept = {
        let mut rng = world.rng();
        match rng.below(100) {
            0..=4 => rng.between(Duration::from_secs(60), Duration::from_secs(600)),
            5..=59 => rng.between(Duration::from_secs(3600), Duration::from_secs(86_400)),
            _ => rng.between(Duration::from_secs(86_400), Duration::from_secs(10 * 86_400)),
        }
    };
    sleep(kept).await;
    world.stack.api.forget(id);
    world.truth.borrow_mut().get_mut(&id).expect("made").purged = true;
    world.tell(id, "WriftAI purged it");
}

/// One status's webhook, as WriftAI sends it: maybe never, maybe late (so out of order),
/// and again after a 429, a 5xx or no answer, a few times.
async fn deliver(world: Rc<World>, id: PredictionId, raw: String) {
    if world.chance(0.03) {
        world.stats.borrow_mut().dropped += 1;
        world.tell(id, "a webhook WriftAI never sent");
        return;
    }
    let late = world.between(Duration::ZERO, Duration::from_secs(20));
    sleep(late).await;
    for (attempt, wait) in std::iter::once(0).chain(RETRIES).enumerate() {
        sleep(Duration::from_secs(wait)).await;
        world.stats.borrow_mut().deliveries += 1;
        let answer = post(&world, &raw).await;
        let status = raw_status(&raw);
        world.tell(
            id,
            format!(
                "webhook {status} try {}: {}",
                attempt + 1,
                answer.map_or("no answer".to_owned(), |a| a.to_string())
            ),
        );
        match answer {
            Some(200) => return,
            Some(code) if code == 429 || code >= 500 => {}
            Some(_) => return,
            None => {}
        }
    }
    world.stats.borrow_mut().exhausted += 1;
}

fn raw_status(raw: &str) -> String {
    serde_json::from_str::<Value>(raw).ok().and_then(|v| v["status"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// One POST to the receiver's Function URL: its status, or none when the invocation
/// crashed or timed out.
async fn post(world: &World, raw: &str) -> Option<u16> {
    let now = clock::now();
    let mut context = lambda_http::Context::default();
    context.deadline = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0) + 10_000;
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://receiver.simulated/")
        .header("content-type", "application/json")
        .header(signature::HEADER, signature::sign(SECRET, now.unix_timestamp(), raw.as_bytes()))
        .body(Body::Text(raw.to_owned()))
        .expect("a request")
        .with_lambda_context(context);
    let crash = world.chance(0.01).then(|| world.rng().below(12) as u32);
    let handled = crashing(crash, world.stack.receiver.handle(request));
    let answer = tokio::time::timeout(Duration::from_secs(10), handled).await.ok().flatten();
    if answer.is_none() {
        world.stats.borrow_mut().receiver_crashes += 1;
    }
    answer?.ok().map(|response| response.status().as_u16())
}

/// WriftAI's API has bad spells: a revoked token (401), rate limits (429), an outage
/// (503), minutes to hours each, every few days; now and then one lasts a weekend.
pub async fn api_spells(world: Rc<World>) {
    while world.creating.get() {
        let wait = world.rng().exponential(Duration::from_secs(4 * 86_400));
        sleep(wait).await;
        let (code, long) = {
            let mut rng = world.rng();
            let long = if rng.chance(0.2) { Duration::from_secs(2 * 86_400) } else { Duration::from_secs(3 * 3600) };
            (*rng.pick(&[401u16, 429, 503]).expect("three"), rng.between(Duration::from_secs(300), long))
        };
        world.stack.api.refuse(Some(code));
        world.api_refusing_until.set(Some(clock::now() + long));
        world.stats.borrow_mut().api_spells += 1;
        sleep(long).await;
        world.stack.api.refuse(None);
    }
}

/// DynamoDB and SQS have storms: minutes of most calls failing, every few days.
pub async fn storms(world: Rc<World>) {
    while world.creating.get() {
        let wait = world.rng().exponential(Duration::from_secs(3 * 86_400));
        sleep(wait).await;
        let long = world.between(Duration::from_secs(30), Duration::from_secs(600));
        world.sky.storm(long);
        world.stats.borrow_mut().storms += 1;
    }
}

/// The downstream service the work calls has outages: an hour to a day, every ten days
/// or so.
pub async fn outages(world: Rc<World>) {
    while world.creating.get() {
        let wait = world.rng().exponential(Duration::from_secs(10 * 86_400));
        sleep(wait).await;
        let long = world.between(Duration::from_secs(3600), Duration::from_secs(86_400));
        world.stack.downstream_down.store(true, Ordering::SeqCst);
        world.stats.borrow_mut().outages += 1;
        sleep(long).await;
        world.stack.downstream_down.store(false, Ordering::SeqCst);
    }
}

/// The scheduler: a reconciler run every 5 minutes, never two at once (its reserved
/// concurrency is 1). A run may crash.
pub async fn reconciler(world: Rc<World>) {
    loop {
        let mut context = lambda_runtime::Context::default();
        let now = clock::now();
        context.deadline = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0) + 300_000;
        let event = lambda_runtime::LambdaEvent::new(json!({"source": "aws.scheduler"}), context);
        let crash = world.chance(0.01).then(|| world.rng().below(60) as u32);
        let run = crashing(crash, world.stack.reconciler.handle(event));
        let run = tokio::time::timeout(Duration::from_secs(300), run).await.ok().flatten();
        {
            let mut stats = world.stats.borrow_mut();
            stats.reconciler_runs += 1;
            match run {
                Some(Ok(summary)) => {
                    let learned_nothing =
                        summary["unanswered"].as_u64() > Some(0) && summary["examined"].as_u64() == Some(0);
                    world.learned_nothing.set(if learned_nothing { world.learned_nothing.get() + 1 } else { 0 });
                }
                Some(Err(_)) => stats.reconciler_failures += 1,
                None => stats.reconciler_crashes += 1,
            }
        }
        if !world.creating.get() && world.stats.borrow().settled {
            return;
        }
        sleep(Duration::from_secs(300).saturating_sub((clock::now() - now).unsigned_abs())).await;
    }
}

/// DynamoDB's TTL (an expired item deleted 0 to 48 hours late), S3's lifecycle rule on
/// `records/`, and SQS's retention: every three hours.
pub async fn expiry(world: Rc<World>) {
    let salt = world.rng().next_u64();
    loop {
        sleep(Duration::from_secs(3 * 3600)).await;
        let now = clock::now();
        let lag = |hash: u64| Duration::from_secs((hash ^ salt) % (48 * 3600));
        let deleted = world.stack.ledger.expire_late(now, lag);
        let retention = world.checks.borrow().retention;
        let objects = retention.map_or(0, |days| world.stack.bucket.expire("records/", now, days));
        let dlq = world.stack.dead_letters.expire(now, crate::sqs::RETENTION);
        let queue = world.sqs.borrow_mut().expire(now);
        let mut stats = world.stats.borrow_mut();
        stats.ttl_deleted += deleted as u64;
        stats.objects_expired += objects as u64;
        stats.messages_expired += (dlq + queue) as u64;
        drop(stats);
        if !world.creating.get() && world.stats.borrow().settled {
            return;
        }
    }
}
