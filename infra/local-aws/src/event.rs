//! The events AWS would send: an SQS batch as Lambda builds it, and a schedule's Scheduled Event.

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// moto's and the AWS documentation's example account: locally there is no real one.
pub const LOCAL_ACCOUNT: &str = "123456789012";

/// Where a batch came from, stamped on every record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub queue_arn: String,
    pub region: String,
}

/// The event Lambda's SQS poller would send for these messages, in the order received.
pub fn sqs_event(messages: &[Message], source: &Source) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages.iter().map(|m| sqs_record(m, source)).collect();
    event
}

fn sqs_record(message: &Message, source: &Source) -> SqsMessage {
    // The types are `#[non_exhaustive]`: filled in field by field from their default.
    let mut record = SqsMessage::default();
    record.message_id = message.message_id().map(str::to_owned);
    record.receipt_handle = message.receipt_handle().map(str::to_owned);
    record.body = message.body().map(str::to_owned);
    record.md5_of_body = message.md5_of_body().map(str::to_owned);
    record.md5_of_message_attributes = message.md5_of_message_attributes().map(str::to_owned);
    record.attributes = message
        .attributes()
        .map(|attrs| attrs.iter().map(|(name, value)| (name.as_str().to_owned(), value.clone())).collect())
        .unwrap_or_default();
    record.message_attributes = message
        .message_attributes()
        .map(|attrs| attrs.iter().map(|(name, value)| (name.clone(), message_attribute(value))).collect())
        .unwrap_or_default();
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(source.queue_arn.clone());
    record.aws_region = Some(source.region.clone());
    record
}

fn message_attribute(value: &MessageAttributeValue) -> SqsMessageAttribute {
    let bytes = |blob: &aws_sdk_sqs::primitives::Blob| {
        let mut data = Base64Data::default();
        data.0 = blob.as_ref().to_vec();
        data
    };
    let mut attribute = SqsMessageAttribute::default();
    attribute.data_type = Some(value.data_type().to_owned());
    attribute.string_value = value.string_value().map(str::to_owned);
    attribute.binary_value = value.binary_value().map(bytes);
    attribute.string_list_values = value.string_list_values().to_vec();
    attribute.binary_list_values = value.binary_list_values().iter().map(bytes).collect();
    attribute
}

/// The "Scheduled Event" a schedule with a default target sends, for the schedule named
/// after the function in the `default` group. `time` is at second precision, as AWS's is.
pub fn scheduled_event(function: &str, region: &str, id: &str, now: OffsetDateTime) -> Value {
    let time = now.replace_nanosecond(0).unwrap_or(now).format(&Rfc3339).unwrap_or_default();
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": LOCAL_ACCOUNT,
        "time": time,
        "region": region,
        "resources": [format!("arn:aws:scheduler:{region}:{LOCAL_ACCOUNT}:schedule/default/{function}")],
        "detail": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::eventbridge::EventBridgeEvent;
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageSystemAttributeName;

    fn source() -> Source {
        Source { queue_arn: "arn:aws:sqs:eu-west-1:123456789012:work".into(), region: "eu-west-1".into() }
    }

    fn message() -> Message {
        let attribute = |data_type: &str| MessageAttributeValue::builder().data_type(data_type);
        Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body(r#"{"prediction_id":"p","status":"succeeded"}"#)
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
            .message_attributes("kind", attribute("String").string_value("work").build().unwrap())
            .message_attributes("raw", attribute("Binary").binary_value(Blob::new(b"hi".to_vec())).build().unwrap())
            .build()
    }

    #[test]
    fn a_record_reads_like_the_one_lambda_sends() {
        let event = serde_json::to_value(sqs_event(&[message()], &source())).unwrap();
        let record = &event["Records"][0];
        assert_eq!(record["messageId"], "m-1");
        assert_eq!(record["receiptHandle"], "rh-1");
        assert_eq!(record["body"], r#"{"prediction_id":"p","status":"succeeded"}"#);
        assert_eq!(record["md5OfBody"], "abc");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["eventSourceARN"], "arn:aws:sqs:eu-west-1:123456789012:work");
        assert_eq!(record["awsRegion"], "eu-west-1");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(record["attributes"]["SentTimestamp"], "1700000000000");
        assert_eq!(record["messageAttributes"]["kind"]["stringValue"], "work");
        assert_eq!(record["messageAttributes"]["kind"]["dataType"], "String");
        assert_eq!(record["messageAttributes"]["raw"]["binaryValue"], "aGk=");
    }

    #[test]
    fn records_keep_the_order_they_were_received_in() {
        let second = Message::builder().message_id("m-2").receipt_handle("rh-2").body("b").build();
        let event = sqs_event(&[message(), second], &source());
        let ids: Vec<_> = event.records.iter().map(|r| r.message_id.as_deref()).collect();
        assert_eq!(ids, [Some("m-1"), Some("m-2")]);
    }

    #[test]
    fn the_sqs_event_round_trips_through_the_type_the_worker_reads() {
        let event = sqs_event(&[message()], &source());
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<SqsEvent>(&text).ok(), Some(event));
    }

    #[test]
    fn the_scheduled_event_is_an_eventbridge_scheduled_event() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let event = scheduled_event("reconciler", "eu-west-1", "id-1", now + time::Duration::milliseconds(250));
        assert_eq!(event["time"], "2023-11-14T22:13:20Z");
        assert_eq!(event["resources"][0], "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/reconciler");
        let parsed: EventBridgeEvent = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.detail_type, "Scheduled Event");
        assert_eq!(parsed.source, "aws.scheduler");
        assert_eq!(parsed.region.as_deref(), Some("eu-west-1"));
    }
}
