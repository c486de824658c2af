//! The crate's errors: why it cannot start, why an invocation failed, why a batch failed.

/// Why `local-aws` stops at start: what it needs is missing or cannot be had (clap
/// refuses a bad command line before). Each names what to fix, so a script's log says it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the attributes of {queue_url}")]
    QueueAttributes {
        queue_url: String,
        #[source]
        source: Box<aws_sdk_sqs::Error>,
    },
    #[error("{queue_url} has no QueueArn attribute")]
    NoQueueArn { queue_url: String },
    #[error("cannot build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot listen for SIGTERM")]
    Signal(#[source] std::io::Error),
}

/// Why an invocation failed as a whole. Lambda's event source mapping treats every one of
/// these alike: nothing is deleted and the whole batch comes back.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("cannot reach the invoke endpoint {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("no answer from the function within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the invoke request failed")]
    Transport(#[source] reqwest::Error),
    #[error("the function failed (HTTP {status}): {error_type}: {message}")]
    Function { status: u16, error_type: String, message: String },
    #[error("the invoke endpoint answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the function's answer is not JSON")]
    NotJson(#[source] serde_json::Error),
}

/// Why a batch counts as failed as a whole even though the function answered: AWS's
/// rules for a partial batch response it cannot trust.
#[derive(Debug, thiserror::Error)]
pub enum BatchFailure {
    #[error(transparent)]
    Invocation(#[from] InvokeError),
    #[error("the answer is not a batch response: {0}")]
    NotABatchResponse(String),
    #[error("batchItemFailures has an entry without a non-empty itemIdentifier")]
    EmptyIdentifier,
    #[error("batchItemFailures names {0:?}, which is not in the batch")]
    UnknownIdentifier(String),
}

#[cfg(test)]
mod tests {
    use devcli::chain;

    use super::*;

    #[test]
    fn a_chain_names_every_cause_on_one_line() {
        let io = std::io::Error::other("permission denied");
        let err = Error::Signal(io);
        assert_eq!(chain(&err), "cannot listen for SIGTERM: permission denied");
    }

    #[test]
    fn an_invocation_failure_reads_as_its_cause() {
        let err = BatchFailure::from(InvokeError::Status { status: 404, body: "no such function".into() });
        assert_eq!(err.to_string(), "the invoke endpoint answered HTTP 404: no such function");
    }
}
