//! `bench`: the harness behind `make bench` (see `lab/bench.sh`). Each subcommand
//! runs one measurement and prints it as a JSON line; `report` turns the lines into the
//! table in docs/benchmarks.md.
//!
//! - `invoke --name N --backend null|stack --event http|sqs [--n 500] [--batch 10]
//!   [--sleep-ms 0] -- CMD...`: init, first and warm invocations, peak RSS
//! - `init --name A --vs B --cold 31 -- CMD_A :: CMD_B`: cold starts of two functions,
//!   alternated, on the null backend
//! - `reconcile --count 10000 -- CMD...`: one reconciler pass over that many unfinished
//!   predictions, GETs counted on the way to the simulator
//! - `load --instances 4 --seconds 10 --max 4000 -- CMD...`: receiver deliveries per
//!   second on the local stack
//! - `report FILE`: the markdown tables, with the ratios

mod backend;
mod error;
mod events;
mod function;
mod report;
mod runtime;
mod scenarios;
mod stack;
mod stats;

use std::collections::HashMap;

use error::{Error, Result};

/// `--key value` options before `--`, and the function's command after it.
pub struct Args {
    options: HashMap<String, String>,
    pub command: Vec<String>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Self> {
        let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
        let mut options = HashMap::new();
        let mut it = args[..split].iter();
        while let Some(key) = it.next() {
            let key = key.strip_prefix("--").ok_or_else(|| Error::Usage(format!("unexpected {key}")))?;
            let value = it.next().ok_or_else(|| Error::Usage(format!("--{key} needs a value")))?;
            options.insert(key.to_owned(), value.clone());
        }
        Ok(Args { options, command: args.get(split + 1..).unwrap_or_default().to_vec() })
    }

    pub fn text(&self, key: &str, default: &str) -> String {
        self.options.get(key).cloned().unwrap_or_else(|| default.to_owned())
    }

    pub fn number(&self, key: &str, default: u64) -> Result<u64> {
        match self.options.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| Error::Usage(format!("--{key} must be a whole number, not {v:?}"))),
        }
    }
}

/// One thread: the harness serves one invocation at a time per function, and every
/// thread it woke would add its own hand-offs to what it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Err(err) = dispatch(&argv).await {
        eprintln!("bench: {err}");
        std::process::exit(1);
    }
}

async fn dispatch(argv: &[String]) -> Result<()> {
    let (sub, rest) =
        argv.split_first().ok_or_else(|| Error::Usage("bench invoke|init|reconcile|load|report ...".into()))?;
    if sub == "report" {
        let path = rest.first().ok_or_else(|| Error::Usage("bench report FILE".into()))?;
        print!("{}", report::render(path)?);
        return Ok(());
    }
    let args = Args::parse(rest)?;
    let line = match sub.as_str() {
        "invoke" => scenarios::invoke(&args).await?,
        "init" => scenarios::init(&args).await?,
        "reconcile" => scenarios::reconcile(&args).await?,
        "load" => scenarios::load(&args).await?,
        other => return Err(Error::Usage(format!("unknown subcommand {other}"))),
    };
    println!("{line}");
    Ok(())
}
