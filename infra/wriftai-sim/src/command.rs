//! The `wriftai-sim` command: starts the simulator on 127.0.0.1 and prints where it
//! listens.

use std::io::Write;
use std::process::ExitCode;

use crate::{Config, start};

/// The `wriftai-sim` command: its command line read from the process, run to its end. The
/// binary of `wriftai-hooks-tools` runs it on a multi-threaded tokio runtime.
pub async fn main() -> ExitCode {
    devcli::init_tracing();
    match crate::flags::from_process() {
        Ok(config) => devcli::exit("wriftai-sim", run(config).await),
        Err(refused) => devcli::usage(refused),
    }
}

async fn run(config: Config) -> Result<(), crate::StartError> {
    let running = start(config).await?;
    // The first stdout line is the contract with scripts: they read the port from it.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", running.base_url)?;
    stdout.flush()?;
    tracing::info!(url = %running.base_url, "wriftai-sim listening");
    tokio::select! {
        result = running.wait() => result,
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; stopping");
            Ok(())
        }
    }
}
