//! `hooks`: operator commands against the configured table (and, later, WriftAI).
//!
//! - `hooks register <prediction-id>`: records a prediction as ours, so the receiver
//!   accepts its webhooks. Idempotent.

use std::process::ExitCode;

use shared::adapters::{aws_config, dynamo::DynamoLedger};
use shared::config::Env;
use shared::ports::Ledger;
use shared::prediction::PredictionId;
use time::OffsetDateTime;

const USAGE: &str = "usage: hooks register <prediction-id>";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["register", id] => register(id).await,
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("hooks: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn register(id: &str) -> Result<serde_json::Value, String> {
    let id = PredictionId::parse(id).map_err(|e| format!("{id:?}: {e}"))?;
    let table = Env::process()
        .required("TABLE_NAME")
        .map_err(|e| e.to_string())?;
    let ledger = DynamoLedger::from_config(&aws_config().await, table);
    let new = ledger
        .register(id, OffsetDateTime::now_utc())
        .await
        .map_err(|e| error_chain(&e))?;
    Ok(serde_json::json!({"id": id, "registered": new}))
}

/// The error and its sources on one line: enough to act on from a shell.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
