//! Writes to the local stack's DynamoDB what the create path would have written:
//! registered, unfinished predictions. Plain JSON-protocol calls: DynamoDB Local does
//! not check signatures, and this keeps the AWS SDK out of the harness's build.

use serde_json::{Value, json};

use crate::error::{Error, Result};

pub struct Table {
    pub endpoint: String,
    pub name: String,
    client: reqwest::Client,
}

impl Table {
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| Error::Usage(format!("{name} must be set (source .local/stack.env)")))
        };
        Ok(Table {
            endpoint: var("AWS_ENDPOINT_URL_DYNAMODB")?,
            name: var("TABLE_NAME")?,
            client: reqwest::Client::new(),
        })
    }

    /// Registers each ID as a prediction we created, `age_secs` ago (the reconciler
    /// only looks at predictions older than its minimum age).
    pub async fn register(&self, ids: &[String], age_secs: i64) -> Result<()> {
        let at = time::OffsetDateTime::now_utc() - time::Duration::seconds(age_secs);
        let shards = shards();
        for (n, chunk) in ids.chunks(25).enumerate() {
            let puts: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    // Each its own time, as registrations have, and spread over the shards
                    // the readers read (any shard does: the removal takes whatever is there).
                    let k = n * 25 + i;
                    let since = sortable(at + time::Duration::microseconds(k as i64));
                    json!({"PutRequest": {"Item": {
                        "pk": {"S": format!("PRED#{id}")}, "sk": {"S": "PRED"}, "id": {"S": id},
                        "registered_at": {"S": since}, "open_pk": {"S": format!("OPEN#{}", k % shards)},
                        "open_since": {"S": since},
                    }}})
                })
                .collect();
            let mut request = json!({"RequestItems": {self.name.clone(): puts}});
            // DynamoDB Local may hand back part of a batch; send that part again.
            for _ in 0..10 {
                let answer = self.call("BatchWriteItem", &request).await?;
                match answer.get("UnprocessedItems").and_then(Value::as_object) {
                    Some(left) if !left.is_empty() => request = json!({"RequestItems": left}),
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Records a `succeeded` event needing work for each ID, as the receiver would: the
    /// item the worker's claim takes.
    pub async fn record_work(&self, ids: &[String]) -> Result<()> {
        let at = time::OffsetDateTime::now_utc();
        let shards = shards();
        for (k, id) in ids.iter().enumerate() {
            let since = sortable(at + time::Duration::microseconds(k as i64));
            let item = json!({
                "pk": {"S": format!("PRED#{id}")}, "sk": {"S": "EVENT#succeeded"}, "status": {"S": "succeeded"},
                "received_at": {"S": since}, "enqueue": {"S": "sent"}, "keep_secs": {"N": "3600"},
                "work_pk": {"S": format!("WORK#{}", k % shards)}, "work_since": {"S": since},
            });
            self.call("PutItem", &json!({"TableName": self.name, "Item": item})).await?;
        }
        Ok(())
    }

    /// The result record the work kept for `id` (`RECORD#result`), when kept whole.
    pub async fn result(&self, id: &str) -> Result<Option<Value>> {
        let key = json!({"pk": {"S": format!("PRED#{id}")}, "sk": {"S": "RECORD#result"}});
        let answer = self.call("GetItem", &json!({"TableName": self.name, "Key": key, "ConsistentRead": true})).await?;
        let text = answer["Item"]["record"]["S"].as_str();
        Ok(text.and_then(|text| serde_json::from_str(text).ok()))
    }

    async fn call(&self, op: &str, body: &Value) -> Result<Value> {
        let date = time::OffsetDateTime::now_utc();
        let day = format!("{:04}{:02}{:02}", date.year(), date.month() as u8, date.day());
        let answer = self
            .client
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
            // The access key and region select DynamoDB Local's database: the stack's.
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=local/{day}/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(Error::http(op))?;
        let status = answer.status();
        let text = answer.text().await.map_err(Error::http(op))?;
        if !status.is_success() {
            return Err(Error::Failed(format!("{op}: {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(Error::json(op))
    }
}

/// The stack's shard count (`INDEX_SHARDS`, in .local/stack.env).
fn shards() -> usize {
    std::env::var("INDEX_SHARDS").ok().and_then(|n| n.parse().ok()).filter(|n| *n > 0).unwrap_or(256)
}

/// A time as the stack writes its index sort keys: UTC, nine digits of fraction, so that
/// string order is time order (`wriftai_hooks::internals::adapters::dynamo::rfc3339`).
fn sortable(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (month, nanos) = (u8::from(t.month()), t.nanosecond());
    format!("{:04}-{month:02}-{:02}T{:02}:{:02}:{:02}.{nanos:09}Z", t.year(), t.day(), t.hour(), t.minute(), t.second())
}
