//! How long the current invocation has left, from the runtime's deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Anything below this is not a date (it is before 2001): a duration instead.
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// Time left until `deadline_ms`, the `Lambda-Runtime-Deadline-Ms` header. On AWS it is
/// a unix timestamp in milliseconds. `cargo lambda watch` (1.9) sends the timeout
/// itself instead (`600000`); read literally, that deadline passed in 1970 and every
/// claim would be born expired, so a value too small to be a date is taken as the time
/// left.
pub fn time_left(deadline_ms: u64) -> Duration {
    if deadline_ms < EPOCH_MS_FLOOR {
        return Duration::from_millis(deadline_ms);
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    deadline.duration_since(SystemTime::now()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
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
}
