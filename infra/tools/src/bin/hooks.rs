//! `hooks`: operations on a stack: inspect, status, replay, redrive, forget, create, register.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hooks_cli::main().await
}
