//! The receiver: checks each webhook delivery, records it and enqueues its work, and
//! answers fast ([`serve`]).
//!
//! - `checks`: one HTTP delivery's method, path, content type, size, signature and JSON,
//!   checked before anything is written; `signature`: the webhook signatures (scheme
//!   `v1`), verified and made;
//! - `handler`: one Function URL request mapped to one call of the record-and-enqueue
//!   path, and its outcome to an answer; `metrics`: what each delivery counts;
//! - `config`: the receiver's settings, read once at cold start.

#[allow(missing_docs)] // internals: see `crate::internals`
pub(crate) mod checks;
mod config;
#[allow(missing_docs)]
pub(crate) mod handler;
mod metrics;
#[allow(missing_docs)]
pub(crate) mod signature;

use lambda_http::{run, service_fn};

use handler::App;

use crate::adapters::aws_config;
use crate::config::Env;
use crate::error::BoxError;

/// Runs the receiver's Lambda behind its Function URL, and returns only when the
/// runtime stops: reads its configuration (a missing or malformed variable stops the
/// start, named), resolves the webhook secrets, builds its clients once, then answers
/// each delivery. Tracing starts here too (JSON lines when the function's log format is
/// JSON, text otherwise).
///
/// ```no_run
/// // One thread: Lambda hands an instance one request at a time, and the receiver only
/// // waits on DynamoDB and SQS.
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), wriftai_hooks::BoxError> {
///     wriftai_hooks::receiver::serve().await
/// }
/// ```
pub async fn serve() -> Result<(), BoxError> {
    crate::logs::init();
    let config = config::ReceiverConfig::from_env(&Env::process())?;
    config.metrics.clone().install();
    let aws = aws_config(&config.aws).await;
    let app = &App::on_aws(&aws, config).await?;
    run(service_fn(move |request| app.handle(request))).await
}
