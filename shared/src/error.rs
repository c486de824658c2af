//! The crate's error type. Each error says whether trying again can help; the receiver
//! maps that to a status code and the worker to a batch item failure.

use crate::prediction::PredictionId;

/// Any error, boxed: what your `handle` returns on failure, and what a function's `main`
/// returns (the same type as `lambda_runtime::Error`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A call to the stack's table, queue, bucket or secrets that failed, with its cause as
/// a source. Whatever it is, trying the work again later may pass; `Corrupt` will not.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A DynamoDB call failed: throttled, timed out, unreachable or refused.
    #[error("DynamoDB {op} failed")]
    Store {
        /// The operation.
        op: &'static str,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// An SQS call failed.
    #[error("SQS {op} failed")]
    Queue {
        /// The operation.
        op: &'static str,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// The bucket that holds records too large for an item failed.
    #[error("the bucket's {op} failed")]
    Bucket {
        /// The operation.
        op: &'static str,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// A webhook secret named by ARN could not be read from Secrets Manager.
    #[error("reading secret {arn} from Secrets Manager failed")]
    Secret {
        /// The secret's ARN.
        arn: String,
        /// The SDK's error.
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
    Corrupt {
        /// The item or object, cut to 80 characters.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Error {
    /// A failed DynamoDB call.
    pub(crate) fn store(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Store { op, source: source.into() }
    }

    /// A failed SQS call.
    pub(crate) fn queue(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Queue { op, source: source.into() }
    }

    /// A failed call to the bucket.
    pub(crate) fn bucket(op: &'static str, source: impl Into<BoxError>) -> Self {
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

/// A result whose error is an [`Error`].
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
