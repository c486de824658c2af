//! The messages on the work queue: a unit of work to run, or, from an unsigned
//! delivery, a prediction to check with WriftAI.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::prediction::{PredictionId, Status};

/// Largest SQS message body (1 MiB), less room for the envelope around the payload.
pub const QUEUE_INLINE_LIMIT: usize = 1_048_576 - 1_024;

#[derive(Debug, Deserialize)]
pub struct WorkMessage {
    pub prediction_id: PredictionId,
    pub status: Status,
    /// The prediction as delivered, or `None` when it was too large to carry: then the
    /// worker fetches it with `GET /v1/predictions/{id}`.
    #[serde(default)]
    pub payload: Option<Box<RawValue>>,
}

/// A message on the work queue, as the worker reads it.
#[derive(Debug)]
pub enum Message {
    /// Run the work of one (prediction, status).
    Work(WorkMessage),
    /// Ask WriftAI for the prediction and record what it says, as the reconciler does:
    /// an unsigned delivery, which anyone could have written, asks for no more.
    Check { check: PredictionId },
}

impl Message {
    /// Reads a body. Not an untagged enum: serde cannot keep a raw payload inside one.
    pub fn decode(body: &str) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Check {
            check: PredictionId,
        }
        match serde_json::from_str::<Check>(body) {
            Ok(Check { check }) => Ok(Self::Check { check }),
            Err(_) => WorkMessage::decode(body).map(Self::Work),
        }
    }

    /// The body of a check of prediction `id`.
    pub fn check(id: PredictionId) -> String {
        format!(r#"{{"check":"{id}"}}"#)
    }
}

impl WorkMessage {
    /// Builds the message body around the raw payload without re-serialising it: the
    /// payload was parsed as JSON already, and the ID and status are plain tokens.
    pub fn encode(id: PredictionId, status: &Status, payload: &str) -> String {
        let payload = if payload.len() <= QUEUE_INLINE_LIMIT && sqs_accepts(payload) { payload } else { "null" };
        format!(r#"{{"prediction_id":"{id}","status":"{status}","payload":{payload}}}"#)
    }

    pub fn decode(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// SQS refuses U+FFFE and U+FFFF in a body (and control characters, which valid JSON
/// cannot hold raw). Such a payload travels by reference instead.
fn sqs_accepts(payload: &str) -> bool {
    !payload.contains(['\u{FFFE}', '\u{FFFF}'])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "a1b2c3d4-5678-9abc-def0-1234567890ab";

    #[test]
    fn a_message_round_trips_with_its_payload_untouched() {
        let id = PredictionId::parse(ID).unwrap();
        let payload = r#"{"id":"a1b2c3d4-5678-9abc-def0-1234567890ab", "status":"succeeded","output":[1, 2.50]}"#;
        let msg = WorkMessage::decode(&WorkMessage::encode(id, &Status::Succeeded, payload)).unwrap();
        assert_eq!(msg.prediction_id, id);
        assert_eq!(msg.status, Status::Succeeded);
        assert_eq!(msg.payload.unwrap().get(), payload);
    }

    #[test]
    fn a_check_is_told_from_a_unit_of_work() {
        let id = PredictionId::parse(ID).unwrap();
        assert!(matches!(Message::decode(&Message::check(id)).unwrap(), Message::Check { check } if check == id));
        let work = WorkMessage::encode(id, &Status::Failed, "{}");
        assert!(matches!(Message::decode(&work).unwrap(), Message::Work(m) if m.status == Status::Failed));
        assert!(Message::decode(r#"{"check":"not an id"}"#).is_err());
    }

    #[test]
    fn a_payload_too_large_for_sqs_travels_by_reference() {
        let id = PredictionId::parse(ID).unwrap();
        let payload = format!(r#"{{"output":"{}"}}"#, "x".repeat(QUEUE_INLINE_LIMIT));
        let body = WorkMessage::encode(id, &Status::Succeeded, &payload);
        assert!(body.len() < 200);
        assert!(WorkMessage::decode(&body).unwrap().payload.is_none());
    }

    #[test]
    fn a_payload_sqs_would_refuse_travels_by_reference() {
        let id = PredictionId::parse(ID).unwrap();
        let body = WorkMessage::encode(id, &Status::Succeeded, "{\"output\":\"\u{FFFF}\"}");
        assert!(WorkMessage::decode(&body).unwrap().payload.is_none());
    }
}
