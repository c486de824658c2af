//! The operations of a deployed stack, as the `hooks` command line runs them: what
//! happened to a prediction ([`inspect`]), how the stack is doing ([`status`]), its work
//! sent again ([`replay`], [`bulk::replay`], [`redrive`]), a prediction erased
//! ([`forget`]), a prediction created or registered as ours ([`create`], [`register`]).
//!
//! Each reads the same variables as the functions (`TABLE_NAME`, `QUEUE_URL`,
//! `DLQ_URL`, `OUTPUT_BUCKET`, `INDEX_SHARDS`, the region and credentials:
//! [`Ops::from_env`]), so it runs against the local stack and a deployed one alike, and
//! answers with a JSON report (text where the command line prints text). Every
//! operation is safe to run twice.

pub mod bulk;
mod error;
mod forget;
mod inspect;
mod redrive;
mod status;

use std::time::Duration;

use serde_json::{Value, json};

pub use error::OpsError;
pub use forget::{MARK_KEPT, forget};
pub use inspect::{inspect, render as render_inspection};
pub use redrive::redrive;
pub use status::{render as render_status, status};

use self::error::{OpsError as Error, Result};
#[cfg(any(test, feature = "test-util"))]
use std::sync::Arc;

use crate::adapters::backend::{Queue, Table};
use crate::adapters::dynamo::DynamoLedger;
#[cfg(any(test, feature = "test-util"))]
use crate::adapters::memory::{MemoryBucket, MemoryDeadLetters};
use crate::adapters::sqs::SqsQueue;
use crate::adapters::{AwsSettings, aws_config, secrets};
use crate::config::{Env, IngestConfig, webhook_from_env};
use crate::ingest::Ingest;
use crate::ports::{Claims, Ledger, Reopened};
use crate::prediction::{PredictionId, Status};
use crate::wriftai::{ApiConfig, CreatePrediction, Webhook, WriftAi};

/// The stack's table, queues and bucket, with clients for them, from the environment.
pub struct Ops {
    pub(crate) ingest: Ingest<Table, Queue>,
    pub(crate) queues: Queues,
    /// The output bucket (`OUTPUT_BUCKET`), for `inspect` and `forget`.
    pub(crate) bucket: Option<OpsBucket>,
    /// The AWS configuration, trusting the platform's roots: operations run on laptops,
    /// where a TLS-inspecting proxy may sit between them and AWS.
    aws: aws_config::SdkConfig,
    env: Env,
}

/// The work queue and its dead-letter queue, as `redrive` and `status` reach them.
pub(crate) enum Queues {
    Sqs {
        client: aws_sdk_sqs::Client,
        queue_url: String,
        /// The work queue's dead-letter queue (`DLQ_URL`).
        dlq_url: Option<String>,
    },
    /// In memory: the work queue is the ingest's; the dead letters are these.
    #[cfg(any(test, feature = "test-util"))]
    Memory(Arc<MemoryDeadLetters>),
}

/// The output bucket, as `inspect` and `forget` reach it.
pub(crate) enum OpsBucket {
    S3 {
        client: aws_sdk_s3::Client,
        name: String,
    },
    #[cfg(any(test, feature = "test-util"))]
    Memory(Arc<MemoryBucket>),
}

impl Ops {
    /// The stack the environment names: `TABLE_NAME` and `QUEUE_URL` are required, the
    /// rest only by the operations that use them.
    pub async fn from_env() -> Result<Self> {
        let env = Env::process();
        let config = IngestConfig::from_env(&env)?;
        let settings = AwsSettings::from_env(&env)?.system_roots();
        let aws = aws_config(&settings).await;
        let bucket = env.optional("OUTPUT_BUCKET").map(|name| {
            let path_style = env.optional("AWS_ENDPOINT_URL_S3").or(env.optional("AWS_ENDPOINT_URL")).is_some();
            let s3 = aws_sdk_s3::config::Builder::from(&aws).force_path_style(path_style).build();
            OpsBucket::S3 { client: aws_sdk_s3::Client::from_conf(s3), name }
        });
        let mut ledger =
            DynamoLedger::from_config(&aws, &config.table_name, config.index_shards).keeping_records(config.record_ttl);
        // What the stack's functions wrote with, as the reconciler keeps it: the walks read
        // every shard ever written, and, with INDEX_SHARDS unset here, the writes (a
        // registration) use the stack's count rather than the default.
        match ledger.learn_shards(false).await {
            Ok(recorded) if recorded > 0 && env.optional("INDEX_SHARDS").is_none() => {
                ledger =
                    DynamoLedger::from_config(&aws, &config.table_name, recorded).keeping_records(config.record_ttl);
                ledger.learn_shards(false).await.map_err(Error::Store)?;
            }
            Ok(_) => {}
            // The command's own calls meet the same failure, and say so.
            Err(err) => tracing::debug!(error = %crate::error::chain(&err), "the stack's shard count not read"),
        }
        let queue = SqsQueue::from_config(&aws, &config.queue_url);
        Ok(Self {
            ingest: Ingest::new(ledger.into(), queue.into(), config.act_on.clone(), config.event_ttl),
            queues: Queues::Sqs {
                client: aws_sdk_sqs::Client::new(&aws),
                queue_url: config.queue_url,
                dlq_url: env.optional("DLQ_URL"),
            },
            bucket,
            aws,
            env,
        })
    }

    /// The operations on an in-memory stack: `ingest`'s table and work queue (in
    /// memory), `dead_letters` for its DLQ, `bucket` for its bucket. For this
    /// repository's simulation. Not part of the API's promise.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-util"))]
    pub fn in_memory(
        ingest: Ingest<Table, Queue>,
        dead_letters: Arc<MemoryDeadLetters>,
        bucket: Option<Arc<MemoryBucket>>,
    ) -> Self {
        let aws = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        Self {
            ingest,
            queues: Queues::Memory(dead_letters),
            bucket: bucket.map(OpsBucket::Memory),
            aws,
            env: Env::of(&[]),
        }
    }

    pub(crate) fn ledger(&self) -> &Table {
        self.ingest.ledger()
    }
}

/// Records `id` as a prediction of ours, so the receiver accepts its webhooks and the
/// reconciler watches it (`hooks register`). Refused for a forgotten prediction: the
/// reconciler would fetch it from WriftAI and keep it all anew.
pub async fn register(ops: &Ops, id: PredictionId) -> Result<Value> {
    if ops.ledger().forgotten(id).await? {
        return Err(Error::NotRegistered { id, why: "it was forgotten (hooks forget); its mark says so for 30 days" });
    }
    let new = ops.ledger().register(id, crate::clock::now()).await?;
    Ok(json!({"id": id, "registered": new}))
}

/// Creates a prediction of `model` on `input` with the stack's webhook
/// (`WRIFTAI_WEBHOOK_URL`, `WRIFTAI_WEBHOOK_SECRET`), records it as ours, and feeds
/// WriftAI's answer through the receiver's path (`hooks create`): the prediction as
/// WriftAI answered. `wait`: how long WriftAI may hold the answer until it is finished.
pub async fn create(ops: &Ops, model: String, input: Value, wait: Option<Duration>) -> Result<Value> {
    let api = WriftAi::connect(&ops.aws, &ApiConfig::from_env(&ops.env)?)
        .await
        .map_err(|e| Error::aws("reading WRIFTAI_ACCESS_TOKEN from Secrets Manager", e))?;
    let webhook = match webhook_from_env(&ops.env) {
        Some((url, Some(secret))) => Some(Webhook { url, secret: Some(secrets::resolve(&ops.aws, &secret).await?) }),
        Some((url, None)) => Some(Webhook { url, secret: None }),
        None => None,
    };
    let request = CreatePrediction { model, input, webhook, wait };
    let fetched = crate::create::create(&api, &ops.ingest, &request).await.map_err(|e| match e {
        crate::create::CreateError::Api(e) => Error::WriftAi(e),
        crate::create::CreateError::NotRecorded { id, source } => Error::NotRecorded { id, source },
    })?;
    serde_json::from_str(&fetched.raw).map_err(|e| Error::WriftAi(crate::wriftai::ApiError::Decode(e)))
}

/// Runs the prediction's work again (`hooks replay <id>`), for `status` or for every status
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
