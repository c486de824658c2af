//! The crate's error type. Each error says whether trying again can help; the receiver
//! maps that to a status code and the worker to a batch item failure.

use crate::prediction::PredictionId;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A DynamoDB call failed: throttled, timed out, unreachable or refused.
    #[error("DynamoDB {op} failed")]
    Store {
        op: &'static str,
        #[source]
        source: BoxError,
    },
    /// An SQS call failed.
    #[error("SQS {op} failed")]
    Queue {
        op: &'static str,
        #[source]
        source: BoxError,
    },
    /// The bucket that holds records too large for an item failed.
    #[error("the bucket's {op} failed")]
    Bucket {
        op: &'static str,
        #[source]
        source: BoxError,
    },
    /// A webhook secret named by ARN could not be read from Secrets Manager.
    #[error("reading secret {arn} from Secrets Manager failed")]
    Secret {
        arn: String,
        #[source]
        source: BoxError,
    },
    /// Concurrent writes to one prediction kept colliding; a later attempt will pass.
    #[error("prediction {0} is being written concurrently")]
    Contended(PredictionId),
    /// The invocation's time ran out before the calls were done; a repeat finishes them.
    #[error("the invocation's time ran out")]
    OutOfTime,
    /// An item in the table does not have the shape this code writes.
    #[error("stored item {key} is malformed: {reason}")]
    Corrupt { key: String, reason: &'static str },
}

impl Error {
    pub fn store(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Store { op, source: source.into() }
    }

    pub fn queue(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Queue { op, source: source.into() }
    }

    pub fn bucket(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Bucket { op, source: source.into() }
    }

    /// Whether the same call may succeed later. Backend failures are treated as
    /// transient: the SDK already retried the ones it knows to be, and giving up on a
    /// webhook loses it for good.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store { .. }
            | Self::Queue { .. }
            | Self::Bucket { .. }
            | Self::Contended(_)
            | Self::Secret { .. }
            | Self::OutOfTime => true,
            Self::Corrupt { .. } => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its sources on one line (`outer: cause: root cause`), for logs and
/// operators: the whole story without a `Debug` dump of SDK internals.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
