//! `local-aws`: the AWS glue between the functions, played against the local stack.
//!
//! - [`cli`]: the two subcommands and their flags.
//! - [`sqs`]: the SQS event source mapping (receive, invoke, delete what succeeded),
//!   with [`event`] building the records and [`batch`] applying the partial batch
//!   response rules.
//! - [`schedule`]: the EventBridge schedule that invokes the reconciler.
//! - [`invoke`]: the Lambda invoke API of `cargo lambda watch`.
//! - [`error`]: what can go wrong, and [`Shutdown`]: SIGTERM and Ctrl-C.

pub mod batch;
pub mod cli;
mod command;
pub mod error;
pub mod event;
pub mod invoke;
pub mod schedule;
pub mod sqs;

pub use command::main;
use error::Error;

/// SIGTERM or Ctrl-C. Listening starts when this is built, so a signal that arrives
/// while the queue's attributes are still being read is not missed.
pub struct Shutdown {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    pub fn listen() -> Result<Self, Error> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self { terminate: signal(SignalKind::terminate()).map_err(Error::Signal)? })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on the first signal. If Ctrl-C cannot be listened for, only SIGTERM
    /// stops the process: better than stopping at once.
    pub async fn wait(mut self) {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => tracing::info!("SIGTERM; stopping"),
            () = ctrl_c => tracing::info!("Ctrl-C; stopping"),
        }
        #[cfg(not(unix))]
        {
            ctrl_c.await;
            tracing::info!("Ctrl-C; stopping");
        }
    }
}
