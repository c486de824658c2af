//! What an operation can fail with: what failed, with its cause as a source, so one line
//! (`outer: cause: root cause`) tells the whole story.

use crate::config::ConfigError;
use crate::error::BoxError;
use crate::prediction::{PredictionId, Status};
use crate::wriftai::ApiError;

/// Why an operation failed. Each variant's message says what to do, where there is
/// something to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// A variable the operation reads is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A variable only some operations need is not set; `what` says what it holds.
    #[error("{var} is not set ({what})")]
    Unset {
        /// The variable.
        var: &'static str,
        /// What it holds.
        what: &'static str,
    },
    /// An AWS call of the operation's own failed; `doing` says which, and on what.
    #[error("{doing}")]
    Aws {
        /// What the call was doing, and on what.
        doing: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// The table, the queue or a secret.
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// The WriftAI client.
    #[error(transparent)]
    WriftAi(#[from] ApiError),
    /// WriftAI created a prediction and it could not be recorded as ours: its webhooks
    /// are refused until it is registered (`hooks register <id>`).
    #[error("prediction {id} was created but not recorded: register it")]
    NotRecorded {
        /// The prediction WriftAI created.
        id: PredictionId,
        /// Why it was not recorded.
        #[source]
        source: crate::Error,
    },
    /// A replay by filter without a filter: it would replay every event there is.
    #[error(
        "a replay by filter needs a filter (since, until, status, model, work): an empty one would replay everything"
    )]
    EmptyFilter,
    /// The prediction is not in the table.
    #[error("{0}: no such prediction in the table")]
    NoSuchPrediction(PredictionId),
    /// A replay without a status, of a prediction none of whose statuses has work.
    #[error("{0}: no status of it has work to replay")]
    NothingToReplay(PredictionId),
    /// A register refused: `why` says why.
    #[error("{id}: not registered: {why}")]
    NotRegistered {
        /// The prediction.
        id: PredictionId,
        /// Why.
        why: &'static str,
    },
    /// A forget refused, changing nothing: `why` says why, and what to do.
    #[error("{id}: not forgotten: {why}")]
    NotForgotten {
        /// The prediction.
        id: PredictionId,
        /// Why, and what to do.
        why: &'static str,
    },
    /// A replay of one status's work refused: `why` says why, and what to do.
    #[error("{id} {status}: {why}")]
    NotReplayed {
        /// The prediction.
        id: PredictionId,
        /// The status whose work was not replayed.
        status: Status,
        /// Why, and what to do.
        why: &'static str,
    },
}

impl OpsError {
    /// A failed AWS call: `doing` is what the operation was doing, and on what.
    pub(crate) fn aws(doing: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Aws { doing: doing.into(), source: source.into() }
    }
}

pub(crate) type Result<T, E = OpsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::chain;

    #[test]
    fn each_error_reads_with_its_causes() {
        let id = PredictionId::parse("8a4b1f2e-3c5d-4e6f-8a9b-0c1d2e3f4a5b").unwrap();
        let config = OpsError::from(ConfigError::Missing("TABLE_NAME"));
        assert_eq!(chain(&config), "environment variable TABLE_NAME is required");
        let aws = OpsError::aws("receiving from the DLQ", std::io::Error::other("connection refused"));
        assert_eq!(chain(&aws), "receiving from the DLQ: connection refused");
        let store = OpsError::from(crate::Error::store("Query", std::io::Error::other("throttled")));
        assert_eq!(chain(&store), "DynamoDB Query failed: throttled");
        assert_eq!(chain(&OpsError::NoSuchPrediction(id)), format!("{id}: no such prediction in the table"));
        let held =
            OpsError::NotReplayed { id, status: Status::Failed, why: "a run holds it now; try again when it ends" };
        assert_eq!(chain(&held), format!("{id} failed: a run holds it now; try again when it ends"));
    }
}
