//! The command line: two subcommands, their flags, and the environment variables behind them.

use std::ffi::OsString;
use std::time::Duration;

use clap::builder::NonEmptyStringValueParser;
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use devcli::{blank_is_unset, number};

/// Plays the AWS glue the local stack lacks: the SQS event source mapping and the
/// reconciler's schedule.
#[derive(Debug, Parser)]
#[command(
    name = "local-aws",
    arg_required_else_help = true,
    after_help = "AWS_ENDPOINT_URL_SQS, AWS_REGION and credentials are read as by any AWS SDK."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// The SQS event source mapping: receive, invoke the function, delete what succeeded.
    Sqs(SqsConfig),
    /// The EventBridge schedule: invoke the function every period, one run at a time.
    Schedule(ScheduleConfig),
}

/// The event source mapping's settings, named as on `AWS::Lambda::EventSourceMapping`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SqsConfig {
    /// The queue to poll.
    #[arg(long, env = "QUEUE_URL", value_name = "URL", value_parser = NonEmptyStringValueParser::new())]
    pub queue_url: String,
    /// The function to invoke.
    #[arg(long, default_value = "worker", value_parser = function)]
    pub function: String,
    /// The invoke API's base URL, kept without a trailing slash.
    #[arg(
        long,
        env = "LAMBDA_INVOKE_URL",
        value_name = "URL",
        default_value = DEFAULT_INVOKE_URL,
        value_parser = invoke_url
    )]
    pub invoke_url: String,
    /// Most messages in one invocation.
    // Negative numbers reach the parser, which says what the flag takes.
    #[arg(long, value_name = "N", default_value = "10", value_parser = batch_size, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// How long a batch may gather messages (MaximumBatchingWindowInSeconds, in ms).
    #[arg(
        long = "window-ms",
        value_name = "MS",
        default_value = "0",
        value_parser = window,
        allow_negative_numbers = true
    )]
    pub window: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ScheduleConfig {
    /// The function to invoke.
    #[arg(long, default_value = "reconciler", value_parser = function)]
    pub function: String,
    /// The period; the first run waits one period.
    #[arg(
        long = "every-secs",
        env = "RECONCILE_EVERY_SECS",
        value_name = "SECS",
        default_value = "60",
        value_parser = every,
        allow_negative_numbers = true
    )]
    pub every: Duration,
    /// The invoke API's base URL, kept without a trailing slash.
    #[arg(
        long,
        env = "LAMBDA_INVOKE_URL",
        value_name = "URL",
        default_value = DEFAULT_INVOKE_URL,
        value_parser = invoke_url
    )]
    pub invoke_url: String,
}

const DEFAULT_INVOKE_URL: &str = "http://127.0.0.1:9000";

/// Reads the process's command line, falling back to the environment for the flags that
/// have a variable (flags win).
pub fn from_process() -> Result<Command, clap::Error> {
    parse(blank_is_unset(Cli::command(), |name| std::env::var_os(name)), std::env::args_os())
}

/// Parses `args` with `command` (this CLI, its variables as read), then checks what clap
/// cannot say of one flag alone.
fn parse(mut command: clap::Command, args: impl IntoIterator<Item = OsString>) -> Result<Command, clap::Error> {
    let matches = command.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    // Lambda refuses the same combination: without a window, one receive of at most 10
    // messages is all a batch can be.
    if let Command::Sqs(config) = &cli.command
        && config.batch_size > 10
        && config.window.is_zero()
    {
        let message = "--batch-size over 10 needs --window-ms of at least 1";
        // Told with the usage of `sqs`, whose flags they are.
        let mut sqs = command.find_subcommand("sqs").cloned().unwrap_or(command);
        return Err(sqs.error(ErrorKind::ArgumentConflict, message));
    }
    Ok(cli.command)
}

fn batch_size(raw: &str) -> Result<usize, String> {
    number(raw, 1..=10_000, "a whole number from 1 to 10000")
}

fn window(raw: &str) -> Result<Duration, String> {
    number(raw, 0..=300_000, "milliseconds from 0 to 300000").map(Duration::from_millis)
}

fn every(raw: &str) -> Result<Duration, String> {
    number(raw, 1..=86_400, "whole seconds from 1 to 86400").map(Duration::from_secs)
}

/// The name becomes a URL path segment, so it is held to Lambda's own naming rule.
fn function(name: &str) -> Result<String, String> {
    let valid =
        (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid { Ok(name.to_owned()) } else { Err("must be a Lambda function name (letters, digits, - and _)".into()) }
}

fn invoke_url(value: &str) -> Result<String, String> {
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(value.trim_end_matches('/').to_owned())
        }
        _ => Err("must be an http(s) URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    /// Parses as `from_process` does, with `env` for the process's variables. clap reads
    /// those as the command is built, so each flag's variable is replaced by a default
    /// holding the test's value, or by nothing; a flag still wins over it.
    fn parse_with(args: &[&str], env: &[(&str, &'static str)]) -> Result<Command, clap::Error> {
        let value = |name: &OsStr| env.iter().find(|(n, _)| OsStr::new(n) == name).map(|(_, v)| *v);
        let command = blank_is_unset(Cli::command(), |name| value(name).map(OsString::from)).mut_subcommands(|sub| {
            sub.mut_args(|arg| match arg.get_env().and_then(value) {
                // A value from a variable satisfies `required`, as in clap's own env handling.
                Some(v) => arg.env(None).default_value(v).required(false),
                None => arg.env(None),
            })
        });
        parse(command, std::iter::once("local-aws").chain(args.iter().copied()).map(OsString::from))
    }

    fn kind(result: Result<Command, clap::Error>) -> Option<ErrorKind> {
        result.err().map(|e| e.kind())
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sqs_takes_the_queue_from_the_environment_and_lambda_defaults_for_the_rest() {
        let command = parse_with(&["sqs"], &[("QUEUE_URL", "http://q/1/work")]);
        let expected = SqsConfig {
            queue_url: "http://q/1/work".into(),
            function: "worker".into(),
            invoke_url: "http://127.0.0.1:9000".into(),
            batch_size: 10,
            window: Duration::ZERO,
        };
        assert_eq!(command.ok(), Some(Command::Sqs(expected)));
    }

    #[test]
    fn flags_win_over_the_environment() {
        let command = parse_with(
            &["sqs", "--queue-url", "http://q/2", "--invoke-url=http://127.0.0.1:9100/", "--batch-size", "3"],
            &[("QUEUE_URL", "http://q/1"), ("LAMBDA_INVOKE_URL", "http://127.0.0.1:1")],
        );
        let Ok(Command::Sqs(config)) = command else { panic!("not sqs: {command:?}") };
        assert_eq!(config.queue_url, "http://q/2");
        assert_eq!(config.invoke_url, "http://127.0.0.1:9100");
        assert_eq!(config.batch_size, 3);
    }

    #[test]
    fn the_invoke_url_comes_from_the_environment_without_its_trailing_slash() {
        let command = parse_with(&["schedule"], &[("LAMBDA_INVOKE_URL", "http://127.0.0.1:9100/")]);
        let Ok(Command::Schedule(config)) = command else { panic!("not schedule: {command:?}") };
        assert_eq!(config.invoke_url, "http://127.0.0.1:9100");
    }

    #[test]
    fn sqs_without_a_queue_url_is_refused() {
        assert_eq!(kind(parse_with(&["sqs"], &[])), Some(ErrorKind::MissingRequiredArgument));
        assert_eq!(kind(parse_with(&["sqs"], &[("QUEUE_URL", " ")])), Some(ErrorKind::MissingRequiredArgument));
        assert_eq!(kind(parse_with(&["sqs", "--queue-url", ""], &[])), Some(ErrorKind::InvalidValue));
    }

    #[test]
    fn a_blank_variable_counts_as_unset() {
        let env = [("RECONCILE_EVERY_SECS", ""), ("LAMBDA_INVOKE_URL", " ")];
        let Ok(Command::Schedule(config)) = parse_with(&["schedule"], &env) else { panic!("refused") };
        assert_eq!((config.every, config.invoke_url.as_str()), (Duration::from_secs(60), DEFAULT_INVOKE_URL));
    }

    #[test]
    fn a_batch_over_ten_without_a_window_is_refused_like_lambda_does() {
        let args = ["sqs", "--queue-url", "q", "--batch-size", "11"];
        let refused = parse_with(&args, &[]).expect_err("accepted");
        assert_eq!(refused.kind(), ErrorKind::ArgumentConflict);
        assert!(refused.to_string().contains("--batch-size over 10 needs --window-ms of at least 1"), "{refused}");
        let with_window = ["sqs", "--queue-url", "q", "--batch-size", "11", "--window-ms", "500"];
        assert!(matches!(parse_with(&with_window, &[]), Ok(Command::Sqs(_))));
    }

    #[test]
    fn the_calls_infra_glue_sh_makes_are_accepted() {
        let url = "http://127.0.0.1:9000";
        let sqs =
            ["sqs", "--queue-url", "http://127.0.0.1:8767/1/work", "--function", "test-worker", "--invoke-url", url];
        let Ok(Command::Sqs(config)) = parse_with(&sqs, &[]) else { panic!("refused: {sqs:?}") };
        assert_eq!((config.function.as_str(), config.invoke_url.as_str()), ("test-worker", url));
        let schedule = ["schedule", "--function", "reconciler", "--every-secs", "5", "--invoke-url", url];
        let Ok(Command::Schedule(config)) = parse_with(&schedule, &[]) else { panic!("refused: {schedule:?}") };
        assert_eq!(config.every, Duration::from_secs(5));
    }

    #[test]
    fn schedule_reads_its_period_from_the_environment() {
        let command = parse_with(&["schedule"], &[("RECONCILE_EVERY_SECS", "5")]);
        let expected = ScheduleConfig {
            function: "reconciler".into(),
            every: Duration::from_secs(5),
            invoke_url: "http://127.0.0.1:9000".into(),
        };
        assert_eq!(command.ok(), Some(Command::Schedule(expected)));
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        for (args, env) in [
            (&["schedule", "--every-secs", "0"][..], &[][..]),
            (&["schedule", "--every-secs", "soon"], &[]),
            (&["schedule"], &[("RECONCILE_EVERY_SECS", "soon")]),
            (&["schedule", "--function", "../admin"], &[]),
            (&["schedule", "--invoke-url", "ftp://x"], &[]),
            (&["sqs", "--queue-url", "q", "--window-ms", "-1"], &[]),
            (&["sqs", "--queue-url", "q", "--batch-size", "10001"], &[]),
        ] {
            let error = parse_with(args, env).expect_err("accepted");
            assert_eq!(error.kind(), ErrorKind::ValueValidation, "{args:?} {env:?}: {error}");
            let flag = args.iter().rfind(|a| a.starts_with("--")).copied().unwrap_or("--every-secs");
            assert!(error.to_string().contains(flag), "{args:?} {env:?}: {error}");
        }
    }

    #[test]
    fn unknown_flags_and_subcommands_are_refused() {
        assert_eq!(kind(parse_with(&["schedule", "--queue-url", "q"], &[])), Some(ErrorKind::UnknownArgument));
        assert_eq!(kind(parse_with(&["kinesis"], &[])), Some(ErrorKind::InvalidSubcommand));
        assert_eq!(kind(parse_with(&[], &[])), Some(ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand));
        assert_eq!(kind(parse_with(&["sqs", "--function"], &[])), Some(ErrorKind::InvalidValue));
        assert_eq!(kind(parse_with(&["sqs", "--help"], &[])), Some(ErrorKind::DisplayHelp));
    }
}
