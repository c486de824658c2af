//! The `local-aws` command: wiring only; parses the command line and runs one loop until
//! SIGTERM or Ctrl-C.

use std::process::ExitCode;

use crate::cli::{self, Command};
use crate::error::Error;
use crate::{Shutdown, schedule::Schedule, sqs::Mapping};
use aws_config::BehaviorVersion;

/// The `local-aws` command: its command line read from the process, run to its end. The
/// binary of `wriftai-hooks-tools` runs it on a multi-threaded tokio runtime.
pub async fn main() -> ExitCode {
    devcli::init_tracing();
    match cli::from_process() {
        Ok(command) => devcli::exit("local-aws", run(command).await),
        Err(refused) => devcli::usage(refused),
    }
}

async fn run(command: Command) -> Result<(), Error> {
    let shutdown = Shutdown::listen()?;
    let work = async {
        match command {
            Command::Sqs(config) => {
                let aws = aws_config::defaults(BehaviorVersion::latest()).load().await;
                Mapping::connect(aws_sdk_sqs::Client::new(&aws), config).await?.run().await
            }
            Command::Schedule(config) => {
                let aws = aws_config::defaults(BehaviorVersion::latest()).load().await;
                let region = aws.region().map(ToString::to_string).unwrap_or_else(|| "us-east-1".to_owned());
                Schedule::new(&config, region)?.run().await
            }
        }
        Ok(())
    };
    tokio::select! {
        result = work => result,
        () = shutdown.wait() => Ok(()),
    }
}
