//! The worker: the engine takes each message off the work queue, claims its
//! (prediction, status) and runs your work on it, once (`wriftai_hooks::worker`). Your
//! work is `work.rs`.

mod work;

#[tokio::main]
async fn main() -> Result<(), wriftai_hooks::BoxError> {
    wriftai_hooks::worker::serve(work::Settings::new, work::handle).await
}
