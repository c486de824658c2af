//! `local-aws`: wiring only; parses the command line and runs one loop until SIGTERM or Ctrl-C.

use std::io::IsTerminal;
use std::process::ExitCode;

use aws_config::BehaviorVersion;
use local_aws::cli::{self, Command};
use local_aws::error::{Error, chain};
use local_aws::{Shutdown, schedule::Schedule, sqs::Mapping};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let command = match cli::from_process() {
        Ok(command) => command,
        // Exit 1 on a usage error, as before clap (whose own code is 2); 0 after --help.
        Err(usage) => {
            let _ = usage.print();
            return if usage.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    match run(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("local-aws: {}", chain(&error));
            ExitCode::FAILURE
        }
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
