//! `local-aws`: wiring only; parses the command line and runs one loop until SIGTERM or Ctrl-C.

use std::io::IsTerminal;
use std::process::ExitCode;

use aws_config::BehaviorVersion;
use local_aws::cli::{self, Command, USAGE};
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
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("local-aws: {}", chain(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let command = cli::parse(std::env::args().skip(1), |name| std::env::var(name).ok())?;
    let shutdown = Shutdown::listen()?;
    let work = async {
        match command {
            Command::Help => println!("{USAGE}"),
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
