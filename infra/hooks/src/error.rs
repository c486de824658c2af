//! The CLI's error: what failed, with its cause as a source, so `hooks: ...` on stderr
//! tells the whole story on one line (`devcli::exit` prints the chain). An `Argument` exits
//! 2, as a command line clap refuses does; every other one exits 1.

use wriftai_hooks::config::ConfigError;
use wriftai_hooks::create::CreateError;
use wriftai_hooks::error::BoxError;
use wriftai_hooks::prediction::{PredictionId, Status};
use wriftai_hooks::wriftai::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument clap takes as text and the command reads: a prediction ID, a status,
    /// `--input`. `what` names it.
    #[error("{what}")]
    Argument {
        what: String,
        #[source]
        source: BoxError,
    },
    /// A variable the command reads is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A variable only some commands need is not set; `what` says what it holds.
    #[error("{var} is not set ({what})")]
    Unset { var: &'static str, what: &'static str },
    /// An AWS call of the command's own failed; `doing` says which, and on what.
    #[error("{doing}")]
    Aws {
        doing: String,
        #[source]
        source: BoxError,
    },
    /// The table, the queue or a secret, through `shared`.
    #[error(transparent)]
    Store(#[from] wriftai_hooks::Error),
    /// The WriftAI client.
    #[error(transparent)]
    WriftAi(#[from] ApiError),
    /// Creating a prediction: WriftAI refused it, or it was created and not recorded.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// WriftAI's answer to a create is not JSON.
    #[error("WriftAI's answer is not JSON")]
    Json(#[source] serde_json::Error),
    /// The body to sign could not be read.
    #[error("reading the body from stdin")]
    Stdin(#[source] std::io::Error),
    /// The prediction is not in the table.
    #[error("{0}: no such prediction in the table")]
    NoSuchPrediction(PredictionId),
    /// `replay` without `--status`, of a prediction none of whose statuses has work.
    #[error("{0}: no status of it has work to replay")]
    NothingToReplay(PredictionId),
    /// `register` refused: `why` says why.
    #[error("{id}: not registered: {why}")]
    NotRegistered { id: PredictionId, why: &'static str },
    /// `forget` refused, changing nothing: `why` says why, and what to do.
    #[error("{id}: not forgotten: {why}")]
    NotForgotten { id: PredictionId, why: &'static str },
    /// `replay` of one status's work refused: `why` says why, and what to do.
    #[error("{id} {status}: {why}")]
    NotReplayed { id: PredictionId, status: Status, why: &'static str },
}

impl Error {
    /// A bad argument, named by `what` (the flag and the value given).
    pub fn argument(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Argument { what: what.into(), source: source.into() }
    }

    /// A failed AWS call: `doing` is what the command was doing, and on what.
    pub fn aws(doing: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Aws { doing: doing.into(), source: source.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use devcli::chain;

    use super::*;

    #[test]
    fn each_error_reads_as_before_with_its_causes() {
        let id = PredictionId::parse("8a4b1f2e-3c5d-4e6f-8a9b-0c1d2e3f4a5b").unwrap();
        let bad_id = Error::argument("\"x\"", wriftai_hooks::prediction::InvalidId);
        assert_eq!(chain(&bad_id), "\"x\": not a prediction ID (expected a hyphenated UUID)");
        let config = Error::from(ConfigError::Missing("TABLE_NAME"));
        assert_eq!(chain(&config), "environment variable TABLE_NAME is required");
        let aws = Error::aws("receiving from the DLQ", std::io::Error::other("connection refused"));
        assert_eq!(chain(&aws), "receiving from the DLQ: connection refused");
        let store = Error::from(wriftai_hooks::Error::store("Query", std::io::Error::other("throttled")));
        assert_eq!(chain(&store), "DynamoDB Query failed: throttled");
        assert_eq!(chain(&Error::NoSuchPrediction(id)), format!("{id}: no such prediction in the table"));
        let held = Error::NotReplayed { id, status: Status::Failed, why: "a run holds it now; try again when it ends" };
        assert_eq!(chain(&held), format!("{id} failed: a run holds it now; try again when it ends"));
    }
}
