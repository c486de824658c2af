//! The weather every AWS call of the stack meets: how long it takes, and whether it is
//! refused or its answer lost; calm, or a storm (a spell of DynamoDB or SQS trouble).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::memory::{Fate, Weather};
use wriftai_hooks::internals::clock;

use crate::rng::Rng;

/// How often a call fails in fair weather, and in a storm.
const FAULT_RATE: f64 = 0.004;
const STORM_FAULT_RATE: f64 = 0.5;
/// A call that times out takes this long, and its answer is lost or it is refused.
const TIMEOUT: Duration = Duration::from_secs(5);

struct State {
    rng: Rng,
    /// Faults at all (the last days of a run are calm, so its work can settle).
    faults: bool,
    storm_until: Option<OffsetDateTime>,
    /// Faults dealt, by kind.
    dealt: [u64; 3],
}

/// The weather, shared by every adapter of the stack.
pub struct Sky(Mutex<State>);

impl Sky {
    pub fn new(rng: Rng) -> Arc<Self> {
        Arc::new(Self(Mutex::new(State { rng, faults: true, storm_until: None, dealt: [0; 3] })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The weather the adapters call.
    pub fn weather(self: &Arc<Self>) -> Weather {
        let sky = self.clone();
        Arc::new(move |_op| sky.call())
    }

    fn call(&self) -> (Duration, Fate) {
        let mut state = self.state();
        // A call's round trip: other tasks run meanwhile (an await), the clock stands.
        let latency = Duration::ZERO;
        if !state.faults {
            return (latency, Fate::Answered);
        }
        let storm = state.storm_until.is_some_and(|until| clock::now() < until);
        let rate = if storm { STORM_FAULT_RATE } else { FAULT_RATE };
        if !state.rng.chance(rate) {
            return (latency, Fate::Answered);
        }
        let kind = state.rng.below(3);
        state.dealt[kind as usize] += 1;
        match kind {
            0 => (latency, Fate::Refused),
            1 => (latency, Fate::Lost),
            _ => (TIMEOUT, if state.rng.chance(0.5) { Fate::Lost } else { Fate::Refused }),
        }
    }

    /// A storm from now for `long`.
    pub fn storm(&self, long: Duration) {
        self.state().storm_until = Some(clock::now() + long);
    }

    /// No more faults.
    pub fn calm(&self) {
        self.state().faults = false;
    }

    /// Faults dealt: refused, answers lost, timeouts.
    pub fn dealt(&self) -> [u64; 3] {
        self.state().dealt
    }
}
