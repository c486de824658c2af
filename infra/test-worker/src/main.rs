//! `test-worker`: the worker's Lambda ([`worker::serve`]) with the crash hooks and the
//! counted table of this crate's library as the job.

use lambda_runtime::Error;
use test_worker::Hooked;

#[tokio::main]
async fn main() -> Result<(), Error> {
    worker::serve(Hooked::on_aws).await
}
