//! `hooks`: operator commands against the configured stack and WriftAI: the command line
//! of `wriftai_hooks::ops`. The binary of `wriftai-hooks-tools` runs [`main`].

mod error;

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;
use time::OffsetDateTime;
use wriftai_hooks::ops::{self, Ops};
use wriftai_hooks::{PredictionId, Status};

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
    /// Runs a prediction's work again (even when it was done) and says what it enqueued;
    /// or, given a filter instead of an ID, the work of every event it selects: counted
    /// first, then replayed at `--rate`. Done work stays done with its result until the
    /// new run stores one.
    Replay {
        /// One prediction's ID; leave it out to replay by filter.
        prediction_id: Option<String>,
        /// Only this status's work (default: every status that had work).
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Runs this step again instead of returning its recorded outcome (a step left
        /// unknown, once you know it did not happen). May be given more than once.
        #[arg(long, value_name = "NAME")]
        forget_step: Vec<String>,
        /// Events received at or after: RFC 3339 (`2026-12-03T00:00:00Z`) or an age
        /// (`90m`, `24h`, `7d`).
        #[arg(long, value_name = "TIME", value_parser = when, conflicts_with = "prediction_id")]
        since: Option<ops::bulk::When>,
        /// Events received at or before (default: now), as `--since`.
        #[arg(long, value_name = "TIME", value_parser = when, conflicts_with = "prediction_id")]
        until: Option<ops::bulk::When>,
        /// Events of this model only.
        #[arg(long, value_name = "OWNER/NAME", value_parser = model, conflicts_with = "prediction_id")]
        model: Option<String>,
        /// Events whose work is in this state only.
        #[arg(long, value_enum, conflicts_with = "prediction_id")]
        work: Option<Work>,
        /// At most this many events sent a second.
        #[arg(long, value_name = "N", default_value_t = 10, value_parser = rate, conflicts_with = "prediction_id")]
        rate: u32,
        /// Only count and list what the filter selects.
        #[arg(long, conflicts_with = "prediction_id")]
        dry_run: bool,
        /// The run's name (default: a digest of the filter): run again, a run sends only
        /// what it has not sent; a new name replays everything the filter selects again.
        #[arg(long, value_name = "NAME", value_parser = run_name, conflicts_with = "prediction_id")]
        run: Option<String>,
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
    /// Erases one prediction: its items in the table, its records and steps, its objects
    /// in the bucket; keeps only a mark that it was forgotten, so later webhooks and
    /// messages for it are dropped. Safe to run twice.
    Forget { prediction_id: String },
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

/// The work states `--work` selects ([`ops::bulk::Work`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Work {
    /// Not done, and its last run failed.
    Failed,
    /// Given up on by the reconciler and sent to the dead-letter queue.
    DeadLettered,
    /// Run to completion.
    Done,
}

impl From<Work> for ops::bulk::Work {
    fn from(work: Work) -> Self {
        match work {
            Work::Failed => Self::Failed,
            Work::DeadLettered => Self::DeadLettered,
            Work::Done => Self::Done,
        }
    }
}

/// The `hooks` command: its command line read from the process, run to its end. The
/// binary of `wriftai-hooks-tools` runs it on a multi-threaded tokio runtime.
pub async fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => match run(cli.command).await {
            // A value only the command could judge: refused as clap refuses, exit 2.
            Err(refused @ Error::Argument { .. }) => devcli::refuse("hooks", &refused),
            result => devcli::exit("hooks", result),
        },
        Err(refused) => devcli::usage(refused),
    }
}

/// Runs the command and prints what it says: text as it is, a report as JSON.
async fn run(command: Command) -> Result<()> {
    let said = match command {
        Command::Register { prediction_id } => {
            let id = parse_id(&prediction_id)?;
            ops::register(&Ops::from_env().await?, id).await?
        }
        Command::Create { model, input, wait } => {
            let input: Value = serde_json::from_str(&input).map_err(|e| Error::argument("--input is not JSON", e))?;
            ops::create(&Ops::from_env().await?, model, input, wait.map(Duration::from_secs)).await?
        }
        Command::Sign { secret, timestamp } => sign(&secret, timestamp)?,
        Command::Inspect { prediction_id, json } => {
            let id = parse_id(&prediction_id)?;
            let report = ops::inspect(&Ops::from_env().await?, id).await?;
            if json { report } else { Value::String(ops::render_inspection(&report)) }
        }
        Command::Replay { prediction_id: Some(id), status, forget_step, .. } => {
            replay(&id, status.as_deref(), &forget_step).await?
        }
        Command::Replay { prediction_id: None, status, forget_step, since, until, model, work, rate, dry_run, run } => {
            let status = status.as_deref().map(parse_status).transpose()?;
            let filter = ops::bulk::Filter { since, until, status, model, work: work.map(Into::into) };
            bulk_replay(&filter, &forget_step, run, rate, dry_run).await?
        }
        Command::Forget { prediction_id } => {
            let id = parse_id(&prediction_id)?;
            ops::forget(&Ops::from_env().await?, id).await?
        }
        Command::Redrive { max, dry_run } => ops::redrive(&Ops::from_env().await?, max, dry_run).await?,
        Command::Status { json } => {
            let report = ops::status(&Ops::from_env().await?).await?;
            if json { report } else { Value::String(ops::render_status(&report)) }
        }
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

/// `--status`: one of WriftAI's statuses. A webhook's unknown status is recorded but never
/// worked, so nothing of it can be replayed: a typo is refused, not matched to nothing.
fn parse_status(raw: &str) -> Result<Status> {
    match Status::parse(raw) {
        Ok(status) if status.rank().is_some() => Ok(status),
        Ok(_) => Err(Error::argument(format!("--status {raw:?}"), "not one of WriftAI's statuses")),
        Err(e) => Err(Error::argument(format!("--status {raw:?}"), e)),
    }
}

/// `--since`/`--until`: an RFC 3339 time, or an age (`<n>s`, `m`, `h` or `d`) before now;
/// kept as typed too, which names the run.
fn when(raw: &str) -> Result<ops::bulk::When, String> {
    let typed = raw.trim().to_owned();
    moment(&typed).map(|at| ops::bulk::When { typed, at })
}

fn moment(raw: &str) -> Result<OffsetDateTime, String> {
    if let Ok(at) = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
        return Ok(at);
    }
    let refused = || format!("{raw:?} is neither an RFC 3339 time nor an age such as 90m, 24h or 7d");
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(refused)?);
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(refused()),
    };
    let age = number.parse::<i64>().ok().and_then(|n| n.checked_mul(seconds)).ok_or_else(refused)?;
    OffsetDateTime::now_utc().checked_sub(time::Duration::seconds(age)).ok_or_else(refused)
}

/// `--model`: `owner/name`, as the table keeps it.
fn model(raw: &str) -> Result<String, String> {
    let well_formed = raw.split_once('/').is_some_and(|(owner, name)| !owner.is_empty() && !name.is_empty());
    if !well_formed || raw.len() > ops::bulk::MODEL_BYTES || raw.contains(':') {
        return Err(format!("{raw:?} is not a model's owner/name"));
    }
    Ok(raw.to_owned())
}

fn rate(raw: &str) -> Result<u32, String> {
    devcli::number(raw, 1..=1000, "a whole number of events a second from 1 to 1000")
}

/// `--run`: up to 64 letters, digits, `.`, `_` and `-`, as a table attribute keeps it.
fn run_name(raw: &str) -> Result<String, String> {
    let fits = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if fits { Ok(raw.to_owned()) } else { Err("must be 1 to 64 letters, digits, '.', '_' or '-'".to_owned()) }
}

/// The most steps one replay forgets: they go in one transaction with the reopen, which
/// DynamoDB holds to 100 items.
const FORGET_AT_MOST: usize = 50;

async fn replay(id: &str, status: Option<&str>, forget: &[String]) -> Result<Value> {
    let id = parse_id(id)?;
    let forget = steps_to_forget(forget)?;
    let forget = &forget;
    let status = status.map(parse_status).transpose()?;
    Ok(ops::replay(&Ops::from_env().await?, id, status, forget).await?)
}

/// The steps to forget, checked as one replay checks them.
fn steps_to_forget(forget: &[String]) -> Result<Vec<String>> {
    let mut forget = forget.to_vec();
    forget.sort();
    forget.dedup();
    if forget.len() > FORGET_AT_MOST {
        let many = format!("{} steps to forget", forget.len());
        return Err(Error::argument("--forget-step", format!("{many}: at most {FORGET_AT_MOST} in one replay")));
    }
    Ok(forget)
}

/// Everything is checked before the table is read: a refused command changes nothing.
async fn bulk_replay(
    filter: &ops::bulk::Filter,
    forget: &[String],
    run: Option<String>,
    rate: u32,
    dry_run: bool,
) -> Result<Value> {
    if filter.is_empty() {
        let what = "replay needs a prediction ID, or a filter (--since, --until, --status, --model, --work)";
        return Err(Error::argument(what, "neither was given"));
    }
    let until = filter.until.as_ref().map_or_else(OffsetDateTime::now_utc, |w| w.at);
    if filter.since.as_ref().is_some_and(|since| since.at > until) {
        let what = if filter.until.is_some() { "--since is after --until" } else { "--since is in the future" };
        return Err(Error::argument(what, "the window is empty"));
    }
    let forget = steps_to_forget(forget)?;
    let name = run.unwrap_or_else(|| filter.run_name(&forget));
    let only = filter.work;
    let run = ops::bulk::Run { name: &name, only, rate, dry_run, forget: &forget, progress: true };
    Ok(ops::bulk::replay(&Ops::from_env().await?, filter, &run).await?)
}

fn sign(secret: &str, timestamp: Option<i64>) -> Result<Value> {
    let timestamp = timestamp.unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp());
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).map_err(Error::Stdin)?;
    Ok(Value::String(wriftai_hooks::internals::signature::sign(secret, timestamp, &body)))
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
        let Command::Replay { prediction_id: None, since, until, model, work, rate, dry_run, run, .. } = parse(&[
            "replay",
            "--since",
            "2026-12-03T00:00:00Z",
            "--until",
            "1h",
            "--model",
            "acme/echo",
            "--work",
            "dead-lettered",
            "--rate",
            "5",
            "--dry-run",
            "--run",
            "fix-1",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(since.map(|w| w.at.unix_timestamp()), Some(1_796_256_000));
        let an_hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
        let until = until.unwrap();
        assert!((until.at - an_hour_ago).abs() < time::Duration::minutes(1), "{until:?}");
        assert_eq!(until.typed, "1h", "kept as typed: it names the run");
        assert_eq!((model.as_deref(), work, rate, dry_run), (Some("acme/echo"), Some(Work::DeadLettered), 5, true));
        assert_eq!(run.as_deref(), Some("fix-1"));
        let Command::Replay { rate, dry_run, .. } = parse(&["replay", "--work", "failed"]).unwrap() else { panic!() };
        assert_eq!((rate, dry_run), (10, false));
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

    #[tokio::test]
    async fn a_bulk_replay_without_a_filter_or_with_an_empty_window_is_refused_before_anything_is_read() {
        let nothing = bulk_replay(&ops::bulk::Filter::default(), &[], None, 10, false).await.unwrap_err();
        assert!(matches!(nothing, Error::Argument { .. }), "{nothing}");
        assert!(devcli::chain(&nothing).contains("a prediction ID, or a filter"), "{}", devcli::chain(&nothing));
        let now = OffsetDateTime::now_utc();
        let at = |at| Some(ops::bulk::When { typed: "t".into(), at });
        let reversed =
            ops::bulk::Filter { since: at(now), until: at(now - time::Duration::hours(1)), ..Default::default() };
        let refused = bulk_replay(&reversed, &[], None, 10, true).await.unwrap_err();
        assert!(devcli::chain(&refused).contains("--since is after --until"), "{}", devcli::chain(&refused));
        let ahead = ops::bulk::Filter { since: at(now + time::Duration::hours(1)), ..Default::default() };
        let refused = bulk_replay(&ahead, &[], None, 10, true).await.unwrap_err();
        assert!(devcli::chain(&refused).contains("--since is in the future"), "{}", devcli::chain(&refused));
        let typo = parse_status("sucseeded").unwrap_err();
        assert!(
            matches!(typo, Error::Argument { .. }) && devcli::chain(&typo).contains("not one of WriftAI's statuses")
        );
        assert_eq!(parse_status("failed").unwrap(), Status::Failed);
        let many: Vec<String> = (0..=FORGET_AT_MOST).map(|n| format!("step {n}")).collect();
        let filter = ops::bulk::Filter { work: Some(ops::bulk::Work::Failed), ..Default::default() };
        assert!(matches!(bulk_replay(&filter, &many, None, 10, false).await, Err(Error::Argument { .. })));
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
            &["forget"],
            &["forget", "a", "b"],
            &["inspect"],
            &["replay", "x", "--since", "1h"],
            &["replay", "x", "--dry-run"],
            &["replay", "--since", "yesterday"],
            &["replay", "--since", "12x"],
            &["replay", "--until", "2026-13-01T00:00:00Z"],
            &["replay", "--model", "echo"],
            &["replay", "--model", "acme/echo:3"],
            &["replay", "--work", "lost"],
            &["replay", "--rate", "0"],
            &["replay", "--rate", "1001"],
            &["replay", "--rate", "fast"],
            &["replay", "--run", "a b"],
            &["replay", "--run", ""],
            &["redrive", "--max", "many"],
            &["status", "extra"],
        ] {
            assert!(parse(args).is_err_and(|e| e.use_stderr()), "{args:?}");
        }
    }
}
