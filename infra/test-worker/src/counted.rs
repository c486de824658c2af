//! The work's records with a count of the calls that stored them: the test worker's
//! `RecordTable`, so the tests can prove from the table that the work's side effect
//! happened once. Production stores a plain record; only test builds count. It is also
//! where the `panic_before_store` hook fires: after the work's steps, before its result
//! is stored.

use aws_sdk_dynamodb::types::AttributeValue;
use wriftai_hooks::adapters::dynamo::{DynamoLedger, prediction_pk, record_sk, resend};
use wriftai_hooks::error::{Error, Result};
use wriftai_hooks::ports::{CheckAsk, Kept, Ledger, Lookup, NewEvent, RecordTable, Recorded, StepKey, StepState};
use wriftai_hooks::prediction::{PredictionId, Status};
use time::OffsetDateTime;

/// The functions' table, whose records also keep `writes`: one ID per store call.
#[derive(Clone)]
pub struct Counted {
    ledger: DynamoLedger,
}

impl Counted {
    pub fn new(ledger: DynamoLedger) -> Self {
        Self { ledger }
    }
}

impl RecordTable for Counted {
    async fn put_record(&self, id: PredictionId, name: &str, record: &Kept) -> Result<()> {
        if name == "result" {
            crate::before_store();
        }
        // A set of call IDs, not a counter: a retry (the SDK's or `resend`'s) sends the
        // same ID again, and a write whose answer was lost was applied before the retry
        // is, so a counter would count one call twice. A set gains it once.
        let write = uuid::Uuid::new_v4().to_string();
        let now = wriftai_hooks::adapters::dynamo::rfc3339(OffsetDateTime::now_utc());
        let request = self
            .ledger
            .kept_write(prediction_pk(id), record_sk(name), record, "stored_at = :now", "writes :write")
            .expression_attribute_values(":now", AttributeValue::S(now))
            .expression_attribute_values(":write", AttributeValue::Ss(vec![write]));
        resend(|| request.clone().send()).await.map(drop).map_err(|e| Error::store("UpdateItem", e))
    }

    async fn get_record(&self, id: PredictionId, name: &str) -> Result<Option<Kept>> {
        self.ledger.get_record(id, name).await
    }

    async fn begin_step(&self, step: StepKey<'_>, now: OffsetDateTime) -> Result<StepState> {
        self.ledger.begin_step(step, now).await
    }

    async fn note_try(&self, step: StepKey<'_>, try_id: &str) -> Result<()> {
        self.ledger.note_try(step, try_id).await
    }

    async fn finish_step(&self, step: StepKey<'_>, outcome: &Kept, now: OffsetDateTime) -> Result<()> {
        self.ledger.finish_step(step, outcome, now).await
    }

    async fn forget_step(&self, step: StepKey<'_>) -> Result<()> {
        self.ledger.forget_step(step).await
    }
}

impl Ledger for Counted {
    async fn register(&self, id: PredictionId, at: OffsetDateTime) -> Result<bool> {
        self.ledger.register(id, at).await
    }

    async fn record(&self, event: &NewEvent<'_>) -> Result<Recorded> {
        self.ledger.record(event).await
    }

    async fn mark_enqueued(&self, id: PredictionId, status: &Status) -> Result<()> {
        self.ledger.mark_enqueued(id, status).await
    }

    async fn lookup(&self, id: PredictionId) -> Result<Lookup> {
        self.ledger.lookup(id).await
    }

    async fn forgotten(&self, id: PredictionId) -> Result<bool> {
        self.ledger.forgotten(id).await
    }

    async fn ask_check(&self, id: PredictionId, now: OffsetDateTime, window: std::time::Duration) -> Result<CheckAsk> {
        self.ledger.ask_check(id, now, window).await
    }

    async fn check_sent(&self, id: PredictionId) -> Result<()> {
        self.ledger.check_sent(id).await
    }

    async fn check_begun(&self, id: PredictionId) -> Result<()> {
        self.ledger.check_begun(id).await
    }
}
