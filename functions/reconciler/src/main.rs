//! Reconciler Lambda: wiring only, in the shape of every function's `main`: its
//! configuration, its clients, the app on them, run. Invoked on a schedule; each run
//! walks what webhooks left unfinished (see `wriftai_hooks::reconcile`) in [`handler::App`].

mod config;
mod handler;

use lambda_runtime::{Error, run, service_fn};
use wriftai_hooks::adapters::aws_config;
use wriftai_hooks::config::Env;

use crate::config::ReconcilerConfig;
use crate::handler::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = ReconcilerConfig::from_env(&Env::process())?;
    config.metrics.clone().install();
    let aws = aws_config(&config.aws).await;
    let app = &App::on_aws(&aws, config).await?;
    run(service_fn(move |event| app.handle(event))).await
}
