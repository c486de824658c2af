//! The SQS event source mapping: receive a batch, invoke the function, delete what succeeded.

// The dead-letter queue needs nothing here: moto (5.x), like SQS, moves a message to the
// queue's `RedrivePolicy` target itself, on the first receive after its receive count
// reached `maxReceiveCount` (found by experiment; moto/sqs/models.py `receive_message`).
// `tests/sqs.rs` holds moto to it, so a moto that stops doing it fails the tests.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use tokio::time::{Instant, sleep};

use crate::batch::settle;
use crate::cli::SqsConfig;
use devcli::chain;

use crate::error::Error;
use crate::event::{Source, sqs_event};
use crate::invoke::Invoker;

/// SQS's longest long poll: an idle mapping makes one request every 20 s.
const LONG_POLL_SECS: i32 = 20;
/// SQS's most messages per ReceiveMessage and per DeleteMessageBatch.
const SQS_MAX_BATCH: usize = 10;
/// How often the batching window looks for more messages.
const WINDOW_POLL: Duration = Duration::from_millis(100);
/// Backoff after a failure, doubling to the cap: Lambda also slows its pollers on errors.
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(16);

pub struct Mapping {
    sqs: Client,
    queue_url: String,
    batch_size: usize,
    window: Duration,
    invoker: Invoker,
    source: Source,
}

impl Mapping {
    /// Reads the queue's ARN once, as Lambda does when the mapping is created.
    pub async fn connect(sqs: Client, config: SqsConfig) -> Result<Self, Error> {
        let queue_url = config.queue_url;
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| Error::QueueAttributes { queue_url: queue_url.clone(), source: Box::new(e.into()) })?;
        let Some(queue_arn) = attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned()
        else {
            return Err(Error::NoQueueArn { queue_url });
        };
        // Lambda stamps the queue's region (the ARN's fourth field) on each record.
        let region = queue_arn.split(':').nth(3).filter(|r| !r.is_empty()).map(str::to_owned);
        let region = region.or_else(|| sqs.config().region().map(ToString::to_string)).unwrap_or_default();
        let invoker = Invoker::new(&config.invoke_url, &config.function)?;
        let source = Source { queue_arn, region };
        Ok(Self { sqs, queue_url, batch_size: config.batch_size, window: config.window, invoker, source })
    }

    /// Runs until the future is dropped. A batch interrupted mid-way comes back after the
    /// visibility timeout, as it does when Lambda's poller stops.
    pub async fn run(&self) {
        tracing::info!(queue_arn = %self.source.queue_arn, function = self.invoker.function(), "polling");
        let mut backoff = BACKOFF_START;
        loop {
            if !self.invoker.reachable().await {
                tracing::warn!(function = self.invoker.function(), "invoke endpoint not reachable; waiting");
                while !self.invoker.reachable().await {
                    sleep(Duration::from_secs(1)).await;
                }
            }
            let ok = match self.collect().await {
                Ok(batch) if batch.is_empty() => true,
                Ok(batch) => self.process(batch).await,
                Err(error) => {
                    tracing::warn!(error = %chain(&error), "receive failed");
                    false
                }
            };
            if ok {
                backoff = BACKOFF_START;
            } else {
                sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_CAP);
            }
        }
    }

    /// One long poll; then, with a batching window, more receives until the batch is full
    /// or the window (counted from the first message) closes.
    async fn collect(&self) -> Result<Vec<Message>, aws_sdk_sqs::Error> {
        let mut batch = self.receive(self.batch_size, LONG_POLL_SECS).await?;
        if batch.is_empty() || self.window.is_zero() {
            return Ok(batch);
        }
        let deadline = Instant::now() + self.window;
        while batch.len() < self.batch_size && Instant::now() < deadline {
            let more = self.receive(self.batch_size - batch.len(), 0).await?;
            if more.is_empty() {
                sleep(WINDOW_POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
            }
            batch.extend(more);
        }
        Ok(batch)
    }

    async fn receive(&self, want: usize, wait_secs: i32) -> Result<Vec<Message>, aws_sdk_sqs::Error> {
        let max = want.clamp(1, SQS_MAX_BATCH) as i32;
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        // A message without an ID or receipt handle could be neither reported nor
        // deleted; SQS never sends one, so it is only logged and left to come back.
        let (messages, broken): (Vec<_>, Vec<_>) = output
            .messages
            .unwrap_or_default()
            .into_iter()
            .partition(|m| m.message_id().is_some() && m.receipt_handle().is_some());
        if !broken.is_empty() {
            tracing::warn!(count = broken.len(), "received messages without an ID or receipt handle; skipped");
        }
        Ok(messages)
    }

    /// Invokes the function with one batch and settles it. Returns whether the batch was
    /// settled (as opposed to failing as a whole).
    async fn process(&self, batch: Vec<Message>) -> bool {
        let ids: Vec<String> = batch.iter().filter_map(|m| m.message_id().map(str::to_owned)).collect();
        let event = match serde_json::to_value(sqs_event(&batch, &self.source)) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(error = %error, "cannot serialise the event");
                return false;
            }
        };
        let function = self.invoker.function();
        match settle(&ids, self.invoker.invoke(&event).await) {
            Ok(settled) => {
                let receipts: Vec<&str> = batch
                    .iter()
                    .filter(|m| m.message_id().is_some_and(|id| settled.delete.iter().any(|d| d == id)))
                    .filter_map(Message::receipt_handle)
                    .collect();
                let deleted = self.delete(&receipts).await;
                tracing::info!(
                    function,
                    received = ids.len(),
                    failed = settled.failed.len(),
                    deleted,
                    failed_ids = ?settled.failed,
                    "batch"
                );
                true
            }
            Err(failure) => {
                tracing::warn!(
                    function,
                    received = ids.len(),
                    failed = ids.len(),
                    deleted = 0,
                    error = %chain(&failure),
                    "batch failed as a whole; all of it comes back after the visibility timeout"
                );
                false
            }
        }
    }

    /// Deletes by receipt handle, ten at a time; returns how many SQS confirmed. One that
    /// is not deleted comes back later, and the worker's claim absorbs the repeat.
    async fn delete(&self, receipts: &[&str]) -> usize {
        let mut deleted = 0;
        for chunk in receipts.chunks(SQS_MAX_BATCH) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(*r).build().ok()
                })
                .collect();
            match self.sqs.delete_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await {
                Ok(output) => {
                    deleted += output.successful().len();
                    for failed in output.failed() {
                        tracing::warn!(code = failed.code(), message = failed.message(), "delete refused");
                    }
                }
                Err(error) => {
                    let error = aws_sdk_sqs::Error::from(error);
                    tracing::warn!(error = %chain(&error), "delete failed");
                }
            }
        }
        deleted
    }
}
