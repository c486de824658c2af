//! What the dev CLIs share (`hooks`, `wriftai-sim`, `local-aws`, and the lab's
//! `fault-proxy` and `bench`), so they read flags, log and fail alike:
//!
//! - [`init_tracing`]: logs on stderr, at `RUST_LOG`'s levels;
//! - [`number`] and [`blank_is_unset`]: flags and their variables, read the same way;
//! - [`usage`], [`refuse`] and [`exit`]: the exit code (2 for a command line refused), and a failure told on one line with its
//!   causes ([`chain`]).

use std::error::Error;
use std::ffi::{OsStr, OsString};
use std::io::IsTerminal;
use std::ops::RangeBounds;
use std::process::ExitCode;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// An error and its causes on one line (`outer: cause: root cause`), as the functions
/// log them.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Logs to stderr, so stdout stays for what the tool prints (a port, a report): at
/// `RUST_LOG`'s levels, `info` when it is unset or unreadable, in colour only on a
/// terminal.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
}

/// A clap value parser's body: `raw` as a number in `range`, blanks around it ignored
/// (a variable set in a script may carry them). Otherwise "must be `expected`", which
/// clap prints after the flag's name, so `expected` says the range in words.
pub fn number<T: FromStr + PartialOrd>(raw: &str, range: impl RangeBounds<T>, expected: &str) -> Result<T, String> {
    raw.trim().parse().ok().filter(|n| range.contains(n)).ok_or_else(|| format!("must be {expected}"))
}

/// `command` with each flag whose variable is set to nothing treated as if it were
/// unset, as `VAR= tool ...` means in a script; clap alone would hand the empty value to
/// the flag. Covers the flags of the subcommands too. `env` is the process's variables
/// (`std::env::var_os`), or a test's.
pub fn blank_is_unset(command: clap::Command, env: impl Fn(&OsStr) -> Option<OsString>) -> clap::Command {
    let blank = |arg: clap::Arg| match arg.get_env().and_then(&env) {
        Some(value) if value.to_string_lossy().trim().is_empty() => arg.env(None),
        _ => arg,
    };
    command.mut_args(blank).mut_subcommands(|sub| sub.mut_args(blank))
}

/// The exit code of a command line refused (clap's own, and the Unix tools'): a
/// script can tell "you asked wrongly, nothing was done" from a failure (1).
pub const USAGE: u8 = 2;

/// The end of a tool whose command line clap refused: clap's message (or the help asked
/// for) is printed, and the exit code is [`USAGE`] for a usage error, 0 after `--help`.
pub fn usage(refused: clap::Error) -> ExitCode {
    let _ = refused.print();
    usage_code(&refused)
}

fn usage_code(refused: &clap::Error) -> ExitCode {
    if refused.use_stderr() { ExitCode::from(USAGE) } else { ExitCode::SUCCESS }
}

/// The end of a run refused for a bad argument that clap let through (a value only the
/// command can judge): `name: error: cause: ...` on stderr, exit [`USAGE`].
pub fn refuse(name: &str, error: &(dyn Error + 'static)) -> ExitCode {
    eprintln!("{}", failure(name, error));
    ExitCode::from(USAGE)
}

/// The end of a tool's run: 0, or 1 after `name: error: cause: ...` on stderr, one plain
/// line, so a script's log says what to fix.
pub fn exit<E: Error + 'static>(name: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", failure(name, &error));
            ExitCode::FAILURE
        }
    }
}

fn failure(name: &str, error: &(dyn Error + 'static)) -> String {
    format!("{name}: {}", chain(error))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::error::ErrorKind;
    use clap::{Arg, Command};

    use super::*;

    #[test]
    fn a_number_in_range_is_accepted_blanks_around_it_ignored() {
        assert_eq!(number::<u32>("1", 1..=10, "from 1 to 10"), Ok(1));
        assert_eq!(number::<u32>(" 10 ", 1..=10, "from 1 to 10"), Ok(10));
        assert_eq!(number::<u64>("0", .., "milliseconds").map(Duration::from_millis), Ok(Duration::ZERO));
        assert_eq!(number::<f64>("0.25", 0.0..=1.0, "a probability in [0, 1]"), Ok(0.25));
        assert_eq!(number::<u32>("7", 1.., "an integer >= 1"), Ok(7));
    }

    #[test]
    fn a_number_out_of_range_is_refused_naming_the_range() {
        let expected = "a whole number from 1 to 10";
        for raw in ["0", "11"] {
            assert_eq!(number::<u32>(raw, 1..=10, expected), Err("must be a whole number from 1 to 10".into()));
        }
        assert!(number::<f64>("1.5", 0.0..=1.0, "a probability").is_err());
        assert!(number::<f64>("NaN", 0.0..=1.0, "a probability").is_err(), "NaN is in no range");
    }

    #[test]
    fn what_is_not_a_number_of_the_type_is_refused() {
        for raw in ["", " ", "ten", "1.5", "-1", "1e3", "99999999999"] {
            assert_eq!(number::<u32>(raw, .., "a count"), Err("must be a count".into()), "{raw:?}");
        }
    }

    #[test]
    fn a_blank_variable_counts_as_unset_in_subcommands_too() {
        let arg = |name: &'static str, var: &'static str| Arg::new(name).long(name).env(var);
        let command =
            Command::new("tool").arg(arg("top", "TOP")).subcommand(Command::new("sub").arg(arg("port", "PORT")));
        let env = |name: &OsStr| match name.to_str() {
            Some("TOP") => Some(OsString::from(" ")),
            Some("PORT") => Some(OsString::new()),
            _ => None,
        };
        let command = blank_is_unset(command, env);
        assert_eq!(command.get_arguments().find(|a| a.get_id() == "top").and_then(Arg::get_env), None);
        let sub = command.find_subcommand("sub").expect("sub");
        assert_eq!(sub.get_arguments().find(|a| a.get_id() == "port").and_then(Arg::get_env), None);
    }

    #[test]
    fn a_set_variable_is_kept() {
        let command = Command::new("tool").arg(Arg::new("port").long("port").env("PORT"));
        let command = blank_is_unset(command, |_| Some(OsString::from("8080")));
        let port = command.get_arguments().find(|a| a.get_id() == "port").and_then(Arg::get_env);
        assert_eq!(port, Some(OsStr::new("PORT")));
    }

    #[test]
    fn a_failure_is_one_line_with_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot listen on 127.0.0.1:8080")]
        struct Bind(#[source] std::io::Error);
        let error = Bind(std::io::Error::other("address in use"));
        assert_eq!(failure("tool", &error), "tool: cannot listen on 127.0.0.1:8080: address in use");
    }

    #[test]
    fn the_exit_code_is_0_or_1() {
        assert_eq!(exit::<std::io::Error>("tool", Ok(())), ExitCode::SUCCESS);
        assert_eq!(exit("tool", Err(std::io::Error::other("boom"))), ExitCode::FAILURE);
    }

    #[test]
    fn a_usage_error_exits_2_and_help_0() {
        assert_eq!(usage_code(&clap::Error::new(ErrorKind::UnknownArgument)), ExitCode::from(2));
        assert_eq!(refuse("tool", &std::io::Error::other("--rate 0: must be at least 1")), ExitCode::from(2));
        assert_eq!(usage_code(&clap::Error::new(ErrorKind::DisplayHelp)), ExitCode::SUCCESS);
    }
}
