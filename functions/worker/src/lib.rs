//! The worker: takes each work message off the queue, claims its (prediction, status)
//! and runs your work on it, once.
//!
//! - [`work`]: **your work**, the file to edit: what it can use ([`work::Context`]) and
//!   what it does with each prediction ([`work::handle`]).
//! - [`examples`]: the worked examples `handle` calls: copy output files, chain the
//!   next prediction, keep failures for triage, notify them.
//! - [`files`]: the files an output points at, their keys, what became of each;
//!   [`bucket`]: the stack's bucket, where they are streamed (and records too large for
//!   an item kept); [`fetch`]: which URLs from a webhook body may be fetched.
//! - [`batch`]: one SQS batch: the claim around each message, a span each, partial batch
//!   failures; [`lags`]: the trace each message carried, and its lag metrics.
//! - [`config`]: the worker's settings, read once at cold start, and the clients built
//!   from them.
//! - [`serve`]: the Lambda: config, clients, the worker around a job, run.

pub mod batch;
pub mod bucket;
pub mod config;
pub mod examples;
pub mod fetch;
pub mod files;
pub mod lags;
pub mod work;

use lambda_runtime::{Error, run, service_fn};
use wriftai_hooks::config::Env;
use wriftai_hooks::error::BoxError;

use crate::batch::{Job, Worker};
use crate::config::{Clients, WorkerConfig};

/// The worker's Lambda, as every function's `main` runs: its configuration, its clients,
/// the app on them, run. `job` builds what runs for each claimed message:
/// [`work::Context::on_aws`] in `main.rs`; the end-to-end tests' worker wraps it with
/// crash hooks.
pub async fn serve<J: Job>(job: impl FnOnce(&Clients, &WorkerConfig) -> Result<J, BoxError>) -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = WorkerConfig::from_env(&Env::process())?;
    config.metrics.clone().install();
    let clients = Clients::connect(&config).await?;
    let worker = &Worker::on_aws(&clients, &config, job(&clients, &config)?);
    run(service_fn(move |event| worker.handle(event))).await
}
