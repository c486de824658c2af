//! The work queue on SQS.

use aws_sdk_sqs::Client;

use crate::error::{Error, Result};
use crate::ports::WorkQueue;

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
    async fn send(&self, body: String) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(drop)
            .map_err(|e| Error::queue("SendMessage", e))
    }
}
