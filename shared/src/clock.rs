//! The time of day every decision is made on. On AWS it is the system's; in this
//! repository's simulation (`lab/sim`) it is a virtual one that moves with tokio's paused
//! clock, so days of a stack's life pass in seconds and each run repeats exactly.
//!
//! Code that stamps or compares a time of day calls [`now`], never
//! `OffsetDateTime::now_utc()`: a time read past the seam is a time the simulation cannot
//! move, and a defect it cannot find. Durations are measured on `tokio::time::Instant`,
//! which the simulation pauses and advances too.

use time::OffsetDateTime;

/// Now: the system's time, or the simulation's when one runs on this thread.
pub(crate) fn now() -> OffsetDateTime {
    #[cfg(any(test, feature = "test-util"))]
    if let Some(now) = simulated::virtual_now() {
        return now;
    }
    OffsetDateTime::now_utc()
}

/// Now in milliseconds since the epoch, as the Lambda runtime's deadlines are given.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(now().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(any(test, feature = "test-util"))]
pub(crate) mod simulated {
    use std::cell::Cell;

    use time::OffsetDateTime;
    use tokio::time::Instant;

    thread_local! {
        /// The virtual clock of this thread: the tokio instant it started at, and the time
        /// of day it stood for then.
        static VIRTUAL: Cell<Option<(Instant, OffsetDateTime)>> = const { Cell::new(None) };
    }

    pub(super) fn virtual_now() -> Option<OffsetDateTime> {
        VIRTUAL.get().map(|(since, at)| at + since.elapsed())
    }

    /// From now on this thread's time of day is `start` plus the time tokio's clock moves
    /// (paused, in a simulation: it moves only when every task waits). Until [`end`].
    pub fn start(start: OffsetDateTime) {
        VIRTUAL.set(Some((Instant::now(), start)));
    }

    /// Now, as the engine takes it: the virtual time while one runs.
    pub fn now() -> OffsetDateTime {
        super::now()
    }

    /// The thread's time of day is the system's again.
    pub fn end() {
        VIRTUAL.set(None);
    }
}
