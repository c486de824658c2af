//! The functions' log lines, as lambda_runtime's default subscriber writes them: the
//! level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (INFO by default), JSON lines when the
//! function's log format is JSON (`AWS_LAMBDA_LOG_FORMAT`, the template's
//! `LogFormat: JSON`), text otherwise; and text in colour only on a terminal, since
//! CloudWatch and the local stack's log files would show the escape codes as they are.

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Starts the subscriber, once per process; a second call changes nothing.
pub(crate) fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    let level = level.ok().and_then(|level| LevelFilter::from_str(&level).ok()).unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    let lines = tracing_subscriber::fmt().with_target(false).without_time().with_env_filter(filter);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    // `try_init`: a test, or a `main` with a subscriber of its own, may have set one.
    let _ = if json { lines.json().try_init() } else { lines.with_ansi(std::io::stdout().is_terminal()).try_init() };
}
