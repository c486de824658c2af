//! The worker: takes each work message off the queue, claims its (prediction, status)
//! and runs your `handle` on it, once ([`serve`]).
//!
//! - `batch`: one SQS batch, its messages worked on concurrently, each in its own span,
//!   each failure reported alone; `claim`: one unit of work run to completion once;
//! - `context`: what your work can use ([`Context`]) and where your settings come from
//!   ([`Setup`]);
//! - `lags`: the trace each message carried, and its lag metrics; `config`: the
//!   worker's settings, read once at cold start, and the clients built from them.

#[allow(missing_docs)] // internals: see `crate::internals`
pub(crate) mod batch;
#[allow(missing_docs)]
pub(crate) mod claim;
#[allow(missing_docs)]
pub(crate) mod config;
mod context;
mod lags;

use lambda_runtime::{run, service_fn};
use serde_json::Value;

pub use batch::attempt;
pub(crate) use batch::{Job, Worker};
pub(crate) use config::{Clients, WorkerConfig};
pub use context::{Context, Setup};

use crate::adapters::dynamo::DynamoLedger;
use crate::config::Env;
use crate::error::BoxError;
use crate::prediction::Prediction;

/// Runs the worker's Lambda around your work, and returns only when the runtime stops:
/// reads the worker's configuration (a missing or malformed variable stops the start,
/// named), builds its clients once, reads your settings with `settings`, then for each
/// message of each SQS batch claims its (prediction, status) and calls `handle` on it,
/// once to completion.
///
/// `handle`'s `Ok` value is kept with the event as the work's result (at most 16 KB of
/// it; more is kept as its size and SHA-256). An `Err` or a panic fails only its own
/// message: it is tried again, and goes to the dead-letter queue after five receives.
/// So does a run still going when the invocation has 6 s left: it is stopped there. A
/// run done again starts from the top, so run each side effect as a step
/// ([`Context::steps`]).
///
/// Tracing starts here too (JSON lines when the function's log format is JSON, as the
/// template sets it; text, in colour only on a terminal, otherwise), with a span per message naming its
/// prediction, status and trace.
///
/// ```no_run
/// use serde_json::{Value, json};
/// use wriftai_hooks::{BoxError, Context, Prediction, Setup};
///
/// /// Your settings: read once, at cold start.
/// struct Settings {
///     notify_url: Option<String>,
/// }
///
/// fn settings(setup: &Setup) -> Result<Settings, BoxError> {
///     Ok(Settings { notify_url: setup.var("NOTIFY_URL") })
/// }
///
/// async fn handle(prediction: &Prediction, ctx: &Context<Settings>) -> Result<Value, BoxError> {
///     ctx.records().store(prediction.id, "result", &json!({"output": prediction.output})).await?;
///     Ok(json!({"stored": true}))
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), BoxError> {
///     wriftai_hooks::worker::serve(settings, handle).await
/// }
/// ```
pub async fn serve<S, E, H>(settings: impl FnOnce(&Setup) -> Result<S, E>, handle: H) -> Result<(), BoxError>
where
    E: Into<BoxError>,
    H: AsyncFn(&Prediction, &Context<S>) -> Result<Value, BoxError>,
{
    serve_instrumented(settings, handle, |table| table).await
}

/// [`serve`], on the table `instrument` makes of the stack's: the repository's test
/// worker counts the writes of each record there. Not part of the API's promise.
#[doc(hidden)]
pub async fn serve_instrumented<S, E, H>(
    settings: impl FnOnce(&Setup) -> Result<S, E>,
    handle: H,
    instrument: impl FnOnce(DynamoLedger) -> DynamoLedger,
) -> Result<(), BoxError>
where
    E: Into<BoxError>,
    H: AsyncFn(&Prediction, &Context<S>) -> Result<Value, BoxError>,
{
    crate::logs::init();
    let env = Env::process();
    let config = WorkerConfig::from_env(&env)?;
    config.metrics.clone().install();
    let clients = Clients::connect(&config).await?;
    let settings = settings(&Setup::new(env, clients.aws.clone())).map_err(Into::into)?;
    let table = DynamoLedger::from_config(&clients.aws, &config.ingest.table_name, config.ingest.index_shards)
        .keeping_records(config.ingest.record_ttl);
    let context = Context::on_aws(&clients, &config, instrument(table), settings)?;
    let ingest = context.ingest.clone();
    let worker = &Worker::new(ingest, clients.api.clone(), config.concurrency, Handler { handle, context });
    run(service_fn(move |event| worker.handle(event))).await
}

/// Your `handle`, on its context: the job the worker runs for each claimed message.
struct Handler<S, H> {
    handle: H,
    context: Context<S>,
}

impl<S, H> Job for Handler<S, H>
where
    H: AsyncFn(&Prediction, &Context<S>) -> Result<Value, BoxError>,
{
    async fn run(&self, prediction: Prediction) -> Result<Value, BoxError> {
        (self.handle)(&prediction, &self.context).await
    }
}
