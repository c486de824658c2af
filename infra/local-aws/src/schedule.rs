//! The reconciler's schedule: a Scheduled Event every period, never two runs at once.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use crate::cli::ScheduleConfig;
use devcli::chain;

use crate::error::Error;
use crate::event::scheduled_event;
use crate::invoke::Invoker;

pub struct Schedule {
    invoker: Invoker,
    every: Duration,
    region: String,
}

impl Schedule {
    pub fn new(config: &ScheduleConfig, region: impl Into<String>) -> Result<Self, Error> {
        let invoker = Invoker::new(&config.invoke_url, &config.function)?;
        Ok(Self { invoker, every: config.every, region: region.into() })
    }

    /// Runs until the future is dropped. The first run is one period after the start, as
    /// with a `rate(...)` schedule. A run is awaited before the next tick, and the ticks
    /// that passed meanwhile are skipped rather than fired in a burst: on AWS a slow run
    /// would overlap the next one, which the reconciler must survive, but locally one at
    /// a time keeps the logs readable.
    pub async fn run(&self) {
        let function = self.invoker.function();
        tracing::info!(function, every_secs = self.every.as_secs(), "scheduling");
        let mut ticks = interval_at(Instant::now() + self.every, self.every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            let id = uuid::Uuid::new_v4().to_string();
            let event = scheduled_event(function, &self.region, &id, OffsetDateTime::now_utc());
            let started = Instant::now();
            let outcome = self.invoker.invoke(&event).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Ok(answer) => tracing::info!(function, event_id = %id, elapsed_ms, %answer, "scheduled run"),
                // Scheduler would retry an asynchronous invocation that failed; the next
                // tick is the retry here.
                Err(error) => {
                    tracing::warn!(function, event_id = %id, elapsed_ms, error = %chain(&error), "scheduled run failed")
                }
            }
        }
    }
}
