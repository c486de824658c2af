//! Receiver Lambda: wiring only, in the shape of every function's `main`: its
//! configuration, its clients, the app on them, run. Serves Function URL requests with
//! [`handler::App`].

mod config;
mod handler;
mod metrics;

use lambda_http::{Error, run, service_fn};
use wriftai_hooks::adapters::aws_config;
use wriftai_hooks::config::Env;

use crate::config::ReceiverConfig;
use crate::handler::App;

/// One thread: Lambda hands an instance one request at a time, and the handler only
/// waits on DynamoDB and SQS. Without worker threads every hand-off between the handler
/// and the HTTP connections stays on this thread: `make bench` measured 30 context
/// switches per request on the multi-thread runtime and 5 on this one, and a third less
/// CPU per request.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = ReceiverConfig::from_env(&Env::process())?;
    config.metrics.clone().install();
    let aws = aws_config(&config.aws).await;
    let app = &App::on_aws(&aws, config).await?;
    run(service_fn(move |request| app.handle(request))).await
}
