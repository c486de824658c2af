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

    /// Parses an ID as WriftAI writes it: a hyphenated UUID, in either case.
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        // Only the hyphenated form WriftAI uses: one ID, one spelling, one table key.
        if raw.len() != 36 {
            return Err(InvalidId);
        }
        uuid::Uuid::try_parse(raw).map(Self).map_err(|_| InvalidId)
    }

    /// A fresh random ID, for tests.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

/// A string that is not a prediction ID.
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
/// recorded, answered 2xx, and never acted on. Match with a wildcard arm: WriftAI may add
/// statuses, and a release may name them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Created, waiting for a machine.
    Pending,
    /// Its model is being set up.
    Starting,
    /// Running.
    Started,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error (`output` null, `error` set).
    Failed,
    /// Cancelled at someone's request.
    Cancelled,
    /// Given up on by WriftAI (past its 30-minute limit, say).
    Abandoned,
    /// A status WriftAI sent that this version does not know: kept as sent.
    Unknown(String),
}

impl Status {
    /// A status as WriftAI writes it; any other short word of letters, digits, `_` and
    /// `-` is [`Status::Unknown`].
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

    /// The status as WriftAI writes it.
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

    /// Whether the prediction is finished: succeeded, failed, cancelled or abandoned.
    pub fn is_terminal(&self) -> bool {
        self.rank() == Some(3)
    }

    /// The statuses WriftAI documents, in order.
    pub const KNOWN: [Status; 7] =
        [Self::Pending, Self::Starting, Self::Started, Self::Succeeded, Self::Failed, Self::Cancelled, Self::Abandoned];
}

/// A string that cannot be a status.
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

/// A WriftAI prediction, as its webhook or its API sent it. Fields WriftAI adds later
/// are ignored here and kept in the raw body that travels to the worker.
///
/// Every field but `id` and `status` is written by whoever wrote the body: on a stack
/// that checks signatures that is WriftAI, and still the model's output, its input and
/// its error are as their authors made them. Check what you use (a URL in `output`
/// especially: [`examples::copy_files`](crate::examples::copy_files) fetches only what
/// the URL checks allow).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Prediction {
    /// Its ID, which the receiver checked is one of ours.
    pub id: PredictionId,
    /// Its status, which the worker acts on (`ACT_ON_STATUSES`).
    pub status: Status,
    /// When it was created (RFC 3339), as WriftAI wrote it.
    #[serde(default)]
    pub created_at: Option<String>,
    /// When its status last changed (RFC 3339), as WriftAI wrote it.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The model it ran.
    #[serde(default)]
    pub model: Option<ModelRef>,
    /// Its input, as it was created with.
    #[serde(default)]
    pub input: Value,
    /// Its output: any JSON, null unless it succeeded.
    #[serde(default)]
    pub output: Value,
    /// Why it failed, when it did.
    #[serde(default)]
    pub error: Option<PredictionError>,
    /// How long its setup took. Units are not documented; kept as sent.
    #[serde(default)]
    pub setup_time: Option<Value>,
    /// How long it ran. Units are not documented; kept as sent.
    #[serde(default)]
    pub execution_time: Option<Value>,
    /// WriftAI's metrics of the run, as sent.
    #[serde(default)]
    pub metrics: Option<Value>,
    /// Whether its output was streamed.
    #[serde(default)]
    pub stream: Option<bool>,
}

/// The model a prediction ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelRef {
    /// Its owner.
    pub owner: String,
    /// Its name.
    pub name: String,
    /// Its version: a number in practice; kept as sent since the contract does not fix
    /// its type.
    #[serde(default)]
    pub version_number: Option<Value>,
}

/// Why a prediction failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PredictionError {
    /// `internal` (WriftAI's side) or `external` (the input, the model).
    #[serde(default)]
    pub source: Option<String>,
    /// What happened, in words.
    #[serde(default)]
    pub message: Option<String>,
    /// More, as WriftAI sent it.
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
