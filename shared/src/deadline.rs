//! Time budgets: how long the current invocation has left, from the runtime's deadline,
//! and the deadline every retrying call of an invocation is bounded by.
//!
//! The numbers that bound AWS calls are `adapters::ATTEMPT_TIMEOUT` (2 s for one try)
//! and `adapters::OPERATION_TIMEOUT` (5 s for a whole call, the SDK's retries included).
//! Every margin kept back from a deadline is made from them and [`ANSWER_MARGIN`].

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Anything below this is not a date (it is before 2001): a duration instead.
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// Time kept back from an invocation's deadline to answer it: the response built and
/// handed to the runtime, which takes milliseconds; the rest is slack.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(1);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Time left until `deadline_ms`, the `Lambda-Runtime-Deadline-Ms` header. On AWS it is
/// a unix timestamp in milliseconds. `cargo lambda watch` (1.9) sends the timeout
/// itself instead (`600000`); read literally, that deadline passed in 1970 and every
/// claim would be born expired, so a value too small to be a date is taken as the time
/// left.
pub fn time_left(deadline_ms: u64) -> Duration {
    if deadline_ms < EPOCH_MS_FLOOR {
        return Duration::from_millis(deadline_ms);
    }
    Duration::from_millis(deadline_ms.saturating_sub(crate::clock::now_ms()))
}

/// Runs `future` with every call inside it that retries by itself (`resend`) bounded
/// by `deadline`: it spends the time left, and no more.
pub async fn within<F: Future>(deadline: Instant, future: F) -> F::Output {
    DEADLINE.scope(deadline, future).await
}

/// The deadline of the calls now running, when [`within`] set one.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    #[test]
    fn an_epoch_deadline_gives_the_time_until_it() {
        let in_a_minute = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(60);
        let left = time_left(in_a_minute.as_millis() as u64);
        assert!(left > Duration::from_secs(58) && left <= Duration::from_secs(60), "{left:?}");
        assert_eq!(time_left(EPOCH_MS_FLOOR + 1), Duration::ZERO, "a deadline in the past leaves nothing");
    }

    #[test]
    fn a_bare_timeout_is_read_as_the_time_left() {
        assert_eq!(time_left(600_000), Duration::from_secs(600));
    }

    #[tokio::test]
    async fn the_deadline_is_set_for_what_runs_within_it_only() {
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(within(deadline, async { current() }).await, Some(deadline));
        assert_eq!(current(), None);
    }
}
