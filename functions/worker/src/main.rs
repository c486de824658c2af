//! Worker Lambda: [`worker::serve`] (configuration, clients, the worker, run) with your
//! work, [`work::Context`], as the job for each claimed message.

use lambda_runtime::Error;
use worker::work;

#[tokio::main]
async fn main() -> Result<(), Error> {
    worker::serve(work::Context::on_aws).await
}
