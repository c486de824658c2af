//! The command line: each setting of [`Config`] a flag, falling back to its `SIM_*` variable.

use std::ffi::OsString;
use std::time::Duration;

use clap::builder::NonEmptyStringValueParser;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use devcli::{blank_is_unset, number};

use crate::chaos::ChaosSettings;
use crate::config::{Config, DEFAULT_PORT};

/// Reads the command line, each flag falling back to its `SIM_*` variable (flags win).
pub fn from_process() -> Result<Config, clap::Error> {
    parse(blank_is_unset(Flags::command(), |name| std::env::var_os(name)), std::env::args_os())
}

/// A faithful local WriftAI: the predictions API, a scheduled lifecycle, and signed
/// webhooks with retries and seedable chaos. Binds 127.0.0.1 only.
// The defaults are `Config::new`'s; a test holds them to it.
#[derive(Debug, Parser)]
#[command(name = "wriftai-sim")]
struct Flags {
    /// Port to listen on; 0 = any free port.
    #[arg(long, env = "SIM_PORT", default_value_t = DEFAULT_PORT, value_parser = port)]
    port: u16,
    /// The bearer token every `/v1` request must carry.
    #[arg(
        long,
        env = "WRIFTAI_ACCESS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = NonEmptyStringValueParser::new()
    )]
    access_token: String,
    /// Time between status changes.
    #[arg(long, env = "SIM_STEP_MS", value_name = "MS", default_value = "50", value_parser = millis)]
    step_ms: Duration,
    /// Max `/v1` requests per second (fixed one-second window); 0 = unlimited.
    #[arg(long, env = "SIM_RATE_LIMIT", value_name = "N", default_value = "0", value_parser = count)]
    rate_limit: u32,
    /// First webhook retry delay; doubles per attempt.
    #[arg(long, env = "SIM_RETRY_BASE_MS", value_name = "MS", default_value = "100", value_parser = millis)]
    retry_base_ms: Duration,
    /// Cap of the retry delay (and of an honoured `Retry-After`).
    #[arg(long, env = "SIM_RETRY_CAP_MS", value_name = "MS", default_value = "2000", value_parser = millis)]
    retry_cap_ms: Duration,
    /// Timeout of one webhook attempt.
    #[arg(long, env = "SIM_ATTEMPT_TIMEOUT_MS", value_name = "MS", default_value = "10000", value_parser = millis)]
    attempt_timeout_ms: Duration,
    /// Append an unknown-scheme `,v2=<random hex>` to every signature header.
    // A value, as the variable has one; the flag alone means 1.
    #[arg(
        long,
        env = "SIM_EXTRA_SIGNATURES",
        value_name = "0|1",
        default_value = "0",
        value_parser = flag,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "1"
    )]
    extra_signatures: bool,
    /// A prediction still running after this is failed (WriftAI's 30 minutes).
    #[arg(long, env = "SIM_MAX_RUN_MS", value_name = "MS", default_value = "1800000", value_parser = millis)]
    max_run_ms: Duration,
    /// Allow webhook URLs on non-loopback hosts.
    #[arg(
        long,
        env = "SIM_ALLOW_ANY_WEBHOOK_HOST",
        value_name = "0|1",
        default_value = "0",
        value_parser = flag,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "1"
    )]
    allow_any_webhook_host: bool,
    /// Chaos seed: the same seed and creations give the same decisions.
    #[arg(long, env = "SIM_SEED", value_name = "N", default_value = "0", value_parser = seed)]
    seed: u64,
    /// Probability a delivery is sent twice.
    #[arg(long, env = "SIM_DUPLICATE_RATE", value_name = "P", default_value = "0", value_parser = rate)]
    duplicate_rate: f64,
    /// Probability a prediction's `started` is sent after its terminal status.
    #[arg(long, env = "SIM_REORDER_RATE", value_name = "P", default_value = "0", value_parser = rate)]
    reorder_rate: f64,
    /// Probability a delivery is dropped (never sent, as if retries ran out).
    #[arg(long, env = "SIM_DROP_RATE", value_name = "P", default_value = "0", value_parser = rate)]
    drop_rate: f64,
    /// Max random extra delay before each delivery.
    #[arg(long, env = "SIM_DELAY_MS", value_name = "MS", default_value = "0", value_parser = delay)]
    delay_ms: u64,
    /// Attempts per delivery, the first included.
    #[arg(long, env = "SIM_MAX_ATTEMPTS", value_name = "N", default_value = "5", value_parser = attempts)]
    max_attempts: u32,
}

impl From<Flags> for Config {
    fn from(flags: Flags) -> Self {
        Self {
            port: flags.port,
            access_token: flags.access_token,
            step: flags.step_ms,
            rate_limit: flags.rate_limit,
            retry_base: flags.retry_base_ms,
            retry_cap: flags.retry_cap_ms,
            attempt_timeout: flags.attempt_timeout_ms,
            extra_signatures: flags.extra_signatures,
            max_run: flags.max_run_ms,
            allow_any_webhook_host: flags.allow_any_webhook_host,
            chaos: ChaosSettings {
                seed: flags.seed,
                duplicate_rate: flags.duplicate_rate,
                reorder_rate: flags.reorder_rate,
                drop_rate: flags.drop_rate,
                delay_ms: flags.delay_ms,
                max_attempts: flags.max_attempts,
            },
        }
    }
}

/// Parses `args` with `command` (the flags, their variables as read).
fn parse(mut command: clap::Command, args: impl IntoIterator<Item = OsString>) -> Result<Config, clap::Error> {
    let matches = command.try_get_matches_from_mut(args)?;
    Flags::from_arg_matches(&matches).map(Config::from).map_err(|e| e.format(&mut command))
}

fn port(raw: &str) -> Result<u16, String> {
    number(raw, .., "a port number (0 = any)")
}

fn millis(raw: &str) -> Result<Duration, String> {
    number(raw, .., "milliseconds").map(Duration::from_millis)
}

fn delay(raw: &str) -> Result<u64, String> {
    number(raw, .., "milliseconds")
}

fn count(raw: &str) -> Result<u32, String> {
    number(raw, .., "a request count")
}

fn seed(raw: &str) -> Result<u64, String> {
    number(raw, .., "an unsigned integer")
}

fn rate(raw: &str) -> Result<f64, String> {
    number(raw, 0.0..=1.0, "a probability in [0, 1]")
}

fn attempts(raw: &str) -> Result<u32, String> {
    number(raw, 1.., "an integer >= 1")
}

fn flag(raw: &str) -> Result<bool, String> {
    match raw.trim() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err("must be 0 or 1".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use clap::error::ErrorKind;

    use super::*;

    /// Parses as `from_process` does, with `env` for the process's variables. clap reads
    /// those as the command is built, so each flag's variable is replaced by a default
    /// holding the test's value, or by nothing; a flag still wins over it.
    fn parse_with(args: &[&str], env: &[(&str, &'static str)]) -> Result<Config, clap::Error> {
        let value = |name: &OsStr| env.iter().find(|(n, _)| OsStr::new(n) == name).map(|(_, v)| *v);
        let command = blank_is_unset(Flags::command(), |name| value(name).map(OsString::from)).mut_args(|arg| {
            match arg.get_env().and_then(value) {
                // A value from a variable satisfies `required`, as in clap's own env handling.
                Some(v) => arg.env(None).default_value(v).required(false),
                None => arg.env(None),
            }
        });
        parse(command, std::iter::once("wriftai-sim").chain(args.iter().copied()).map(OsString::from))
    }

    fn with_token(args: &[&str]) -> Result<Config, clap::Error> {
        parse_with(args, &[("WRIFTAI_ACCESS_TOKEN", "t")])
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Flags::command().debug_assert();
    }

    #[test]
    fn the_flags_default_to_what_config_new_has() {
        assert_eq!(with_token(&[]).ok(), Some(Config::new("t")));
        assert_eq!(parse_with(&["--access-token", "t"], &[]).ok(), Some(Config::new("t")));
    }

    #[test]
    fn the_token_is_required() {
        for env in [&[][..], &[("WRIFTAI_ACCESS_TOKEN", "")]] {
            let refused = parse_with(&[], env).err().map(|e| e.kind());
            assert_eq!(refused, Some(ErrorKind::MissingRequiredArgument), "{env:?}");
        }
    }

    #[test]
    fn port_is_taken_from_either_argument_form() {
        assert_eq!(with_token(&["--port", "0"]).map(|c| c.port).ok(), Some(0));
        assert_eq!(with_token(&["--port=18768"]).map(|c| c.port).ok(), Some(18768));
    }

    #[test]
    fn an_unknown_argument_or_a_bad_port_is_refused() {
        assert!(with_token(&["--verbose"]).is_err());
        assert!(with_token(&["--port", "x"]).is_err());
        assert!(with_token(&["--port"]).is_err());
    }

    #[test]
    fn settings_fall_back_to_their_variables_trimmed_and_flags_win() {
        let env = [
            ("WRIFTAI_ACCESS_TOKEN", "t"),
            ("SIM_PORT", "18768"),
            ("SIM_STEP_MS", " 5 "),
            ("SIM_RATE_LIMIT", "100"),
            ("SIM_EXTRA_SIGNATURES", "yes"),
            ("SIM_SEED", "7"),
            ("SIM_DROP_RATE", "0.25"),
            ("SIM_MAX_ATTEMPTS", "1"),
            ("SIM_DELAY_MS", ""),
        ];
        let config = parse_with(&["--port", "0"], &env).expect("accepted");
        assert_eq!(config.port, 0);
        assert_eq!(config.step, Duration::from_millis(5));
        assert_eq!(config.rate_limit, 100);
        assert!(config.extra_signatures);
        let chaos = ChaosSettings { seed: 7, drop_rate: 0.25, max_attempts: 1, ..ChaosSettings::default() };
        assert_eq!(config.chaos, chaos);
    }

    #[test]
    fn a_switch_alone_turns_it_on() {
        let config = with_token(&["--allow-any-webhook-host", "--extra-signatures=0"]).expect("accepted");
        assert!(config.allow_any_webhook_host);
        assert!(!config.extra_signatures);
    }

    #[test]
    fn an_unreadable_setting_is_refused_naming_its_flag() {
        for (name, value, flag) in [
            ("SIM_DROP_RATE", "2", "--drop-rate"),
            ("SIM_DUPLICATE_RATE", "NaN", "--duplicate-rate"),
            ("SIM_MAX_ATTEMPTS", "0", "--max-attempts"),
            ("SIM_EXTRA_SIGNATURES", "maybe", "--extra-signatures"),
            ("SIM_STEP_MS", "-1", "--step-ms"),
        ] {
            let refused = parse_with(&[], &[("WRIFTAI_ACCESS_TOKEN", "t"), (name, value)]).expect_err(name);
            assert_eq!(refused.kind(), ErrorKind::ValueValidation, "{name}: {refused}");
            assert!(refused.to_string().contains(flag), "{name}: {refused}");
        }
    }
}
