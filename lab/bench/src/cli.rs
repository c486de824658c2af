//! The command line: one subcommand per measurement, its flags, and the function's
//! command after `--`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The harness behind `make bench` (lab/bench.sh). Each subcommand runs one measurement
/// and prints it as a JSON line; `report` turns the lines into markdown tables.
#[derive(Debug, Parser)]
#[command(name = "bench", arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Init, first and warm invocations and peak RSS of one function.
    Invoke(Invoke),
    /// Cold starts of two functions, alternated, on the null backend: `-- CMD_A :: CMD_B`.
    Init(Init),
    /// One reconciler pass over that many unfinished predictions, GETs counted on the way
    /// to the simulator.
    Reconcile(Reconcile),
    /// Peak RSS of the worker copying one output file of `--bytes` to the stack's
    /// bucket, against its figure after a 1 KiB copy.
    Copy(Copy),
    /// Receiver deliveries per second on the local stack.
    Load(Load),
    /// The markdown tables of one run's JSON lines, with the ratios.
    Report {
        /// The JSON lines (`.local/bench/results.jsonl`).
        file: String,
    },
}

/// What every measurement runs: the function, and where its output goes.
#[derive(Debug, Args)]
pub struct FunctionArgs {
    /// Where the function's output goes, one file per run.
    #[arg(long, value_name = "DIR", default_value = ".local/bench/logs")]
    pub log_dir: PathBuf,
    /// The function's command, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Invoke {
    /// The function's name in the results.
    #[arg(long, default_value = "function")]
    pub name: String,
    /// `null`: a backend that answers every DynamoDB and SQS call at once; `repeats`: the
    /// same, but every transaction fails its condition as a repeat of done work (each
    /// delivery a duplicate); `stack`: the local stack, from the environment.
    #[arg(long, value_enum, default_value_t = Backend::Null)]
    pub backend: Backend,
    /// What each invocation carries.
    #[arg(long, value_enum, default_value_t = Event::Http)]
    pub event: Event,
    /// Warm invocations.
    #[arg(long, default_value_t = 500)]
    pub n: usize,
    /// Cold starts, each with a first invocation; the medians are kept.
    #[arg(long, default_value_t = 1)]
    pub cold: usize,
    /// Records in each SQS event.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// The `sleep_ms` test hook each prediction's input asks for.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub sleep_ms: u64,
    /// Longest one invocation may take.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub budget_secs: u64,
    #[command(flatten)]
    pub function: FunctionArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Null,
    Repeats,
    Stack,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Null => "null",
            Backend::Repeats => "repeats",
            Backend::Stack => "stack",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Event {
    /// A signed webhook through the Function URL (the receiver).
    Http,
    /// A batch of SQS records (the worker).
    Sqs,
    /// The EventBridge schedule (the reconciler).
    Schedule,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Http => "http",
            Event::Sqs => "sqs",
            Event::Schedule => "schedule",
        }
    }
}

#[derive(Debug, Args)]
pub struct Copy {
    /// The function's name in the results.
    #[arg(long, default_value = "worker")]
    pub name: String,
    /// The size of the output file.
    #[arg(long, default_value_t = 50_000_000)]
    pub bytes: u64,
    /// Longest the copy may take.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub budget_secs: u64,
    #[command(flatten)]
    pub function: FunctionArgs,
}

#[derive(Debug, Args)]
pub struct Init {
    /// The first function's name in the results.
    #[arg(long, default_value = "a")]
    pub name: String,
    /// The second function's name in the results.
    #[arg(long, default_value = "b")]
    pub vs: String,
    /// Cold starts of each.
    #[arg(long, default_value_t = 31)]
    pub cold: usize,
    #[command(flatten)]
    pub function: FunctionArgs,
}

#[derive(Debug, Args)]
pub struct Reconcile {
    /// Unfinished predictions registered for the pass.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Longest one run may take.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub budget_secs: u64,
    /// Runs at most, each resuming where a run cut short by its deadline stopped.
    #[arg(long, default_value_t = 5)]
    pub max_runs: u64,
    #[command(flatten)]
    pub function: FunctionArgs,
}

#[derive(Debug, Args)]
pub struct Load {
    /// Function instances, each invoked one delivery at a time.
    #[arg(long, default_value_t = 4)]
    pub instances: usize,
    /// How long the load lasts.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Most deliveries (predictions registered up front).
    #[arg(long, default_value_t = 4000)]
    pub max: usize,
    #[command(flatten)]
    pub function: FunctionArgs,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(line: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(line.split_whitespace())).map(|cli| cli.command)
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    // Each shape of call lab/bench.sh makes.
    #[test]
    fn invoke_takes_its_flags_and_the_whole_command_after_the_separator() {
        let line = "invoke --name python-peer --backend null --n 1000 --cold 5 -- env A=b python -m awslambdaric x";
        let Ok(Command::Invoke(invoke)) = parse(line) else { panic!("not invoke: {line}") };
        assert_eq!(
            (invoke.name.as_str(), invoke.backend, invoke.n, invoke.cold),
            ("python-peer", Backend::Null, 1000, 5)
        );
        assert_eq!(invoke.function.command, ["env", "A=b", "python", "-m", "awslambdaric", "x"]);
        let line = "invoke --name w --backend null --event sqs --batch 1 --sleep-ms 200 --n 20 -- target/release/w";
        let Ok(Command::Invoke(invoke)) = parse(line) else { panic!("not invoke: {line}") };
        assert_eq!((invoke.event, invoke.batch, invoke.sleep_ms, invoke.n), (Event::Sqs, 1, 200, 20));
        let Ok(Command::Invoke(invoke)) = parse("invoke --backend stack --event schedule -- r") else { panic!() };
        assert_eq!((invoke.backend, invoke.event), (Backend::Stack, Event::Schedule));
    }

    #[test]
    fn invoke_defaults_to_the_null_backend_and_the_receiver_s_event() {
        let Ok(Command::Invoke(invoke)) = parse("invoke -- f") else { panic!("not invoke") };
        assert_eq!((invoke.name.as_str(), invoke.backend, invoke.event), ("function", Backend::Null, Event::Http));
        assert_eq!((invoke.n, invoke.cold, invoke.batch, invoke.sleep_ms, invoke.budget_secs), (500, 1, 10, 0, 30));
        assert_eq!(invoke.function.log_dir, PathBuf::from(".local/bench/logs"));
    }

    #[test]
    fn init_keeps_the_separator_between_its_two_commands() {
        let line = "init --name hello-world --vs receiver --cold 41 -- target/release/a :: target/release/b";
        let Ok(Command::Init(init)) = parse(line) else { panic!("not init: {line}") };
        assert_eq!((init.name.as_str(), init.vs.as_str(), init.cold), ("hello-world", "receiver", 41));
        assert_eq!(init.function.command, ["target/release/a", "::", "target/release/b"]);
    }

    #[test]
    fn reconcile_load_and_report_take_theirs() {
        let Ok(Command::Reconcile(reconcile)) = parse("reconcile --count 10000 -- r") else { panic!("not reconcile") };
        assert_eq!((reconcile.count, reconcile.budget_secs, reconcile.max_runs), (10_000, 900, 5));
        let line = "load --instances 2 --seconds 10 --max 20000 --log-dir /tmp/l -- target/release/receiver";
        let Ok(Command::Load(load)) = parse(line) else { panic!("not load: {line}") };
        assert_eq!((load.instances, load.seconds, load.max), (2, 10, 20_000));
        assert_eq!(load.function.log_dir, PathBuf::from("/tmp/l"));
        let Ok(Command::Report { file }) = parse("report .local/bench/results.jsonl") else { panic!("not report") };
        assert_eq!(file, ".local/bench/results.jsonl");
    }

    #[test]
    fn a_malformed_command_line_is_refused() {
        for line in [
            "",
            "invoke --n 5",
            "invoke --backend cloud -- f",
            "invoke --event kinesis -- f",
            "invoke --n many -- f",
            "invoke --unknown 1 -- f",
            "init --cold 3 f",
            "report",
            "measure -- f",
        ] {
            assert!(parse(line).is_err_and(|e| e.use_stderr()), "{line:?}");
        }
    }
}
