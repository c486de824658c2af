//! The prediction object WriftAI sends, parsed once at the edge into typed values.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A WriftAI prediction ID. WriftAI issues UUIDs; anything else is not one of ours.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PredictionId(uuid::Uuid);

impl PredictionId {
    /// Its 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        // Only the hyphenated form WriftAI uses: one ID, one spelling, one table key.
        if raw.len() != 36 {
            return Err(InvalidId);
        }
        uuid::Uuid::try_parse(raw).map(Self).map_err(|_| InvalidId)
    }

    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a prediction ID (expected a hyphenated UUID)")]
pub struct InvalidId;

impl fmt::Display for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lowercase hyphenated, whatever case WriftAI sent: the table key is canonical.
        self.0.as_hyphenated().fmt(f)
    }
}

impl fmt::Debug for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for PredictionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PredictionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Longest status string we record. WriftAI's are at most 9 characters; the cap keeps a
/// hostile sender from writing arbitrary keys.
pub const MAX_STATUS_LEN: usize = 32;

/// A prediction's status. `Unknown` keeps a status this code does not know yet: it is
/// recorded, answered 2xx, and never acted on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Starting,
    Started,
    Succeeded,
    Failed,
    Cancelled,
    Abandoned,
    Unknown(String),
}

impl Status {
    pub fn parse(raw: &str) -> Result<Self, InvalidStatus> {
        Ok(match raw {
            "pending" => Self::Pending,
            "starting" => Self::Starting,
            "started" => Self::Started,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "abandoned" => Self::Abandoned,
            other if other.is_empty() || other.len() > MAX_STATUS_LEN => return Err(InvalidStatus),
            other if !other.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => {
                return Err(InvalidStatus);
            }
            other => Self::Unknown(other.to_owned()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Starting => "starting",
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
            Self::Unknown(raw) => raw,
        }
    }

    /// Position in the life of a prediction: pending < starting < started < terminal.
    /// All terminal statuses share one rank, so the first terminal status seen absorbs
    /// every later one. `None` for an unknown status: it has no place in the order.
    pub fn rank(&self) -> Option<u8> {
        match self {
            Self::Pending => Some(0),
            Self::Starting => Some(1),
            Self::Started => Some(2),
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Abandoned => Some(3),
            Self::Unknown(_) => None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.rank() == Some(3)
    }

    /// The statuses WriftAI documents, in order.
    pub const KNOWN: [Status; 7] =
        [Self::Pending, Self::Starting, Self::Started, Self::Succeeded, Self::Failed, Self::Cancelled, Self::Abandoned];
}

#[derive(Debug, thiserror::Error)]
#[error("not a status (1 to {MAX_STATUS_LEN} letters, digits, '_' or '-')")]
pub struct InvalidStatus;

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The prediction object of WRIFTAI.md. Fields WriftAI adds later are ignored here and
/// kept in the raw body that travels to the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub id: PredictionId,
    pub status: Status,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub model: Option<ModelRef>,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub output: Value,
    #[serde(default)]
    pub error: Option<PredictionError>,
    /// Units are not documented; kept as sent.
    #[serde(default)]
    pub setup_time: Option<Value>,
    #[serde(default)]
    pub execution_time: Option<Value>,
    #[serde(default)]
    pub metrics: Option<Value>,
    #[serde(default)]
    pub stream: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub owner: String,
    pub name: String,
    /// A number in practice; kept as sent since the contract does not fix its type.
    #[serde(default)]
    pub version_number: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionError {
    /// `internal` or `external`.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub detail: Option<Value>,
}

impl Prediction {
    /// Parses a webhook body. Anything but a JSON object with a UUID `id` and a string
    /// `status` is rejected, with serde's message saying where.
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "a1b2c3d4-5678-9abc-def0-1234567890ab";

    #[test]
    fn the_announcement_payload_parses_with_unknown_fields() {
        let body = format!(
            r#"{{"id":"{ID}","status":"succeeded","model":{{"owner":"o","name":"m"}},
               "input":{{"prompt":"p"}},"output":"text","brand_new_field":[1,2]}}"#
        );
        let p = Prediction::from_json(body.as_bytes()).unwrap();
        assert_eq!(p.id.to_string(), ID);
        assert_eq!(p.status, Status::Succeeded);
        assert_eq!(p.output, Value::String("text".into()));
        assert_eq!(p.model.unwrap().name, "m");
    }

    #[test]
    fn a_failed_prediction_carries_its_error() {
        let body = format!(
            r#"{{"id":"{ID}","status":"failed","output":null,
               "error":{{"source":"internal","message":"boom","detail":{{"k":1}}}}}}"#
        );
        let p = Prediction::from_json(body.as_bytes()).unwrap();
        assert_eq!(p.output, Value::Null);
        assert_eq!(p.error.unwrap().message.as_deref(), Some("boom"));
    }

    #[test]
    fn ids_are_canonicalised_to_lowercase() {
        let id = PredictionId::parse(&ID.to_uppercase()).unwrap();
        assert_eq!(id.to_string(), ID);
    }

    #[test]
    fn ids_that_are_not_hyphenated_uuids_are_refused() {
        for raw in [
            "",
            "42",
            "a1b2c3d45678-9abc-def0-1234567890ab",
            &ID.replace('-', ""),
            "{a1b2c3d4-5678-9abc-def0-1234567890ab}",
        ] {
            assert!(PredictionId::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn missing_id_or_status_is_an_error() {
        assert!(Prediction::from_json(br#"{"status":"pending"}"#).is_err());
        assert!(Prediction::from_json(format!(r#"{{"id":"{ID}"}}"#).as_bytes()).is_err());
        assert!(Prediction::from_json(format!(r#"{{"id":"{ID}","status":null}}"#).as_bytes()).is_err());
        assert!(Prediction::from_json(format!(r#"{{"id":"{ID}","status":3}}"#).as_bytes()).is_err());
    }

    #[test]
    fn an_unknown_status_is_kept_but_has_no_rank() {
        let s = Status::parse("queued_for_gpu").unwrap();
        assert_eq!(s, Status::Unknown("queued_for_gpu".into()));
        assert_eq!(s.rank(), None);
        assert!(!s.is_terminal());
    }

    #[test]
    fn status_strings_that_could_be_hostile_keys_are_refused() {
        for raw in ["", "a#b", "EVENT#x", &"x".repeat(MAX_STATUS_LEN + 1), "spa ce"] {
            assert!(Status::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn statuses_are_ordered_and_terminal_ones_share_a_rank() {
        let ranks: Vec<_> = Status::KNOWN.iter().map(|s| s.rank().unwrap()).collect();
        assert_eq!(ranks, [0, 1, 2, 3, 3, 3, 3]);
        assert!(Status::KNOWN.iter().all(|s| Status::parse(s.as_str()).unwrap() == *s));
    }
}
