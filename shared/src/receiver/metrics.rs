//! The receiver's metrics of one delivery that passed the checks: what became of it,
//! and for the first delivery of a finished status how late it came.

use crate::ingest::Ingested;
use crate::metrics::Metrics;
use crate::prediction::Prediction;
use crate::receiver::checks::Checks;
use time::OffsetDateTime;

/// The counts of one delivery that passed the checks, answered at `answered`; for the
/// first delivery of a finished status, how long after WriftAI finished it that was
/// (`CompletionToReceipt`). A repeat's lag would be WriftAI's retry, not ours.
pub(crate) fn delivery_metrics(
    checks: &Checks,
    prediction: &Prediction,
    outcome: &crate::Result<Ingested>,
    answered: OffsetDateTime,
) -> Metrics {
    // A dimension value is a metric of its own, billed: a status the body made up (any
    // string, on an unsigned stack from anyone) counts as `other`, not as itself.
    let status = if prediction.status.rank().is_some() { prediction.status.as_str() } else { "other" };
    let mut metrics = Metrics::new("receiver").status(status);
    if let Ok(Ingested::Recorded { .. }) = outcome
        && let Some(lag) = crate::lag::since_completion(prediction, answered)
    {
        metrics.duration("CompletionToReceipt", lag);
    }
    metrics.count("Received", 1);
    if checks.verifier.is_none() {
        // ALLOW_UNSIGNED_WEBHOOKS: counted only then, so signed stacks write no zeros.
        metrics.count("Unsigned", 1);
    }
    match outcome {
        Ok(Ingested::Recorded { enqueued }) => metrics.count("Recorded", 1).count("Enqueued", u64::from(*enqueued)),
        Ok(Ingested::Duplicate { enqueued }) => {
            metrics.count("Duplicate", 1).count("EnqueueRetried", u64::from(*enqueued))
        }
        Ok(Ingested::OutOfOrder) => metrics.count("OutOfOrder", 1),
        // A `pending` that says what the registration says: not a repeat.
        Ok(Ingested::Known) => metrics.count("Known", 1),
        Ok(Ingested::UnknownPrediction) => metrics.count("UnknownPrediction", 1),
        // Erased by `hooks forget`: answered 200 so WriftAI stops, and nothing kept.
        Ok(Ingested::Forgotten) => metrics.count("Forgotten", 1),
        Ok(Ingested::Triggered { enqueued }) => metrics.count("CheckEnqueued", u64::from(*enqueued)),
        Ok(Ingested::TooSoon { .. }) => metrics.count("CheckTooSoon", 1),
        Err(_) => metrics.count("BackendErrors", 1),
    };
    metrics
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::prediction::PredictionId;
    use crate::receiver::signature::{DEFAULT_TOLERANCE, Verifier};
    use serde_json::json;

    use super::*;

    fn signed() -> Checks {
        Checks { verifier: Verifier::new(["s3cret"], DEFAULT_TOLERANCE), ..Checks::default() }
    }

    fn body(id: PredictionId, status: &str) -> String {
        format!(r#"{{"id":"{id}","status":"{status}"}}"#)
    }

    fn finished(updated_at: &str) -> Prediction {
        let body = json!({"id": PredictionId::random().to_string(), "status": "succeeded", "updated_at": updated_at});
        Prediction::from_json(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_delivery_accepted_without_a_signature_check_is_counted_as_unsigned() {
        let outcome = Ok(Ingested::Recorded { enqueued: true });
        let prediction = Prediction::from_json(body(PredictionId::random(), "succeeded").as_bytes()).unwrap();
        let now = crate::clock::now();
        let unsigned = delivery_metrics(&Checks::default(), &prediction, &outcome, now).document(0);
        assert_eq!((&unsigned["Unsigned"], &unsigned["Received"]), (&serde_json::json!(1), &serde_json::json!(1)));
        let counted = delivery_metrics(&signed(), &prediction, &outcome, now).document(0);
        assert!(counted.get("Unsigned").is_none(), "{counted}");
    }

    #[test]
    fn the_first_delivery_of_a_finished_status_measures_how_long_after_completion_it_was_answered() {
        let answered = OffsetDateTime::from_unix_timestamp(1_796_000_002).unwrap() + Duration::from_millis(250);
        let prediction = finished("2026-11-30T00:53:20Z"); // 1_796_000_000
        let doc =
            delivery_metrics(&signed(), &prediction, &Ok(Ingested::Recorded { enqueued: true }), answered).document(0);
        assert_eq!(doc["CompletionToReceipt"], json!([2250.0]));
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][3],
            json!({"Name": "CompletionToReceipt", "Unit": "Milliseconds"})
        );
    }

    #[test]
    fn a_repeat_an_unfinished_status_or_a_completion_nobody_could_have_had_measures_no_lag() {
        let answered = OffsetDateTime::from_unix_timestamp(1_796_000_002).unwrap();
        let recorded = Ok(Ingested::Recorded { enqueued: true });
        let started = Prediction::from_json(body(PredictionId::random(), "started").as_bytes()).unwrap();
        let cases = [
            (finished("2026-11-30T00:53:20Z"), Ok(Ingested::Duplicate { enqueued: false })),
            (finished("2026-11-30T00:53:20Z"), Ok(Ingested::OutOfOrder)),
            (started, recorded),
            (finished("2999-01-01T00:00:00Z"), Ok(Ingested::Recorded { enqueued: true })),
            (finished("1970-01-01T00:00:00Z"), Ok(Ingested::Recorded { enqueued: true })),
            (finished("not a time"), Ok(Ingested::Recorded { enqueued: true })),
        ];
        for (prediction, outcome) in cases {
            let doc = delivery_metrics(&signed(), &prediction, &outcome, answered).document(0);
            assert!(doc.get("CompletionToReceipt").is_none(), "{outcome:?} {:?}: {doc}", prediction.updated_at);
        }
    }

    #[test]
    fn a_status_nobody_defined_is_counted_under_other_not_as_itself() {
        let made_up =
            Prediction::from_json(br#"{"id":"a1b2c3d4-5678-9abc-def0-1234567890ab","status":"x_1"}"#).unwrap();
        let doc = delivery_metrics(&Checks::default(), &made_up, &Ok(Ingested::OutOfOrder), crate::clock::now());
        assert_eq!(doc.document(0)["Status"], "other");
    }
}
