//! How long a prediction's trip took, measured between two instants one of which may
//! come from a webhook body: the lag metrics (`CompletionToReceipt`, `QueueWait`,
//! `WorkDuration`, `EndToEnd`). A body is written by whoever can post to the receiver,
//! so a time from it is a claim, never trusted as is: absurd values are skipped, not
//! clamped into the percentiles where they would hide.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::prediction::Prediction;

/// A completion this far in our future is taken as clock skew between WriftAI and AWS,
/// and counts as no lag; further, it is not a time WriftAI could have written.
pub const SKEW: Duration = Duration::from_secs(5);

/// The longest trip a measurement can describe: the work queue and its DLQ keep a
/// message 14 days. A longer lag is a made-up or broken timestamp, skipped.
pub const LONGEST: Duration = Duration::from_secs(14 * 86_400);

/// When WriftAI finished the prediction, as its body says: `updated_at` of a terminal
/// status (WriftAI has no `completed_at`; the last update of a finished prediction is its
/// end). `None` for an unfinished status or a missing or unreadable time.
pub fn completed_at(prediction: &Prediction) -> Option<OffsetDateTime> {
    if !prediction.status.is_terminal() {
        return None;
    }
    OffsetDateTime::parse(prediction.updated_at.as_deref()?, &Rfc3339).ok()
}

/// The time from `from` to `to`, when it is one a trip through this stack can take:
/// `from` up to [`SKEW`] after `to` counts as zero; later than that, or more than
/// [`LONGEST`] before, is no measurement.
pub fn between(from: OffsetDateTime, to: OffsetDateTime) -> Option<Duration> {
    match Duration::try_from(to - from) {
        Ok(lag) => (lag <= LONGEST).then_some(lag),
        Err(_) => Duration::try_from(from - to).ok().filter(|ahead| *ahead <= SKEW).map(|_| Duration::ZERO),
    }
}

/// The time since WriftAI finished `prediction`, at `now`, if it says a believable one.
pub fn since_completion(prediction: &Prediction, now: OffsetDateTime) -> Option<Duration> {
    between(completed_at(prediction)?, now)
}

/// The unix time in milliseconds SQS stamps a message with (`SentTimestamp`): SQS's own
/// clock, not the sender's word.
pub fn sent_at(sent_timestamp: &str) -> Option<OffsetDateTime> {
    let ms: i128 = sent_timestamp.trim().parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(ms.checked_mul(1_000_000)?).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    fn prediction(status: &str, updated_at: serde_json::Value) -> Prediction {
        let body = json!({"id": "0b2d5ae4-1b9a-4a5e-8d1e-3b6f1c2d9e70", "status": status, "updated_at": updated_at});
        Prediction::from_json(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_finished_predictions_completion_is_its_last_update() {
        let now = at("2026-12-04T03:00:02.5Z");
        let done = prediction("succeeded", json!("2026-12-04T03:00:00Z"));
        assert_eq!(since_completion(&done, now), Some(Duration::from_millis(2500)));
        assert_eq!(
            since_completion(&prediction("failed", json!("2026-12-04T03:00:02+00:00")), now),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn an_unfinished_status_or_a_missing_or_unreadable_time_is_no_completion() {
        let now = at("2026-12-04T03:00:00Z");
        for (status, updated_at) in [
            ("started", json!("2026-12-04T02:59:00Z")),
            ("succeeded", json!(null)),
            ("succeeded", json!("yesterday")),
            ("succeeded", json!("2026-12-04 02:59:00")),
            ("succeeded", json!("2026-13-45T99:00:00Z")),
        ] {
            assert_eq!(since_completion(&prediction(status, updated_at.clone()), now), None, "{status} {updated_at}");
        }
    }

    #[test]
    fn a_completion_in_the_future_past_the_skew_or_older_than_any_trip_is_skipped() {
        let now = at("2026-12-04T03:00:00Z");
        assert_eq!(between(at("2026-12-04T03:00:04Z"), now), Some(Duration::ZERO), "within the skew: no lag");
        assert_eq!(between(at("2026-12-04T03:00:06Z"), now), None);
        assert_eq!(between(at("2999-01-01T00:00:00Z"), now), None);
        assert_eq!(between(at("1970-01-01T00:00:00Z"), now), None);
        assert_eq!(between(now - LONGEST, now), Some(LONGEST));
        assert_eq!(between(now - LONGEST - Duration::from_secs(1), now), None);
    }

    #[test]
    fn sqs_sent_timestamps_are_unix_milliseconds() {
        assert_eq!(sent_at("1700000000123"), Some(at("2023-11-14T22:13:20.123Z")));
        for junk in ["", "-", "1e12", "99999999999999999999999999999999999999"] {
            assert_eq!(sent_at(junk), None, "{junk:?}");
        }
    }
}
