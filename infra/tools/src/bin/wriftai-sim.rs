//! `wriftai-sim`: a local WriftAI: its API, a prediction lifecycle, signed webhooks with retries and chaos.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    wriftai_sim::main().await
}
