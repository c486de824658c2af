//! The reconciler: on a schedule, asks WriftAI about what webhooks left unfinished and
//! feeds what it learns through the receiver's own record-and-enqueue path, so nothing
//! depends on a webhook arriving ([`serve`]).
//!
//! - `run`: one run's walks (predictions still open, work not done) and what each item
//!   leads to; `walk`: the sparse indexes read oldest first across their shards;
//! - `handler`: one scheduled invocation, a run that stops before its deadline, logged
//!   and counted as one summary; `config`: its settings, read once at cold start.

mod config;
#[allow(missing_docs)] // internals: see `crate::internals`
pub(crate) mod handler;
#[allow(missing_docs)]
pub(crate) mod run;
#[allow(missing_docs)]
pub(crate) mod walk;

use lambda_runtime::{run as run_lambda, service_fn};

use handler::App;

use crate::adapters::aws_config;
use crate::config::Env;
use crate::error::BoxError;

/// Runs the reconciler's Lambda, invoked on a schedule, and returns only when the
/// runtime stops: reads its configuration (a missing or malformed variable stops the
/// start, named), builds its clients once, then makes one run per invocation. Tracing
/// starts here too (JSON lines when the function's log format is JSON, text otherwise).
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), wriftai_hooks::BoxError> {
///     wriftai_hooks::reconciler::serve().await
/// }
/// ```
pub async fn serve() -> Result<(), BoxError> {
    crate::logs::init();
    let config = config::ReconcilerConfig::from_env(&Env::process())?;
    config.metrics.clone().install();
    let aws = aws_config(&config.aws).await;
    let app = &App::on_aws(&aws, config).await?;
    run_lambda(service_fn(move |event| app.handle(event))).await
}
