//! `local-aws`: the AWS glue of a local stack: the queue's event source mapping and the reconciler's schedule.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    local_aws::main().await
}
