//! The worker's settings, read once at cold start.

use std::time::Duration;

use shared::config::{ConfigError, Env, IngestConfig, webhook_from_env};
use shared::wriftai::ApiConfig;

pub struct WorkerConfig {
    /// The table, and the queue a chained prediction's work goes to.
    pub ingest: IngestConfig,
    /// For predictions too large for a message, and for chaining.
    pub api: ApiConfig,
    pub webhook: Option<(String, Option<String>)>,
    /// Messages of one batch worked on at once.
    pub concurrency: usize,
    pub download_limit: u64,
    pub download_timeout: Duration,
    /// Lets a prediction's input ask for a crash (`"test_hook": "panic_once"`): for
    /// the end-to-end tests only, never set it in production.
    pub test_hooks: bool,
}

impl WorkerConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            ingest: IngestConfig::from_env(env)?,
            api: ApiConfig::from_env(env)?,
            webhook: webhook_from_env(env),
            concurrency: env.parsed("WORKER_CONCURRENCY", 10)?,
            download_limit: env.parsed("DOWNLOAD_MAX_BYTES", 10 * 1024 * 1024)?,
            download_timeout: Duration::from_secs(env.parsed("DOWNLOAD_TIMEOUT_SECS", 10)?),
            test_hooks: env.parsed("WORKER_TEST_HOOKS", false)?,
        })
    }
}
