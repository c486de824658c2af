//! The operator, at random: `hooks replay` of one prediction and by filter, `hooks
//! redrive`, `hooks forget` (sometimes interrupted, sometimes run again later), a
//! retention set or changed, the index shards raised. Each as the runbook says, through
//! the engine's own `ops`.

use std::rc::Rc;
use std::time::Duration;

use wriftai_hooks::PredictionId;
use wriftai_hooks::internals::clock;
use wriftai_hooks::ops::{self, bulk};

use crate::world::{World, sleep};

/// The most index shards the operator raises to.
const MOST_SHARDS: u16 = 64;

pub async fn operator(world: Rc<World>) {
    while world.creating.get() {
        let wait = world.rng().exponential(Duration::from_secs(8 * 3600));
        sleep(wait).await;
        let action = world.rng().below(100);
        match action {
            0..=14 => replay_one(&world).await,
            15..=39 => replay_by_filter(&world).await,
            40..=59 => redrive(&world).await,
            60..=74 => {
                if let Some(id) = forget_whom(&world) {
                    crate::world::spawn(&world, forget(world.clone(), id));
                }
            }
            75..=86 => retention(&world),
            87..=94 => reshard(&world),
            _ => register_strays(&world).await,
        }
    }
}

/// A prediction of ours that ended, at random.
fn ended(world: &World) -> Option<PredictionId> {
    let truth = world.truth.borrow();
    let n = truth.len() as u64;
    if n == 0 {
        return None;
    }
    let skip = world.rng().below(n) as usize;
    truth
        .iter()
        .cycle()
        .skip(skip)
        .take(truth.len())
        .find(|(_, t)| t.registered && t.ended.is_some())
        .map(|(id, _)| *id)
}

async fn replay_one(world: &World) {
    let Some(id) = ended(world) else { return };
    let replayed = ops::replay(&world.stack.ops, id, None, &[]).await;
    world.tell(id, format!("operator: hooks replay: {}", outcome(&replayed)));
    world.stats.borrow_mut().operator.replays += 1;
}

async fn replay_by_filter(world: &World) {
    let work = if world.chance(0.5) { bulk::Work::DeadLettered } else { bulk::Work::Failed };
    let since = bulk::When { typed: "30d".to_owned(), at: clock::now() - Duration::from_secs(30 * 86_400) };
    let filter = bulk::Filter { since: Some(since), work: Some(work), ..bulk::Filter::default() };
    let name = filter.run_name(&[]);
    let run =
        bulk::Run { name: &name, only: Some(work), rate: 1_000_000, dry_run: false, forget: &[], progress: false };
    let _report = bulk::replay(&world.stack.ops, &filter, &run).await;
    world.stats.borrow_mut().operator.bulk_replays += 1;
}

async fn redrive(world: &World) {
    let _report = ops::redrive(&world.stack.ops, 1_000, false).await;
    world.stats.borrow_mut().operator.redrives += 1;
}

/// Whom to forget: half the time a prediction whose work is not done yet (the case an
/// erasure must fence), else any that ended.
fn forget_whom(world: &World) -> Option<PredictionId> {
    if world.chance(0.5) {
        let mut undone: Vec<PredictionId> = Vec::new();
        world.stack.ledger.each_event(|id, _, event| {
            if event.work_since.is_some() || event.gave_up.is_some() {
                undone.push(id);
            }
        });
        if let Some(id) = world.rng().pick(&undone) {
            return Some(*id);
        }
    }
    ended(world)
}

/// `hooks forget`: an interrupted one is run again later, now and then.
async fn forget(world: Rc<World>, id: PredictionId) {
    // Now and then in the middle of an incident: most calls fail for a minute.
    if world.chance(0.3) {
        world.sky.storm(Duration::from_secs(60));
    }
    for attempt in 1..=3 {
        let forgot = ops::forget(&world.stack.ops, id).await;
        world.tell(id, format!("operator: hooks forget (attempt {attempt}): {}", outcome(&forgot)));
        let marked = world.stack.ledger.marked(id);
        if marked {
            world.marked.borrow_mut().entry(id).or_insert_with(clock::now);
        }
        world.stats.borrow_mut().operator.forgets += 1;
        if forgot.is_ok() {
            world.erased.borrow_mut().insert(id);
            return;
        }
        world.stats.borrow_mut().operator.forgets_interrupted += 1;
        // Run again later, or left as it is.
        if !world.chance(0.5) {
            return;
        }
        let later = world.between(Duration::from_secs(3600), Duration::from_secs(3 * 86_400));
        sleep(later).await;
    }
}

/// `hooks register` of IDs WriftAI never made for us (a list from another account, a
/// typo): the reconciler meets predictions that answer 404 from the start.
async fn register_strays(world: &World) {
    let count = 3 + world.rng().below(3);
    for _ in 0..count {
        let stray = crate::world::new_id(world);
        world.tell(stray, "registered by hand, unknown to WriftAI");
        if ops::register(&world.stack.ops, stray).await.is_ok() {
            world.truth.borrow_mut().insert(stray, crate::world::Truth { ended: None, purged: true, registered: true });
            world.stats.borrow_mut().strays += 1;
        }
    }
}

fn retention(world: &World) {
    let days = if world.chance(0.2) { None } else { Some(15 + world.rng().below(46)) };
    let ttl = days.map(|days| Duration::from_secs(days * 86_400));
    world.stack.ledger.keep_records(ttl);
    world.checks.borrow_mut().retention = ttl;
    world.stats.borrow_mut().operator.retentions += 1;
}

fn reshard(world: &World) {
    let now = world.shards.get();
    if now >= MOST_SHARDS {
        return;
    }
    let raised = (now + 1 + world.rng().below(16) as u16).min(MOST_SHARDS);
    world.shards.set(raised);
    world.stack.ledger.reshard(raised);
    world.stats.borrow_mut().operator.reshards += 1;
}

fn outcome<T, E: std::fmt::Display>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => "done".to_owned(),
        Err(err) => format!("refused: {err}"),
    }
}
