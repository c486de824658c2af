//! The command line: two subcommands, their flags, and the environment variables behind them.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::Error;

pub const USAGE: &str = "usage:
  local-aws sqs [--queue-url URL] [--function worker] [--invoke-url http://127.0.0.1:9000]
                [--batch-size 10] [--window-ms 0]
  local-aws schedule [--function reconciler] [--every-secs 60] [--invoke-url http://127.0.0.1:9000]
environment: QUEUE_URL, LAMBDA_INVOKE_URL, RECONCILE_EVERY_SECS (flags win);
  AWS_ENDPOINT_URL_SQS, AWS_REGION and credentials as for any AWS SDK";

const DEFAULT_INVOKE_URL: &str = "http://127.0.0.1:9000";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Sqs(SqsConfig),
    Schedule(ScheduleConfig),
    Help,
}

/// The event source mapping's settings, named as on `AWS::Lambda::EventSourceMapping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsConfig {
    pub queue_url: String,
    pub function: String,
    /// The invoke API's base URL, without a trailing slash.
    pub invoke_url: String,
    pub batch_size: usize,
    pub window: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    pub function: String,
    pub every: Duration,
    pub invoke_url: String,
}

/// Reads the command line, falling back to `env` for the flags that have a variable.
/// `env` is a parameter so tests never touch the process environment.
pub fn parse(args: impl IntoIterator<Item = String>, env: impl Fn(&str) -> Option<String>) -> Result<Command, Error> {
    let args: Vec<String> = args.into_iter().collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let lookup = |flags: &HashMap<String, String>, flag: &str, var: Option<&str>| {
        flags.get(flag).cloned().or_else(|| var.and_then(&env)).filter(|v| !v.is_empty())
    };
    match args.split_first() {
        Some((sub, rest)) if sub == "sqs" => {
            let flags = flags(rest, &["--queue-url", "--function", "--invoke-url", "--batch-size", "--window-ms"])?;
            let queue_url = lookup(&flags, "--queue-url", Some("QUEUE_URL")).ok_or(Error::Missing("--queue-url"))?;
            let batch_size = match lookup(&flags, "--batch-size", None) {
                Some(v) => number("--batch-size", &v, "a whole number from 1 to 10000", 1..=10_000)?,
                None => 10,
            };
            let window_ms = match lookup(&flags, "--window-ms", None) {
                Some(v) => number("--window-ms", &v, "milliseconds from 0 to 300000", 0..=300_000)?,
                None => 0,
            };
            // Lambda refuses the same combination: without a window, one receive of at
            // most 10 messages is all a batch can be.
            if batch_size > 10 && window_ms == 0 {
                return Err(Error::Usage("--batch-size over 10 needs --window-ms of at least 1".into()));
            }
            Ok(Command::Sqs(SqsConfig {
                queue_url,
                function: function(lookup(&flags, "--function", None).as_deref().unwrap_or("worker"))?,
                invoke_url: invoke_url(lookup(&flags, "--invoke-url", Some("LAMBDA_INVOKE_URL")))?,
                batch_size: batch_size as usize,
                window: Duration::from_millis(window_ms),
            }))
        }
        Some((sub, rest)) if sub == "schedule" => {
            let flags = flags(rest, &["--function", "--every-secs", "--invoke-url"])?;
            let every = match lookup(&flags, "--every-secs", Some("RECONCILE_EVERY_SECS")) {
                Some(v) => number("--every-secs", &v, "whole seconds from 1 to 86400", 1..=86_400)?,
                None => 60,
            };
            Ok(Command::Schedule(ScheduleConfig {
                function: function(lookup(&flags, "--function", None).as_deref().unwrap_or("reconciler"))?,
                every: Duration::from_secs(every),
                invoke_url: invoke_url(lookup(&flags, "--invoke-url", Some("LAMBDA_INVOKE_URL")))?,
            }))
        }
        Some((sub, _)) => Err(Error::Usage(format!("unknown subcommand {sub:?}\n{USAGE}"))),
        None => Err(Error::Usage(USAGE.into())),
    }
}

/// `--name value` or `--name=value`; the last of a repeated flag wins, like most CLIs.
fn flags(args: &[String], allowed: &[&str]) -> Result<HashMap<String, String>, Error> {
    let mut out = HashMap::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, value.to_owned()),
            _ if arg.starts_with("--") => {
                let value = args.next().ok_or_else(|| Error::Usage(format!("{arg} needs a value\n{USAGE}")))?;
                (arg.as_str(), value.clone())
            }
            _ => return Err(Error::Usage(format!("unexpected argument {arg:?}\n{USAGE}"))),
        };
        if !allowed.contains(&name) {
            return Err(Error::Usage(format!("unknown flag {name}\n{USAGE}")));
        }
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

fn number(
    name: &'static str,
    value: &str,
    expected: &'static str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, Error> {
    value.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| Error::InvalidValue {
        name,
        expected,
        value: value.to_owned(),
    })
}

/// The name becomes a URL path segment, so it is held to Lambda's own naming rule.
fn function(name: &str) -> Result<String, Error> {
    let valid =
        (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(Error::InvalidValue {
            name: "--function",
            expected: "a Lambda function name (letters, digits, - and _)",
            value: name.to_owned(),
        })
    }
}

fn invoke_url(value: Option<String>) -> Result<String, Error> {
    let value = value.unwrap_or_else(|| DEFAULT_INVOKE_URL.to_owned());
    match reqwest::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(value.trim_end_matches('/').to_owned())
        }
        _ => Err(Error::InvalidValue { name: "--invoke-url", expected: "an http(s) URL", value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Command, Error> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse(args.iter().map(|a| a.to_string()), |name| env.get(name).cloned())
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
    fn sqs_without_a_queue_url_is_refused() {
        assert!(matches!(parse_with(&["sqs"], &[]), Err(Error::Missing("--queue-url"))));
    }

    #[test]
    fn a_batch_over_ten_without_a_window_is_refused_like_lambda_does() {
        let args = ["sqs", "--queue-url", "q", "--batch-size", "11"];
        assert!(matches!(parse_with(&args, &[]), Err(Error::Usage(_))));
        let with_window = ["sqs", "--queue-url", "q", "--batch-size", "11", "--window-ms", "500"];
        assert!(matches!(parse_with(&with_window, &[]), Ok(Command::Sqs(_))));
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
        for args in [
            &["schedule", "--every-secs", "0"][..],
            &["schedule", "--every-secs", "soon"],
            &["schedule", "--function", "../admin"],
            &["schedule", "--invoke-url", "ftp://x"],
            &["sqs", "--queue-url", "q", "--window-ms", "-1"],
        ] {
            assert!(matches!(parse_with(args, &[]), Err(Error::InvalidValue { .. })), "{args:?}");
        }
    }

    #[test]
    fn unknown_flags_and_subcommands_are_refused() {
        assert!(matches!(parse_with(&["schedule", "--queue-url", "q"], &[]), Err(Error::Usage(_))));
        assert!(matches!(parse_with(&["kinesis"], &[]), Err(Error::Usage(_))));
        assert!(matches!(parse_with(&[], &[]), Err(Error::Usage(_))));
        assert!(matches!(parse_with(&["sqs", "--function"], &[]), Err(Error::Usage(_))));
        assert_eq!(parse_with(&["sqs", "--help"], &[]).ok(), Some(Command::Help));
    }
}
