//! `bench`: the harness behind `make bench` (see `lab/bench.sh`). Each subcommand
//! runs one measurement and prints it as a JSON line; `report` turns the lines into the
//! table in docs/benchmarks.md. `bench --help` lists them and their flags.

mod backend;
mod cli;
mod error;
mod events;
mod function;
mod report;
mod runtime;
mod scenarios;
mod stack;
mod stats;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use error::Result;

/// One thread: the harness serves one invocation at a time per function, and every
/// thread it woke would add its own hand-offs to what it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => devcli::exit("bench", dispatch(cli.command).await),
        Err(refused) => devcli::usage(refused),
    }
}

async fn dispatch(command: Command) -> Result<()> {
    let line = match command {
        Command::Report { file } => {
            print!("{}", report::render(&file)?);
            return Ok(());
        }
        Command::Invoke(args) => scenarios::invoke(&args).await?,
        Command::Init(args) => scenarios::init(&args).await?,
        Command::Reconcile(args) => scenarios::reconcile(&args).await?,
        Command::Load(args) => scenarios::load(&args).await?,
        Command::Copy(args) => scenarios::copy(&args).await?,
    };
    println!("{line}");
    Ok(())
}
