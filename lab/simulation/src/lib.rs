//! A deterministic simulation of the whole pipeline, as FoundationDB and TigerBeetle test:
//! the engine's own receiver, worker and reconciler, and the operator's `hooks`, on the
//! in-memory adapters, driven on one thread by tokio's paused clock (`start_paused`: time
//! moves only when every task waits, so weeks pass in seconds). WriftAI, SQS, the Lambda
//! event source, DynamoDB's TTL and S3's lifecycle are models; every chance (a lost
//! answer, a crash, a duplicate, an operator's command) is drawn from one seed, so a seed
//! replays its run exactly. The invariants (`checks`) are checked each simulated day and
//! at the end; a broken one prints its seed and its prediction's story.
//!
//! `make sim` runs it (`SEED=`, `PREDICTIONS=`, `DAYS=`); `make test` runs a short one.

mod checks;
mod operator;
pub mod rng;
mod sky;
mod sqs;
mod stack;
mod world;

use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use wriftai_hooks::internals::clock;
use wriftai_hooks::internals::metrics::captured;

pub use checks::Violation;
use world::{World, sleep};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Settings {
    pub seed: u64,
    /// Predictions made over the run's days.
    pub predictions: usize,
    /// Days predictions are made over; the run then settles for two more.
    pub days: u64,
    /// Index shards to start with.
    pub shards: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Self { seed: 1, predictions: 5_000, days: 30, shards: 16 }
    }
}

/// What the operator did.
#[derive(Clone, Debug, Default)]
pub struct Operator {
    pub replays: u64,
    pub bulk_replays: u64,
    pub redrives: u64,
    pub forgets: u64,
    pub forgets_interrupted: u64,
    pub retentions: u64,
    pub reshards: u64,
}

/// What happened in a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub deliveries: u64,
    pub duplicates: u64,
    pub dropped: u64,
    pub exhausted: u64,
    pub chained: u64,
    pub strays: u64,
    pub receiver_crashes: u64,
    pub worker_crashes: u64,
    pub reconciler_crashes: u64,
    pub reconciler_failures: u64,
    pub reconciler_runs: u64,
    pub batches: u64,
    pub messages: u64,
    pub storms: u64,
    pub api_spells: u64,
    pub outages: u64,
    pub ttl_deleted: u64,
    pub objects_expired: u64,
    pub messages_expired: u64,
    pub operator: Operator,
    /// The run has settled: the processes stop.
    pub settled: bool,
}

/// A run's outcome.
pub struct Report {
    pub settings: Settings,
    pub stats: Stats,
    /// Faults the weather dealt: refused, answers lost, timeouts.
    pub faults: [u64; 3],
    pub simulated: Duration,
    pub wall: Duration,
    pub violations: Vec<Violation>,
    /// Each violated prediction's story, as the trace.
    pub stories: Vec<(wriftai_hooks::PredictionId, Vec<String>)>,
    /// A digest of the run's end state: the same seed gives the same digest.
    pub digest: u64,
}

/// When every run's clock starts.
fn epoch() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_798_761_600).expect("2027-01-01")
}

/// Runs one simulation.
pub fn run(settings: Settings) -> Report {
    // On a thread of its own with room for the engine's futures, which an unoptimized
    // build (make test's) nests deeper than a test thread's 2 MiB hold.
    let world = std::thread::Builder::new().name("simulation".into()).stack_size(STACK_BYTES);
    world.spawn(move || run_here(settings)).expect("a thread").join().unwrap_or_else(|panic| {
        std::panic::resume_unwind(panic);
    })
}

/// The simulation thread's stack.
const STACK_BYTES: usize = 256 << 20;

fn run_here(settings: Settings) -> Report {
    let wall = Instant::now();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("a runtime");
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&runtime, async move {
        clock::start(epoch());
        captured::start();
        let world = World::new(settings);
        let report = drive(world).await;
        captured::end();
        clock::end();
        report
    });
    Report { wall: wall.elapsed(), ..report }
}

async fn drive(world: Rc<World>) -> Report {
    type Process = fn(Rc<World>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
    let spawn = |process: Process| {
        world::spawn(&world, process(world.clone()));
    };
    spawn(|w| Box::pin(world::creator(w)));
    spawn(|w| Box::pin(world::api_spells(w)));
    spawn(|w| Box::pin(world::storms(w)));
    spawn(|w| Box::pin(world::outages(w)));
    spawn(|w| Box::pin(world::reconciler(w)));
    spawn(|w| Box::pin(world::expiry(w)));
    spawn(|w| Box::pin(sqs::event_source(w)));
    spawn(|w| Box::pin(operator::operator(w)));
    // A check each day while predictions are made.
    while world.creating.get() && world.panicked.borrow().is_none() {
        sleep(Duration::from_secs(86_400)).await;
        checks::as_it_runs(&world);
    }
    if let Some(panic) = world.panicked.borrow().clone() {
        world.stats.borrow_mut().settled = true;
        world.checks.borrow_mut().violations.push(Violation {
            at: clock::now(),
            invariant: 0,
            prediction: None,
            what: format!("a process panicked: {panic}"),
        });
        return report(&world);
    }
    // Then the weather clears and the downstream service comes back; two days settle.
    world.sky.calm();
    world.stack.downstream_down.store(false, std::sync::atomic::Ordering::SeqCst);
    world.stack.api.refuse(None);
    sleep(Duration::from_secs(2 * 86_400)).await;
    checks::as_it_runs(&world);
    checks::at_the_end(&world).await;
    world.stats.borrow_mut().settled = true;
    report(&world)
}

fn report(world: &World) -> Report {
    let violations = world.checks.borrow().violations.clone();
    let stories = violations
        .iter()
        .filter_map(|v| v.prediction)
        .take(5)
        .map(|id| {
            let story = world.stories.borrow().get(&id).cloned().unwrap_or_default();
            (id, story.into_iter().map(|told| format!("{}  {}", world.day(told.at), told.what)).collect())
        })
        .collect();
    Report {
        settings: world.settings.clone(),
        stats: world.stats.borrow().clone(),
        faults: world.sky.dealt(),
        simulated: (clock::now() - world.start).unsigned_abs(),
        wall: Duration::ZERO,
        violations,
        stories,
        digest: digest(world),
    }
}

/// FNV-1a over the end state: each prediction's row, each event's, each effect.
fn digest(world: &World) -> u64 {
    let mut text = String::new();
    for id in world.stack.ledger.prediction_ids() {
        text.push_str(&format!("{id}{:?}", world.stack.ledger.prediction(id).map(|r| (r.status, r.open, r.closed))));
    }
    world.stack.ledger.each_event(|id, status, event| {
        text.push_str(&format!("{id}{status}{:?}{}{}", event.done, event.attempts, event.requeues));
    });
    for (key, times) in world.stack.effects.ran.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        text.push_str(&format!("{key:?}{times:?}"));
    }
    wriftai_hooks::internals::shards::fnv1a(text.as_bytes())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, o) = (&self.stats, &self.stats.operator);
        writeln!(f, "=== simulation (seed {}) ===", self.settings.seed)?;
        writeln!(
            f,
            "predictions      {} over {} days (+{} chained, +{} registered by hand), {:.1} days simulated in {:.1} s",
            self.settings.predictions,
            self.settings.days,
            s.chained,
            s.strays,
            self.simulated.as_secs_f64() / 86_400.0,
            self.wall.as_secs_f64()
        )?;
        writeln!(
            f,
            "webhooks         {} posts, {} duplicated, {} never sent, {} gave up after retries",
            s.deliveries, s.duplicates, s.dropped, s.exhausted
        )?;
        writeln!(
            f,
            "AWS faults       {} refused, {} answers lost, {} timeouts; {} storms",
            self.faults[0], self.faults[1], self.faults[2], s.storms
        )?;
        writeln!(
            f,
            "crashes          receiver {}, worker {}, reconciler {} (of {} runs, {} failed)",
            s.receiver_crashes, s.worker_crashes, s.reconciler_crashes, s.reconciler_runs, s.reconciler_failures
        )?;
        writeln!(f, "queue            {} messages, {} batches", s.messages, s.batches)?;
        writeln!(f, "outside          {} WriftAI API spells, {} downstream outages", s.api_spells, s.outages)?;
        writeln!(
            f,
            "expiry           {} items by TTL, {} objects by lifecycle, {} messages by retention",
            s.ttl_deleted, s.objects_expired, s.messages_expired
        )?;
        writeln!(
            f,
            "operator         {} replays, {} bulk replays, {} redrives, {} forgets ({} interrupted), {} retention changes, {} reshards",
            o.replays, o.bulk_replays, o.redrives, o.forgets, o.forgets_interrupted, o.retentions, o.reshards
        )?;
        writeln!(f, "digest           {:016x}", self.digest)?;
        writeln!(f, "violations       {}", self.violations.len())?;
        for violation in self.violations.iter().take(20) {
            let id = violation.prediction.map(|id| id.to_string()).unwrap_or_default();
            writeln!(f, "  [{}] {} {}: {}", violation.invariant, violation.at, id, violation.what)?;
        }
        for (id, story) in &self.stories {
            writeln!(f, "story of {id}:")?;
            for line in story {
                writeln!(f, "  {line}")?;
            }
        }
        write!(f, "===")
    }
}
