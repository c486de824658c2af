//! `hooks`: operator commands against the configured table and WriftAI.
//!
//! - `hooks register <prediction-id>`: records a prediction as ours, so the receiver
//!   accepts its webhooks. Idempotent.
//! - `hooks create --model <owner/name> --input '<json>' [--wait <secs>]`: creates a
//!   prediction with our webhook, records it, prints it as JSON.
//! - `hooks sign --secret <secret> [--timestamp <unix>]`: prints the signature header
//!   WriftAI would send for the body on stdin (for curl tests).

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
// The platform's TLS roots: the CLI runs on laptops, where a TLS-inspecting proxy may
// sit between it and AWS.
use shared::adapters::{aws_config, dynamo::DynamoLedger, secrets, sqs::SqsQueue, tls::TrustRoots};
use shared::config::{Env, IngestConfig, webhook_from_env};
use shared::error::chain as error_chain;
use shared::ingest::Ingest;
use shared::ports::Ledger;
use shared::prediction::PredictionId;
use shared::wriftai::{ApiConfig, CreatePrediction, Webhook, WriftAi};
use time::OffsetDateTime;

const USAGE: &str = "usage:
  hooks register <prediction-id>
  hooks create --model <owner/name> --input '<json>' [--wait <secs>]
  hooks sign --secret <secret> [--timestamp <unix-seconds>] < body";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("register") if args.len() == 2 => register(&args[1]).await,
        Some("create") => create(&args[1..]).await,
        Some("sign") => sign(&args[1..]),
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(Value::String(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("hooks: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn register(id: &str) -> Result<Value, String> {
    let id = PredictionId::parse(id).map_err(|e| format!("{id:?}: {e}"))?;
    let table = Env::process().required("TABLE_NAME").map_err(|e| e.to_string())?;
    let ledger = DynamoLedger::from_config(&aws_config(TrustRoots::System).await, table);
    let new = ledger.register(id, OffsetDateTime::now_utc()).await.map_err(|e| error_chain(&e))?;
    Ok(json!({"id": id, "registered": new}))
}

async fn create(args: &[String]) -> Result<Value, String> {
    let model = flag(args, "--model").ok_or(USAGE)?;
    let input: Value =
        serde_json::from_str(flag(args, "--input").unwrap_or("{}")).map_err(|e| format!("--input is not JSON: {e}"))?;
    let wait = flag(args, "--wait").map(|s| s.parse().map(Duration::from_secs)).transpose().map_err(|_| USAGE)?;

    let env = Env::process();
    let config = IngestConfig::from_env(&env).map_err(|e| e.to_string())?;
    let aws = aws_config(TrustRoots::System).await;
    let mut api_config = ApiConfig::from_env(&env).map_err(|e| e.to_string())?;
    api_config.token = secrets::resolve(&aws, &api_config.token).await.map_err(|e| error_chain(&e))?;
    let api = WriftAi::new(api_config).map_err(|e| error_chain(&e))?;
    let webhook = match webhook_from_env(&env) {
        Some((url, Some(secret))) => {
            Some(Webhook { url, secret: Some(secrets::resolve(&aws, &secret).await.map_err(|e| error_chain(&e))?) })
        }
        Some((url, None)) => Some(Webhook { url, secret: None }),
        None => None,
    };
    let ingest = Ingest::new(
        DynamoLedger::from_config(&aws, &config.table_name),
        SqsQueue::from_config(&aws, &config.queue_url),
        config.act_on,
        config.event_ttl,
    );
    let request = CreatePrediction { model: model.to_owned(), input, webhook, wait };
    let fetched = shared::create::create(&api, &ingest, &request).await.map_err(|e| error_chain(&e))?;
    serde_json::from_str(&fetched.raw).map_err(|e| e.to_string())
}

fn sign(args: &[String]) -> Result<Value, String> {
    let secret = flag(args, "--secret").ok_or(USAGE)?;
    let timestamp = match flag(args, "--timestamp") {
        Some(t) => t.parse().map_err(|_| USAGE)?,
        None => OffsetDateTime::now_utc().unix_timestamp(),
    };
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).map_err(|e| e.to_string())?;
    Ok(Value::String(shared::signature::sign(secret, timestamp, &body)))
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}
