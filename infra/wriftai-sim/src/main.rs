//! `wriftai-sim`: starts the simulator on 127.0.0.1 and prints where it listens.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use wriftai_sim::{Config, start};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let config = match Config::from_process() {
        Ok(config) => config,
        // Exit 1 on a usage error, as before clap (whose own code is 2); 0 after --help.
        Err(usage) => {
            let _ = usage.print();
            return if usage.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One plain line, causes included, so a script's log says what to fix.
            let mut message = format!("wriftai-sim: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), wriftai_sim::StartError> {
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
