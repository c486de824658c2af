//! The simulator's settings, read once at start from the command line and `SIM_*`
//! variables ([`crate::flags::from_process`]).

use std::time::Duration;

use crate::chaos::ChaosSettings;

pub const DEFAULT_PORT: u16 = 8768;

/// Everything the simulator needs to run. Fields are public so tests build one directly
/// instead of mutating the process environment.
#[derive(Clone, Debug, PartialEq)]
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
}
