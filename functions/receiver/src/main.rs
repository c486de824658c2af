//! The receiver: behind its Function URL, it checks each WriftAI webhook delivery,
//! records it and enqueues its work, and answers fast. All of it is the engine's
//! (`wriftai_hooks::receiver`); this is its Lambda.

/// One thread: Lambda hands an instance one request at a time, and the receiver only
/// waits on DynamoDB and SQS. Without worker threads every hand-off between the handler
/// and the HTTP connections stays on this thread: a third less CPU per request.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), wriftai_hooks::BoxError> {
    wriftai_hooks::receiver::serve().await
}
