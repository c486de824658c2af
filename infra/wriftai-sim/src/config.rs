//! Settings read once at start from the command line and `SIM_*` variables.

use std::time::Duration;

use crate::chaos::ChaosSettings;
use crate::error::StartError;

pub const DEFAULT_PORT: u16 = 8768;

/// Everything the simulator needs to run. Fields are public so tests build one directly
/// instead of mutating the process environment.
#[derive(Clone, Debug)]
pub struct Config {
    pub port: u16,
    /// The bearer token every `/v1` request must carry.
    pub access_token: String,
    /// Default time between status changes, when neither `sim.step_ms` nor the model
    /// name says otherwise.
    pub step: Duration,
    /// Max `/v1` requests per second; 0 = unlimited.
    pub rate_limit: u32,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    pub attempt_timeout: Duration,
    /// Append an unknown-scheme `v2=` entry to every signature header.
    pub extra_signatures: bool,
    /// WriftAI's documented maximum run time; a prediction still running is then failed.
    pub max_run: Duration,
    /// Webhooks go to loopback hosts only unless this is set: a simulator should never
    /// send traffic off the machine by accident.
    pub allow_any_webhook_host: bool,
    pub chaos: ChaosSettings,
}

impl Config {
    /// Defaults for everything but the token.
    pub fn new(access_token: impl Into<String>) -> Self {
        Self {
            port: DEFAULT_PORT,
            access_token: access_token.into(),
            step: Duration::from_millis(50),
            rate_limit: 0,
            retry_base: Duration::from_millis(100),
            retry_cap: Duration::from_millis(2000),
            attempt_timeout: Duration::from_secs(10),
            extra_signatures: false,
            max_run: Duration::from_secs(30 * 60),
            allow_any_webhook_host: false,
            chaos: ChaosSettings::default(),
        }
    }

    /// Reads `WRIFTAI_ACCESS_TOKEN` (required) and the optional `SIM_*` variables, then
    /// `--port N` from `args` (which wins over `SIM_PORT`).
    pub fn from_env(args: impl IntoIterator<Item = String>) -> Result<Self, StartError> {
        let token = std::env::var("WRIFTAI_ACCESS_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or(StartError::MissingVariable("WRIFTAI_ACCESS_TOKEN"))?;
        let mut config = Self::new(token);
        let ms = Duration::from_millis;
        if let Some(v) = var("SIM_PORT", "a port number", |s| s.parse().ok())? {
            config.port = v;
        }
        if let Some(v) = var("SIM_STEP_MS", "milliseconds", |s| s.parse().ok())? {
            config.step = ms(v);
        }
        if let Some(v) = var("SIM_RATE_LIMIT", "a request count", |s| s.parse().ok())? {
            config.rate_limit = v;
        }
        if let Some(v) = var("SIM_RETRY_BASE_MS", "milliseconds", |s| s.parse().ok())? {
            config.retry_base = ms(v);
        }
        if let Some(v) = var("SIM_RETRY_CAP_MS", "milliseconds", |s| s.parse().ok())? {
            config.retry_cap = ms(v);
        }
        if let Some(v) = var("SIM_ATTEMPT_TIMEOUT_MS", "milliseconds", |s| s.parse().ok())? {
            config.attempt_timeout = ms(v);
        }
        if let Some(v) = var("SIM_MAX_RUN_MS", "milliseconds", |s| s.parse().ok())? {
            config.max_run = ms(v);
        }
        if let Some(v) = var("SIM_EXTRA_SIGNATURES", "0 or 1", flag)? {
            config.extra_signatures = v;
        }
        if let Some(v) = var("SIM_ALLOW_ANY_WEBHOOK_HOST", "0 or 1", flag)? {
            config.allow_any_webhook_host = v;
        }
        let chaos = &mut config.chaos;
        if let Some(v) = var("SIM_SEED", "an unsigned integer", |s| s.parse().ok())? {
            chaos.seed = v;
        }
        if let Some(v) = var("SIM_DUPLICATE_RATE", "a probability in [0, 1]", rate)? {
            chaos.duplicate_rate = v;
        }
        if let Some(v) = var("SIM_REORDER_RATE", "a probability in [0, 1]", rate)? {
            chaos.reorder_rate = v;
        }
        if let Some(v) = var("SIM_DROP_RATE", "a probability in [0, 1]", rate)? {
            chaos.drop_rate = v;
        }
        if let Some(v) = var("SIM_DELAY_MS", "milliseconds", |s| s.parse().ok())? {
            chaos.delay_ms = v;
        }
        if let Some(v) = var("SIM_MAX_ATTEMPTS", "an integer >= 1", |s| s.parse().ok().filter(|n| *n >= 1))? {
            chaos.max_attempts = v;
        }
        config.apply_args(args)?;
        Ok(config)
    }

    fn apply_args(&mut self, args: impl IntoIterator<Item = String>) -> Result<(), StartError> {
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let value = match arg.as_str() {
                "--port" => args.next(),
                other => match other.strip_prefix("--port=") {
                    Some(v) => Some(v.to_owned()),
                    None => return Err(StartError::Usage(format!("unknown argument {other:?}"))),
                },
            };
            self.port = value
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StartError::Usage("--port needs a port number (0 = any)".into()))?;
        }
        Ok(())
    }
}

/// Reads one optional variable; present but unparsable fails naming the variable.
fn var<T>(
    name: &'static str,
    expected: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, StartError> {
    match std::env::var(name) {
        Ok(raw) if raw.trim().is_empty() => Ok(None),
        Ok(raw) => parse(raw.trim()).map(Some).ok_or(StartError::InvalidVariable { name, expected, value: raw }),
        Err(_) => Ok(None),
    }
}

fn flag(raw: &str) -> Option<bool> {
    match raw {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

fn rate(raw: &str) -> Option<f64> {
    raw.parse().ok().filter(|r: &f64| (0.0..=1.0).contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn port_is_taken_from_either_argument_form() {
        let mut config = Config::new("t");
        config.apply_args(args(&["--port", "0"])).ok();
        assert_eq!(config.port, 0);
        config.apply_args(args(&["--port=18768"])).ok();
        assert_eq!(config.port, 18768);
    }

    #[test]
    fn an_unknown_argument_or_a_bad_port_is_refused() {
        let mut config = Config::new("t");
        assert!(config.apply_args(args(&["--verbose"])).is_err());
        assert!(config.apply_args(args(&["--port", "x"])).is_err());
        assert!(config.apply_args(args(&["--port"])).is_err());
    }
}
