//! `hooks`: operator commands against the configured stack and WriftAI.

mod error;
mod ops;

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
// The platform's TLS roots: the CLI runs on laptops, where a TLS-inspecting proxy may
// sit between it and AWS.
use shared::adapters::{AwsSettings, aws_config, dynamo::DynamoLedger, secrets};
use shared::config::{Env, IngestConfig, webhook_from_env};
use shared::ingest::Ingest;
use shared::ports::Ledger;
use shared::prediction::{PredictionId, Status};
use shared::wriftai::{ApiConfig, CreatePrediction, Webhook, WriftAi};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Operator commands against the configured table and WriftAI, configured by the same
/// variables as the functions (`.local/stack.env` locally).
#[derive(Debug, Parser)]
#[command(name = "hooks", arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Records a prediction as ours, so the receiver accepts its webhooks. Idempotent.
    Register {
        /// The prediction's ID, as WriftAI gave it.
        prediction_id: String,
    },
    /// Creates a prediction with our webhook, records it, prints it as JSON.
    Create {
        /// The model: owner/name, or owner/name:version.
        #[arg(long, value_name = "OWNER/NAME")]
        model: String,
        /// The prediction's input.
        // Hyphen values: a JSON input may be a negative number.
        #[arg(long, value_name = "JSON", default_value = "{}", allow_hyphen_values = true)]
        input: String,
        /// Seconds WriftAI may hold the answer until the prediction is finished.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// A prediction's timeline: registered, each status received, each unit of work,
    /// its records and output objects, why it was closed.
    Inspect {
        prediction_id: String,
        /// The report as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Runs a prediction's work again (even when it was done) and says what it enqueued.
    /// Done work stays done with its result until the new run stores one.
    Replay {
        prediction_id: String,
        /// Only this status's work (default: every status that had work).
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Runs this step again instead of returning its recorded outcome (a step left
        /// unknown, once you know it did not happen). May be given more than once.
        #[arg(long, value_name = "NAME")]
        forget_step: Vec<String>,
    },
    /// Moves messages from the dead-letter queue back to the work queue, saying what each
    /// is; deletes those whose work is done meanwhile. Safe to run twice.
    Redrive {
        /// At most this many messages.
        #[arg(long, default_value_t = 100)]
        max: usize,
        /// Only show what would be done.
        #[arg(long)]
        dry_run: bool,
    },
    /// Unfinished predictions and work (counts, oldest), queue depths, the last
    /// reconciler run.
    Status {
        /// The report as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Prints the signature header WriftAI would send for the body on stdin (for curl tests).
    Sign {
        /// The webhook secret WriftAI signs with.
        // Hyphen values: a secret is any string, a leading `-` included.
        #[arg(long, allow_hyphen_values = true)]
        secret: String,
        /// The header's `t=`; now if not given.
        #[arg(long, value_name = "UNIX-SECONDS", allow_hyphen_values = true)]
        timestamp: Option<i64>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => devcli::exit("hooks", run(cli.command).await),
        Err(refused) => devcli::usage(refused),
    }
}

/// Runs the command and prints what it says: text as it is, a report as JSON.
async fn run(command: Command) -> Result<()> {
    let said = match command {
        Command::Register { prediction_id } => register(&prediction_id).await?,
        Command::Create { model, input, wait } => create(model, &input, wait.map(Duration::from_secs)).await?,
        Command::Sign { secret, timestamp } => sign(&secret, timestamp)?,
        Command::Inspect { prediction_id, json } => {
            let id = parse_id(&prediction_id)?;
            ops::inspect::inspect(&ops::Ops::from_env().await?, id, json).await?
        }
        Command::Replay { prediction_id, status, forget_step } => {
            replay(&prediction_id, status.as_deref(), &forget_step).await?
        }
        Command::Redrive { max, dry_run } => ops::redrive::redrive(&ops::Ops::from_env().await?, max, dry_run).await?,
        Command::Status { json } => ops::status::status(&ops::Ops::from_env().await?, json).await?,
    };
    match said {
        Value::String(text) => println!("{text}"),
        out => println!("{out}"),
    }
    Ok(())
}

fn parse_id(id: &str) -> Result<PredictionId> {
    PredictionId::parse(id).map_err(|e| Error::argument(format!("{id:?}"), e))
}

/// The most steps one replay forgets: they go in one transaction with the reopen, which
/// DynamoDB holds to 100 items.
const FORGET_AT_MOST: usize = 50;

async fn replay(id: &str, status: Option<&str>, forget: &[String]) -> Result<Value> {
    let id = parse_id(id)?;
    let mut forget = forget.to_vec();
    forget.sort();
    forget.dedup();
    if forget.len() > FORGET_AT_MOST {
        let many = format!("{} steps to forget", forget.len());
        return Err(Error::argument("--forget-step", format!("{many}: at most {FORGET_AT_MOST} in one replay")));
    }
    let forget = &forget;
    let status = match status {
        Some(raw) => Some(Status::parse(raw).map_err(|e| Error::argument(format!("--status {raw:?}"), e))?),
        None => None,
    };
    ops::replay(&ops::Ops::from_env().await?, id, status, forget).await
}

async fn register(id: &str) -> Result<Value> {
    let id = parse_id(id)?;
    let env = Env::process();
    // The stack's own shard count: a prediction registered on a shard no reader reads
    // would never be reconciled.
    let config = IngestConfig::from_env(&env)?;
    let ledger = DynamoLedger::from_config(&aws(&env).await?, config.table_name, config.index_shards);
    let new = ledger.register(id, OffsetDateTime::now_utc()).await?;
    Ok(json!({"id": id, "registered": new}))
}

async fn create(model: String, input: &str, wait: Option<Duration>) -> Result<Value> {
    let input: Value = serde_json::from_str(input).map_err(|e| Error::argument("--input is not JSON", e))?;

    let env = Env::process();
    let config = IngestConfig::from_env(&env)?;
    let aws = aws(&env).await?;
    let api = WriftAi::connect(&aws, &ApiConfig::from_env(&env)?)
        .await
        .map_err(|e| Error::aws("reading WRIFTAI_ACCESS_TOKEN from Secrets Manager", e))?;
    let webhook = match webhook_from_env(&env) {
        Some((url, Some(secret))) => Some(Webhook { url, secret: Some(secrets::resolve(&aws, &secret).await?) }),
        Some((url, None)) => Some(Webhook { url, secret: None }),
        None => None,
    };
    let ingest = Ingest::on_aws(&aws, &config);
    let request = CreatePrediction { model, input, webhook, wait };
    let fetched = shared::create::create(&api, &ingest, &request).await?;
    serde_json::from_str(&fetched.raw).map_err(Error::Json)
}

fn sign(secret: &str, timestamp: Option<i64>) -> Result<Value> {
    let timestamp = timestamp.unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp());
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).map_err(Error::Stdin)?;
    Ok(Value::String(shared::signature::sign(secret, timestamp, &body)))
}

async fn aws<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<aws_config::SdkConfig> {
    Ok(aws_config(&AwsSettings::from_env(env)?.system_roots()).await)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("hooks").chain(args.iter().copied())).map(|cli| cli.command)
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn create_takes_an_empty_input_and_no_wait_unless_told() {
        let command = parse(&["create", "--model", "acme/echo"]).unwrap();
        let Command::Create { model, input, wait } = command else { panic!("not create: {command:?}") };
        assert_eq!((model.as_str(), input.as_str(), wait), ("acme/echo", "{}", None));
        let command = parse(&["create", "--wait", "30", "--input", r#"{"prompt": "hi"}"#, "--model", "a/b"]).unwrap();
        let Command::Create { input, wait, .. } = command else { panic!("not create: {command:?}") };
        assert_eq!((input.as_str(), wait), (r#"{"prompt": "hi"}"#, Some(30)));
    }

    #[test]
    fn sign_takes_any_secret_and_an_optional_timestamp() {
        let command = parse(&["sign", "--secret", "-s p a c e s", "--timestamp", "1700000000"]).unwrap();
        let Command::Sign { secret, timestamp } = command else { panic!("not sign: {command:?}") };
        assert_eq!((secret.as_str(), timestamp), ("-s p a c e s", Some(1_700_000_000)));
    }

    #[test]
    fn the_operations_commands_take_their_flags() {
        let Command::Inspect { json, .. } = parse(&["inspect", "x", "--json"]).unwrap() else { panic!() };
        assert!(json);
        let Command::Replay { status, forget_step, .. } =
            parse(&["replay", "x", "--status", "failed", "--forget-step", "notify", "--forget-step", "file /0"])
                .unwrap()
        else {
            panic!()
        };
        assert_eq!((status.as_deref(), forget_step), (Some("failed"), vec!["notify".to_owned(), "file /0".to_owned()]));
        let Command::Redrive { max, dry_run } = parse(&["redrive"]).unwrap() else { panic!() };
        assert_eq!((max, dry_run), (100, false));
        let Command::Redrive { max, dry_run } = parse(&["redrive", "--max", "3", "--dry-run"]).unwrap() else {
            panic!()
        };
        assert_eq!((max, dry_run), (3, true));
    }

    #[tokio::test]
    async fn a_replay_forgetting_more_steps_than_one_write_holds_is_refused_before_anything_is_read() {
        let id = PredictionId::random().to_string();
        let many: Vec<String> = (0..=FORGET_AT_MOST).map(|n| format!("step {n}")).collect();
        let refused = replay(&id, None, &many).await.unwrap_err();
        assert!(matches!(refused, Error::Argument { .. }), "{refused}");
        assert!(devcli::chain(&refused).contains("at most 50"), "{}", devcli::chain(&refused));
    }

    #[test]
    fn a_malformed_command_line_is_refused() {
        for args in [
            &[][..],
            &["register"],
            &["register", "a", "b"],
            &["create", "--input", "{}"],
            &["create", "--model", "a/b", "--wait", "soon"],
            &["sign"],
            &["sign", "--secret", "s", "--timestamp", "now"],
            &["delete", "x"],
            &["inspect"],
            &["replay"],
            &["redrive", "--max", "many"],
            &["status", "extra"],
        ] {
            assert!(parse(args).is_err_and(|e| e.use_stderr()), "{args:?}");
        }
    }
}
