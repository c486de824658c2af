//! The prediction object, exactly as WRIFTAI.md describes it, and its model reference.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Starting,
    Started,
    Succeeded,
    Failed,
    Cancelled,
    Abandoned,
}

impl Status {
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_value(Value::String(raw.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Starting => "starting",
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled | Self::Abandoned)
    }
}

/// `owner/name` or `owner/name:version-number`, parsed as the official client does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelRef {
    pub owner: String,
    pub name: String,
    pub version_number: u64,
}

impl ModelRef {
    /// Without a version the real API picks the latest; the simulator has one: 1.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::unprocessable(format!("model {raw:?} is not in owner/name or owner/name:version-number format"))
        };
        let (owner, rest) = raw.split_once('/').ok_or_else(invalid)?;
        let (name, version) = match rest.split_once(':') {
            Some((name, v)) => (name, Some(v)),
            None => (rest, None),
        };
        if owner.is_empty() || name.is_empty() || name.contains('/') {
            return Err(invalid());
        }
        let version_number = match version {
            Some(v) => v.parse().map_err(|_| invalid())?,
            None => 1,
        };
        Ok(Self { owner: owner.to_owned(), name: name.to_owned(), version_number })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskError {
    pub source: &'static str,
    pub message: String,
    pub detail: Value,
}

/// The full prediction object, in WRIFTAI.md's field order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
    pub status: Status,
    /// Seconds as a decimal string: the official client types these as `str | None`;
    /// their exact format is not documented.
    pub setup_time: Option<String>,
    pub execution_time: Option<String>,
    pub model: ModelRef,
    pub input: Value,
    pub output: Value,
    pub error: Option<TaskError>,
    /// Not documented beyond "object or null": null until the prediction ends.
    pub metrics: Option<Value>,
    pub stream: bool,
}

/// A list item: the official client types list items as the prediction without its
/// details (`input`, `output`, `error`, `metrics`, `stream`).
#[derive(Serialize)]
pub struct Summary<'a> {
    pub id: &'a str,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub status: Status,
    pub setup_time: &'a Option<String>,
    pub execution_time: &'a Option<String>,
    pub model: &'a ModelRef,
}

impl Prediction {
    pub fn summary(&self) -> Summary<'_> {
        Summary {
            id: &self.id,
            created_at: &self.created_at,
            updated_at: &self.updated_at,
            status: self.status,
            setup_time: &self.setup_time,
            execution_time: &self.execution_time,
            model: &self.model,
        }
    }
}

/// Now as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    // Formatting a valid UTC time as RFC 3339 only fails for years outside 0..=9999.
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Seconds with millisecond precision, as a string.
pub fn seconds(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_reference_parses_with_or_without_a_version() {
        let m = ModelRef::parse("acme/echo").ok();
        assert_eq!(m.map(|m| (m.owner, m.name, m.version_number)), Some(("acme".into(), "echo".into(), 1)));
        let m = ModelRef::parse("acme/echo:7").ok();
        assert_eq!(m.map(|m| m.version_number), Some(7));
    }

    #[test]
    fn a_malformed_model_reference_is_refused() {
        for raw in ["echo", "/echo", "acme/", "acme/echo:", "acme/echo:x", "a/b/c"] {
            assert!(ModelRef::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in ["pending", "starting", "started", "succeeded", "failed", "cancelled", "abandoned"] {
            assert_eq!(Status::parse(s).map(Status::as_str), Some(s));
        }
        assert_eq!(Status::parse("done"), None);
    }
}
