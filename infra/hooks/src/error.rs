//! The CLI's error: a refused argument, the body it could not read, or the operation's
//! own failure ([`OpsError`]), its cause kept as a source so `hooks: ...` on stderr tells
//! the whole story on one line (`devcli::exit` prints the chain). An `Argument` exits 2,
//! as a command line clap refuses does; every other one exits 1.

use wriftai_hooks::BoxError;
use wriftai_hooks::ops::OpsError;

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
    /// The body to sign could not be read.
    #[error("reading the body from stdin")]
    Stdin(#[source] std::io::Error),
    /// The operation failed.
    #[error(transparent)]
    Ops(#[from] OpsError),
}

impl Error {
    /// A bad argument, named by `what` (the flag and the value given).
    pub fn argument(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Argument { what: what.into(), source: source.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use devcli::chain;
    use wriftai_hooks::{ConfigError, InvalidId};

    use super::*;

    #[test]
    fn each_error_reads_with_its_causes() {
        let bad_id = Error::argument("\"x\"", InvalidId);
        assert_eq!(chain(&bad_id), "\"x\": not a prediction ID (expected a hyphenated UUID)");
        let config = Error::from(OpsError::from(ConfigError::Missing("TABLE_NAME")));
        assert_eq!(chain(&config), "environment variable TABLE_NAME is required");
        let stdin = Error::Stdin(std::io::Error::other("closed"));
        assert_eq!(chain(&stdin), "reading the body from stdin: closed");
    }
}
