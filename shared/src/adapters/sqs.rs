//! The work queue on SQS.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeNameForSends, MessageSystemAttributeValue};

use crate::error::{Error, Result};
use crate::ports::WorkQueue;
use crate::trace::TraceHeader;

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    pub fn from_config(config: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self::new(Client::new(config), url)
    }
}

impl WorkQueue for SqsQueue {
    async fn send(&self, body: String, trace: Option<&TraceHeader>) -> Result<()> {
        // A String attribute: SQS refuses the header as any other type.
        let trace = trace.map(|trace| {
            MessageSystemAttributeValue::builder().data_type("String").string_value(trace.to_string()).build()
        });
        let trace = trace.transpose().map_err(|e| Error::queue("SendMessage", e))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .set_message_system_attributes(
                trace.map(|value| [(MessageSystemAttributeNameForSends::AwsTraceHeader, value)].into()),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| Error::queue("SendMessage", e))
    }
}
