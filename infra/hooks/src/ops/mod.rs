//! The operations commands: `inspect`, `replay`, `redrive`, `status`, `forget`. They read the
//! same variables as the functions (`TABLE_NAME`, `QUEUE_URL`, `DLQ_URL`,
//! `OUTPUT_BUCKET`, the region and credentials), so they run against the local stack
//! (`.local/stack.env`) and a deployed one (its outputs) alike.

pub mod bulk;
pub mod forget;
pub mod inspect;
pub mod redrive;
pub mod status;

use serde_json::{Value, json};
use wriftai_hooks::adapters::dynamo::DynamoLedger;
use wriftai_hooks::adapters::sqs::SqsQueue;
use wriftai_hooks::adapters::{AwsSettings, aws_config};
use wriftai_hooks::config::{Env, IngestConfig};
use wriftai_hooks::ingest::Ingest;
use wriftai_hooks::ports::{Claims, Reopened};
use wriftai_hooks::prediction::{PredictionId, Status};

use crate::error::{Error, Result};

/// The stack's table, queues and bucket, with clients for them.
pub struct Ops {
    pub ingest: Ingest<DynamoLedger, SqsQueue>,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// The work queue's dead-letter queue (`DLQ_URL`), for `redrive` and `status`.
    pub dlq_url: Option<String>,
    /// The output bucket (`OUTPUT_BUCKET`), for `inspect`.
    pub bucket: Option<(aws_sdk_s3::Client, String)>,
}

impl Ops {
    pub async fn from_env() -> Result<Self> {
        let env = Env::process();
        let config = IngestConfig::from_env(&env)?;
        let settings = AwsSettings::from_env(&env)?.system_roots();
        let aws = aws_config(&settings).await;
        let bucket = env.optional("OUTPUT_BUCKET").map(|name| {
            let path_style = env.optional("AWS_ENDPOINT_URL_S3").or(env.optional("AWS_ENDPOINT_URL")).is_some();
            let s3 = aws_sdk_s3::config::Builder::from(&aws).force_path_style(path_style).build();
            (aws_sdk_s3::Client::from_conf(s3), name)
        });
        Ok(Self {
            ingest: Ingest::on_aws(&aws, &config),
            sqs: aws_sdk_sqs::Client::new(&aws),
            queue_url: config.queue_url,
            dlq_url: env.optional("DLQ_URL"),
            bucket,
        })
    }

    pub fn ledger(&self) -> &DynamoLedger {
        self.ingest.ledger()
    }

    fn dlq(&self) -> Result<&str> {
        let unset = Error::Unset { var: "DLQ_URL", what: "the stack's DeadLetterQueueUrl output" };
        self.dlq_url.as_deref().ok_or(unset)
    }
}

/// `hooks replay`: runs the prediction's work again, for `status` or for every status
/// that had work, and says what it enqueued. Work that was done stays done, with its
/// result, until the new run stores another. The steps named in `forget` run again;
/// every other step the work recorded returns its recorded outcome.
pub async fn replay(ops: &Ops, id: PredictionId, status: Option<Status>, forget: &[String]) -> Result<Value> {
    let statuses = match status {
        Some(status) => vec![status],
        None => {
            let items = ops.ledger().prediction_items(id).await?;
            let with_work: Vec<Status> = items
                .iter()
                .filter(|item| item.get("enqueue").is_some())
                .filter_map(|item| item["status"].as_str().and_then(|s| Status::parse(s).ok()))
                .collect();
            if items.is_empty() {
                return Err(Error::NoSuchPrediction(id));
            }
            if with_work.is_empty() {
                return Err(Error::NothingToReplay(id));
            }
            with_work
        }
    };
    let mut lines = Vec::new();
    for status in statuses {
        let not_replayed = |why| Err(Error::NotReplayed { id, status: status.clone(), why });
        let line = match ops.ledger().reopen(id, &status, forget, None).await? {
            Reopened::Reopened { payload, was_done } => {
                ops.ingest.resend(id, &status, payload.as_deref()).await?;
                let how = if payload.is_some() { "with its payload" } else { "by reference (fetched from WriftAI)" };
                let before = if was_done {
                    "it was done, and stays done with its result until the new run stores one"
                } else {
                    "it was not done yet"
                };
                let forgotten =
                    if forget.is_empty() { String::new() } else { format!("; steps run again: {forget:?}") };
                format!("{id} {status}: enqueued {how}; {before}{forgotten}")
            }
            Reopened::Running => return not_replayed("a run holds it now; try again when it ends"),
            Reopened::NoWork => return not_replayed("this status has no work (ACT_ON_STATUSES)"),
            Reopened::Missing => return not_replayed("no such event in the table"),
            // Only a bulk replay names its run.
            Reopened::AlreadyReplayed | Reopened::NotSelected => {
                return not_replayed("only a replay by filter is refused so");
            }
        };
        lines.push(line);
    }
    Ok(json!(lines.join("\n")))
}
