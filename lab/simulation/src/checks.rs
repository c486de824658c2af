//! The invariants, checked as the run goes (each day) and at its end. Each broken one is
//! a [`Violation`] naming its prediction, whose story the report prints.
//!
//! 1. A step's effect runs at most once per (prediction, status, name): the work's
//!    steps record their outcomes, and nothing the stack or the operator does brings one
//!    back to run (its outcome recorded unknown would stop it, never run it).
//! 2. A chain creates at most one next prediction per prediction.
//! 3. Nothing runs for a prediction `hooks forget` has marked, from the mark on; and
//!    nothing of one it erased whole is ever written back.
//! 4. No prediction stays open (in the `open` index) for a day, whatever WriftAI says
//!    of it: one it can answer about is learned by then, one it cannot is closed; and no
//!    unfinished work waits a day in the `work` index without a walk reaching it.
//! 5. At the end, every acted event's work is done, or dead-lettered and counted by
//!    `hooks status`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use wriftai_hooks::PredictionId;
use wriftai_hooks::internals::clock;

use crate::world::World;

/// One broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    pub at: OffsetDateTime,
    /// Which invariant (1 to 5).
    pub invariant: u8,
    pub prediction: Option<PredictionId>,
    pub what: String,
}

#[derive(Default)]
pub struct Checks {
    pub violations: Vec<Violation>,
    /// How long records and finished steps are kept now (`RECORD_TTL_DAYS`).
    pub retention: Option<Duration>,
    /// The predictions chained from each.
    children: BTreeMap<PredictionId, Vec<PredictionId>>,
    /// What was reported already, so each is reported once.
    reported: BTreeSet<(u8, PredictionId, String)>,
}

/// How long a prediction may stay open, or work wait unwalked.
const STUCK: Duration = Duration::from_secs(86_400);

impl Checks {
    fn violate(&mut self, invariant: u8, prediction: PredictionId, what: String) {
        if self.reported.insert((invariant, prediction, what.clone())) {
            self.violations.push(Violation { at: clock::now(), invariant, prediction: Some(prediction), what });
        }
    }

    /// A prediction the work created: chained from which.
    pub fn chained(&mut self, world: &World, child: PredictionId, input: &Value) {
        let parent = input["chained_from"]["prediction_id"].as_str().and_then(|id| PredictionId::parse(id).ok());
        let Some(parent) = parent else { return };
        world.tell(parent, format!("chained {child}"));
        let children = self.children.entry(parent).or_default();
        children.push(child);
        if children.len() > 1 {
            let what = format!("{} predictions chained from one: {children:?}", children.len());
            self.violate(2, parent, what);
        }
    }
}

/// Checks invariants 1, 3 and 4 now.
pub fn as_it_runs(world: &World) {
    let now = clock::now();
    let mut checks = world.checks.borrow_mut();
    let marked = world.marked.borrow();
    for ((id, status, name), times) in world.stack.effects.ran.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if times.len() > 1 {
            let when: Vec<String> = times.iter().map(|t| world.day(*t)).collect();
            checks.violate(
                1,
                *id,
                format!("the {name:?} step of {status} ran {} times: {}", times.len(), when.join(", ")),
            );
        }
        if let Some(mark) = marked.get(id)
            && let Some(after) = times.iter().find(|t| *t > mark)
        {
            let what = format!(
                "the {name:?} step of {status} ran at {}, after hooks forget marked it at {}",
                world.day(*after),
                world.day(*mark)
            );
            checks.violate(3, *id, what);
        }
    }
    for (id, began) in world.stack.effects.began.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if let Some(mark) = marked.get(id)
            && began > mark
        {
            let what =
                format!("its work ran at {}, after hooks forget marked it at {}", world.day(*began), world.day(*mark));
            checks.violate(3, *id, what);
        }
    }
    for id in world.erased.borrow().iter() {
        if world.stack.ledger.holds_any_of(*id) {
            checks.violate(3, *id, "items written back after hooks forget erased it".to_owned());
        }
    }
    let refused_lately = world.api_refusing_until.get().is_some_and(|until| now - until < STUCK);
    for id in world.stack.ledger.prediction_ids() {
        let Some(row) = world.stack.ledger.prediction(id) else { continue };
        if row.open && now - row.registered_at > STUCK && !refused_lately {
            let purged = world.truth.borrow().get(&id).is_some_and(|t| t.purged);
            let what = if purged { "open for a day, and WriftAI answers 404 about it" } else { "open for a day" };
            checks.violate(4, id, what.to_owned());
        }
    }
    let mut stuck = Vec::new();
    world.stack.ledger.each_event(|id, status, event| {
        if event.work_since.is_some_and(|since| now - since > STUCK) {
            stuck.push((id, format!("work of {status} unfinished and unwalked for a day")));
        }
    });
    for (id, what) in stuck {
        checks.violate(4, id, what);
    }
}

/// Checks invariant 5, once the run has settled.
pub async fn at_the_end(world: &World) {
    let dead_lettered = wriftai_hooks::ops::status(&world.stack.ops)
        .await
        .ok()
        .and_then(|report| report["dead_letter_queue"]["visible"].as_u64())
        .unwrap_or(0);
    let letters = world.stack.dead_letters.peek(usize::MAX);
    let in_dlq = |id: PredictionId| letters.iter().any(|(_, body, _)| body.contains(&id.to_string()));
    let truth = world.truth.borrow().clone();
    let marked = world.marked.borrow().clone();
    let mut checks = world.checks.borrow_mut();
    // A chain registers its child after creating it, in every run of the parent's work:
    // a child whose parent's work is done is ours. One whose parent's work ended
    // dead-lettered before it was registered is not yet (its parent is checked), and its
    // webhooks were refused as unknown: beyond what the stack can know until an operator
    // redrives the parent.
    let children: Vec<(PredictionId, PredictionId)> =
        checks.children.iter().flat_map(|(parent, children)| children.iter().map(|child| (*parent, *child))).collect();
    let chained: BTreeSet<PredictionId> = children.iter().map(|(_, child)| *child).collect();
    for (parent, child) in children {
        let parent_done = world.stack.ledger.event(parent, "succeeded").is_some_and(|event| event.done.is_some());
        if parent_done && world.stack.ledger.prediction(child).is_none() && !marked.contains_key(&child) {
            let what = format!("chained from {parent}, whose work is done, and never registered");
            checks.violate(5, child, what);
        }
    }
    for (id, truth) in truth {
        let Some((status, _)) = truth.ended else { continue };
        if !truth.registered || marked.contains_key(&id) {
            continue;
        }
        if chained.contains(&id) && world.stack.ledger.prediction(id).is_none() {
            // Never ours (above): a chained child whose parent never got to register it.
            continue;
        }
        if world.stack.effects.count(id, status.as_str(), "effect") > 0 {
            continue;
        }
        let closed = world.stack.ledger.prediction(id).is_some_and(|row| row.closed.is_some());
        let event = world.stack.ledger.event(id, status.as_str());
        match event {
            // Its work is not done: dead-lettered, and counted so, is an end.
            Some(event) if event.done.is_none() && (event.gave_up.is_some() || in_dlq(id)) && dead_lettered > 0 => {}
            // Failing downstream since its last try: dead-lettered in all but name.
            Some(event) if event.done.is_none() && event.last_error.is_some() && in_dlq(id) => {}
            Some(event) if event.done.is_some() => {}
            None if closed => {}
            other => {
                let why = match other {
                    Some(event) => format!("work of {status} neither done nor dead-lettered: {:?}", event.last_error),
                    None => format!("{status} never recorded"),
                };
                checks.violate(5, id, why);
            }
        }
    }
}
