//! The ports on one DynamoDB table. Item layout (docs/design.md, "The table"):
//! - prediction: `pk = PRED#<id>`, `sk = PRED`; `status`, `rank`, `updated_at`,
//!   `registered_at`; while unfinished `open_pk`/`open_since` (sparse index `open`);
//!   `closed` when the reconciler gave up on it;
//! - event: `pk = PRED#<id>`, `sk = EVENT#<status>`; `received_at`, `expires_at` (TTL;
//!   an event that needs work has `keep_secs` instead, until its work is done);
//!   for events that need work `enqueue` (`queued`; `pending`/`sent` in older tables),
//!   `keep_secs`, `payload` when the body is small, the claim (`work`, `work_token`,
//!   `work_until`, `work_attempts`, `work_result`) and, until the work is done,
//!   `work_pk`/`work_since` (sparse index `work`);
//! - the body of an event that holds none (`Claims::keep_body`): `sk = BODY#<status>`;
//!   `body` and `expires_at`, written by each run of its work;
//! - the work's records (`RecordTable`): `pk = PRED#<id>`, `sk = RECORD#<name>`; the
//!   record kept (`record`, JSON text; or `record_key`, `bytes`, `sha256` when it is in
//!   the bucket; or `bytes`, `sha256` alone when it was cut), `stored_at`;
//! - the steps the work ran once: `sk = STEP#<status>#<name>`; `state` (`started`,
//!   `finished`), `started_at`, `started_by`, and once finished its outcome, kept as a
//!   record is, and `finished_at`;
//! - a forgotten prediction (`hooks forget`): `sk = FORGOTTEN`, `forgotten_at` and
//!   `expires_at`, and nothing else of it;
//! - reconciler cursors: `pk = RECONCILER`, `sk = CURSOR#<walk>`, and its latest run's
//!   summary, `sk = LAST_RUN`.
//!
//! The sparse indexes' partition key values are `OPEN#<n>` and `WORK#<n>`, `n` the
//! prediction's shard (`wriftai_hooks::shards`); readers also read the single `OPEN` and `WORK`
//! that tables written before sharding hold.

mod claims;
mod ledger;
mod ops;
mod reconcile;
mod records;
mod select;

pub use ops::{Backlog, to_json};
pub use select::Received;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::prediction::{PredictionId, Status};

const PREDICTION_SK: &str = "PRED";
/// What `hooks forget` leaves of a prediction: that it was forgotten, and when.
pub const FORGOTTEN_SK: &str = "FORGOTTEN";
/// The partition of the reconciler's own items: its cursors and its last run.
const RECONCILER_PK: &str = "RECONCILER";
/// The item under [`RECONCILER_PK`] keeping the widest shard count the table was written with.
const SHARDS_SK: &str = "SHARDS";

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
    /// Partition key values per sparse index (`wriftai_hooks::shards`) its writes use.
    shards: u16,
    /// The most shards this table was ever written with, as far as this ledger learned
    /// ([`DynamoLedger::learn_shards`]): what its walks read, so an `INDEX_SHARDS`
    /// lowered never hides what was written in the shards above it.
    widest: Arc<AtomicU16>,
    /// How long the work's records and steps are kept after their last write; `None`
    /// keeps them.
    record_ttl: Option<Duration>,
    /// Called with a record's name before each put, which then also counts itself
    /// ([`DynamoLedger::counting_stores`]).
    counting_stores: Option<fn(&str)>,
}

impl DynamoLedger {
    /// The ledger on `table`, its indexes of `shards` shards (`INDEX_SHARDS`): every
    /// writer and reader of one table must agree on it, so it is never defaulted here.
    pub fn new(client: Client, table: impl Into<String>, shards: u16) -> Self {
        let shards = shards.max(1);
        let widest = Arc::new(AtomicU16::new(shards));
        Self { client, table: table.into(), shards, widest, record_ttl: None, counting_stores: None }
    }

    /// Every put of a record calls `before` with its name, then adds an ID of its own to
    /// the record's `writes`, so a test can count the calls that stored it from the
    /// table. The repository's test worker only: not part of the API's promise.
    #[doc(hidden)]
    pub fn counting_stores(self, before: fn(&str)) -> Self {
        Self { counting_stores: Some(before), ..self }
    }

    /// Records and steps written from now on expire `ttl` after their write (DynamoDB
    /// TTL, `RECORD_TTL_DAYS`); `None` keeps them.
    pub fn keeping_records(self, ttl: Option<Duration>) -> Self {
        Self { record_ttl: ttl, ..self }
    }

    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>, shards: u16) -> Self {
        Self::new(Client::new(config), table, shards)
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The shard count its walks read: the widest this table was ever written with, as
    /// far as it learned, and never fewer than its own.
    pub fn walked_shards(&self) -> u16 {
        self.widest.load(Ordering::SeqCst).max(self.shards)
    }

    /// Learns the widest shard count this table was ever written with (kept in one item,
    /// `RECONCILER`/`SHARDS`), and with `record` first records its own when it is wider:
    /// the reconciler does at the start of each run, `hooks` only reads it. Returns the
    /// count the item holds now (0 when none was ever recorded). One write (or read) a
    /// call.
    pub async fn learn_shards(&self, record: bool) -> crate::error::Result<u16> {
        let stored = |item: Option<&Item>| -> u16 {
            item.and_then(|item| item.get("shards")?.as_n().ok()?.parse().ok()).unwrap_or(0)
        };
        let learned = if record {
            let write = self
                .update(RECONCILER_PK.to_owned(), SHARDS_SK)
                .update_expression("SET shards = :n")
                .condition_expression("attribute_not_exists(shards) OR shards < :n")
                .expression_attribute_values(":n", n(self.shards))
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                );
            match resend(|| write.clone().send()).await {
                Ok(_) => self.shards,
                Err(err) => match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => stored(failed.item()),
                    _ => return Err(crate::error::Error::store("UpdateItem", err)),
                },
            }
        } else {
            let out = self
                .get(RECONCILER_PK, SHARDS_SK)
                .send()
                .await
                .map_err(|e| crate::error::Error::store("GetItem", e))?;
            stored(out.item())
        };
        self.widest.fetch_max(learned, Ordering::SeqCst);
        Ok(learned)
    }

    /// An `UpdateItem` of one item of the table.
    fn update(&self, pk: String, sk: impl Into<String>) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).key("pk", s(pk)).key("sk", s(sk))
    }

    /// A consistent `GetItem` of one item of the table.
    fn get(&self, pk: impl Into<String>, sk: impl Into<String>) -> GetItemFluentBuilder {
        self.client.get_item().table_name(&self.table).key("pk", s(pk)).key("sk", s(sk)).consistent_read(true)
    }

    /// The body kept for an event's work, and where: the event's own `payload` (`event`,
    /// read already, when given), else the `BODY#` item a run of it wrote, while it is
    /// live at `now`.
    async fn kept_body(
        &self,
        id: PredictionId,
        status: &Status,
        event: Option<&Item>,
        now: OffsetDateTime,
    ) -> crate::error::Result<Option<(String, BodyIn)>> {
        if let Some(payload) = event.and_then(|item| string(item, "payload")) {
            return Ok(Some((payload.to_owned(), BodyIn::Event)));
        }
        let read = self.get(prediction_pk(id), body_sk(status)).send().await;
        let out = read.map_err(|e| crate::error::Error::store("GetItem", e))?;
        let body = out.item().filter(|item| live(item, now)).and_then(|item| string(item, "body"));
        Ok(body.map(|body| (body.to_owned(), BodyIn::Apart)))
    }

    /// An `UpdateItem` of a prediction's event record.
    fn update_event(&self, id: PredictionId, status: &Status) -> UpdateItemFluentBuilder {
        self.update(prediction_pk(id), event_sk(status))
    }

    /// `update` setting the event's `received` index key, if it has none yet: a run's end
    /// (done, failed), the reconciler's requeue or its give-up enters it there, in the
    /// write that records it, so the index is written once for work that ends well. Its
    /// expression goes in `SET` as [`ENTER_RECEIVED`].
    fn entering_received(&self, id: PredictionId, update: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
        update.expression_attribute_values(":recv_pk", s(crate::shards::Index::Received.partition(id, self.shards)))
    }
}

/// What [`DynamoLedger::entering_received`] sets, one of a `SET`'s clauses.
const ENTER_RECEIVED: &str = "recv_pk = if_not_exists(recv_pk, :recv_pk)";

/// The outcome of a conditional update: `Ok(false)` when its condition did not hold.
fn conditional<T>(result: Result<T, SdkError<UpdateItemError, HttpResponse>>) -> crate::error::Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failed(&err) => Ok(false),
        Err(err) => Err(crate::error::Error::store("UpdateItem", err)),
    }
}

/// Sends of one write, all told, while its outcome stays unknown, when no deadline is
/// set (the `hooks` CLI, tests).
const SENDS: u32 = 3;

/// Sends a write that is safe to apply twice (it carries a claim token or a write ID),
/// and sends it again until its outcome is known. The SDK retries a call whose answer
/// was lost, but only so often (three attempts, from a retry quota the whole process
/// shares), and the error it then returns is its last attempt's: a throttle or a 500
/// there says nothing of an earlier attempt whose answer was lost, which may have been
/// applied. Only the same write again can tell. Without this, a claim applied that way
/// is held until the deadline by a run that believes it failed, and a completion lost
/// that way makes the work run again. A failed condition is an answer (it says what the
/// item holds, which the caller reads) and is returned at once; so is a validation
/// error (the write can never be applied: sending it again changes nothing).
///
/// Within an invocation's deadline (`deadline::within`), it spends the time left, and
/// no more: each send is cut at the deadline, and another is made while one more try
/// (`ATTEMPT_TIMEOUT`) fits. Without one, it makes at most `SENDS`.
pub async fn resend<T, E, Fut>(mut send: impl FnMut() -> Fut) -> Result<T, SdkError<E, HttpResponse>>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let deadline = crate::deadline::current();
    let mut sent = 0;
    loop {
        sent += 1;
        let result = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, send()).await {
                Ok(result) => result,
                Err(_) => return Err(SdkError::timeout_error("the invocation's deadline came first")),
            },
            None => send().await,
        };
        let pause = Duration::from_millis(100 * u64::from(sent)).min(Duration::from_secs(1));
        let another = match deadline {
            Some(deadline) => tokio::time::Instant::now() + pause + super::ATTEMPT_TIMEOUT <= deadline,
            None => sent < SENDS,
        };
        match result {
            Err(err) if another && !is_condition_failed(&err) && !is_invalid(&err) => {
                tracing::warn!(sent, error = %crate::error::chain(&err), "a write's outcome is unknown; sending it again");
                tokio::time::sleep(pause).await;
            }
            result => return result,
        }
    }
}

pub fn prediction_pk(id: PredictionId) -> String {
    format!("PRED#{id}")
}

pub fn event_sk(status: &Status) -> String {
    format!("EVENT#{status}")
}

/// Where a body is kept: with its event, or apart (`BODY#<status>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyIn {
    Event,
    Apart,
}

pub fn body_sk(status: &Status) -> String {
    format!("BODY#{status}")
}

pub fn record_sk(name: &str) -> String {
    format!("RECORD#{}", crate::records::item_name(name))
}

pub fn step_sk(status: &Status, name: &str) -> String {
    format!("STEP#{status}#{}", crate::records::item_name(name))
}

/// `t` in RFC 3339, in UTC with all nine digits of its fraction: the index sort keys
/// are these strings, and only a fixed width makes DynamoDB's string order their time
/// order (`…:00Z`, `…:00.52Z`, `…:00.5Z` sort so as the trimmed form writes them).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (month, nanos) = (u8::from(t.month()), t.nanosecond());
    format!("{:04}-{month:02}-{:02}T{:02}:{:02}:{:02}.{nanos:09}Z", t.year(), t.day(), t.hour(), t.minute(), t.second())
}

fn parse_rfc3339(item: &Item, name: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(item.get(name)?.as_s().ok()?, &Rfc3339).ok()
}

/// Whether `item` has not passed its `expires_at` (unix seconds) at `now`: DynamoDB's TTL
/// deletes days late, so what is past its time counts as gone before it is.
fn live(item: &Item, now: OffsetDateTime) -> bool {
    let expires = item.get("expires_at").and_then(|v| v.as_n().ok()?.parse::<i64>().ok());
    expires.is_none_or(|at| at > now.unix_timestamp())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

/// A conditional write whose condition did not hold (not a failure of the call).
fn is_condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// A request DynamoDB refuses as it is (an item over 400 KB, say): never retryable.
fn is_invalid<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ValidationException")
}

/// An index page's position as an opaque string: the key attributes, all strings here.
fn encode_cursor(key: Option<&Item>) -> Option<String> {
    let key: HashMap<&str, &str> =
        key?.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_s().ok()?.as_str()))).collect();
    serde_json::to_string(&key).ok()
}

fn decode_cursor(cursor: Option<&str>) -> Option<Item> {
    let key: HashMap<String, String> = serde_json::from_str(cursor?).ok()?;
    Some(key.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
}

/// An index's name and its key attributes.
fn index_keys(index: crate::shards::Index) -> (&'static str, &'static str, &'static str) {
    match index {
        crate::shards::Index::Open => ("open", "open_pk", "open_since"),
        crate::shards::Index::Work => ("work", "work_pk", "work_since"),
        crate::shards::Index::Received => ("received", "recv_pk", "received_at"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::types::error::{ConditionalCheckFailedException, ProvisionedThroughputExceededException};
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    type Sent = Result<(), SdkError<UpdateItemError, HttpResponse>>;

    #[test]
    fn index_times_sort_as_strings_in_the_order_of_time() {
        let base = OffsetDateTime::parse("2026-12-03T10:00:00Z", &Rfc3339).unwrap();
        let times: Vec<OffsetDateTime> = [0, 500_000_000, 520_000_000, 999_999_999, 1_000_000_000]
            .into_iter()
            .map(|ns| base + time::Duration::nanoseconds(ns))
            .collect();
        let strings: Vec<String> = times.iter().map(|t| rfc3339(*t)).collect();
        let mut sorted = strings.clone();
        sorted.sort();
        assert_eq!(sorted, strings, "string order is time order");
        assert_eq!(strings[1], "2026-12-03T10:00:00.500000000Z");
        // Read back as the same time, and from another offset written in UTC.
        assert_eq!(OffsetDateTime::parse(&strings[2], &Rfc3339).unwrap(), times[2]);
        let east = times[2].to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap());
        assert_eq!(rfc3339(east), strings[2]);
    }

    /// `resend` over a call that fails with `fail` on its first `failures` sends: how many
    /// sends it made, and whether it ended well.
    async fn sends(failures: u32, fail: fn() -> SdkError<UpdateItemError, HttpResponse>) -> (u32, bool) {
        let calls = AtomicU32::new(0);
        let result: Sent = resend(|| async {
            let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if call <= failures { Err(fail()) } else { Ok(()) }
        })
        .await;
        (calls.into_inner(), result.is_ok())
    }

    fn answer(err: UpdateItemError) -> SdkError<UpdateItemError, HttpResponse> {
        SdkError::service_error(err, HttpResponse::new(400.try_into().unwrap(), SdkBody::empty()))
    }

    fn lost() -> SdkError<UpdateItemError, HttpResponse> {
        SdkError::dispatch_failure(ConnectorError::io("connection closed before message completed".into()))
    }

    /// What the SDK returns when its last attempt was throttled, whatever became of the
    /// attempts before it.
    fn throttled() -> SdkError<UpdateItemError, HttpResponse> {
        answer(UpdateItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder().message("slow down").build(),
        ))
    }

    fn condition_failed() -> SdkError<UpdateItemError, HttpResponse> {
        answer(UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .meta(ErrorMetadata::builder().code("ConditionalCheckFailedException").build())
                .build(),
        ))
    }

    #[tokio::test]
    async fn a_write_whose_outcome_is_unknown_is_sent_again_until_it_is_known() {
        assert_eq!(sends(1, lost).await, (2, true));
        assert_eq!(sends(1, throttled).await, (2, true));
        assert_eq!(sends(SENDS - 1, lost).await, (SENDS, true));
        // Bounded: the last unknown outcome is the caller's.
        assert_eq!(sends(SENDS, lost).await, (SENDS, false));
    }

    fn invalid() -> SdkError<UpdateItemError, HttpResponse> {
        answer(UpdateItemError::generic(
            ErrorMetadata::builder()
                .code("ValidationException")
                .message("Item size has exceeded the maximum allowed size")
                .build(),
        ))
    }

    #[tokio::test]
    async fn within_a_deadline_a_write_is_sent_again_while_time_is_left_and_never_past_it() {
        let started = tokio::time::Instant::now();
        let deadline = started + std::time::Duration::from_secs(4);
        let (calls, result) = crate::deadline::within(deadline, async {
            let calls = AtomicU32::new(0);
            let result: Sent = resend(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(lost())
            })
            .await;
            (calls.into_inner(), result)
        })
        .await;
        assert!(result.is_err() && calls > SENDS, "kept sending while a try fitted: {calls} sends");
        assert!(tokio::time::Instant::now() < deadline, "and stopped before the deadline");

        // A send that hangs is cut at the deadline.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
        let hung: Sent = crate::deadline::within(deadline, resend(std::future::pending)).await;
        assert!(hung.is_err());
        let late = tokio::time::Instant::now() - deadline;
        assert!(late < std::time::Duration::from_millis(200), "returned {late:?} past its deadline");
    }

    #[tokio::test]
    async fn a_failed_condition_a_refused_write_or_a_success_is_sent_once() {
        assert_eq!(sends(1, condition_failed).await, (1, false));
        assert_eq!(sends(1, invalid).await, (1, false));
        assert_eq!(sends(0, lost).await, (1, true));
    }
}
