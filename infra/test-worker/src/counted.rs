//! The work's records with a count of the calls that stored them: the test worker's
//! `Outputs`, so the tests can prove from the table that the work's side effect happened
//! once. Production stores a plain record; only test builds count.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use shared::adapters::dynamo::{DynamoLedger, output_sk, prediction_pk, resend};
use shared::error::{Error, Result};
use shared::ports::{Ledger, NewEvent, Outputs, Recorded};
use shared::prediction::{PredictionId, Status};
use time::OffsetDateTime;

/// The functions' table, whose records also keep `writes`: one ID per store call.
#[derive(Clone)]
pub struct Counted {
    ledger: DynamoLedger,
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Counted {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self { ledger: DynamoLedger::new(client.clone(), &table), client, table }
    }
}

impl Outputs for Counted {
    async fn store(&self, id: PredictionId, name: &str, record: &Value) -> Result<()> {
        // A set of call IDs, not a counter: a retry (the SDK's or `resend`'s) sends the
        // same ID again, and a write whose answer was lost was applied before the retry
        // is, so a counter would count one call twice. A set gains it once.
        let write = uuid::Uuid::new_v4().to_string();
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(prediction_pk(id)))
            .key("sk", AttributeValue::S(output_sk(name)))
            .update_expression("SET #record = :record ADD writes :write")
            .expression_attribute_names("#record", "record")
            .expression_attribute_values(":record", AttributeValue::S(record.to_string()))
            .expression_attribute_values(":write", AttributeValue::Ss(vec![write]));
        resend(|| request.clone().send()).await.map(drop).map_err(|e| Error::store("UpdateItem", e))
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
}
