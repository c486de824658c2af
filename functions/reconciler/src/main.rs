//! The reconciler: on a schedule, it asks WriftAI about the predictions and the work
//! that webhooks left unfinished, and feeds what it learns through the receiver's own
//! path. All of it is the engine's (`wriftai_hooks::reconciler`); this is its Lambda.

#[tokio::main]
async fn main() -> Result<(), wriftai_hooks::BoxError> {
    wriftai_hooks::reconciler::serve().await
}
