//! One message's trip, as the worker sees it: the trace it carried, and the lag metrics
//! of its unit of work. `QueueWait` (SQS's send to the start of work), `WorkDuration`
//! (the job's own run) and `EndToEnd` (WriftAI's completion to the work done); the
//! receiver measures `CompletionToReceipt`.

use std::time::Duration;

use crate::lag;
use crate::metrics::Metrics;
use crate::trace::{AWS_TRACE_HEADER, TraceHeader};
use aws_lambda_events::event::sqs::SqsMessage;
use time::OffsetDateTime;

/// The trace the message carried (`AWSTraceHeader`: the receiver's, or the
/// reconciler's, invocation), else this invocation's own: the trace its work belongs to,
/// which its span names and the messages it sends carry on.
pub(crate) fn trace_of(record: &SqsMessage, invocation: Option<&TraceHeader>) -> Option<TraceHeader> {
    let carried = record.attributes.get(AWS_TRACE_HEADER).and_then(|header| TraceHeader::parse(header));
    carried.or_else(|| invocation.cloned())
}

/// What one message's unit of work measured; each is `None` where it could not be.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Lags {
    /// From SQS's `SentTimestamp` (SQS's clock, not the sender's word) to `began`.
    pub(crate) queue_wait: Option<Duration>,
    /// The job's run, when it returned (done or failed; not a panic, not a timeout).
    pub(crate) work: Option<Duration>,
    /// From WriftAI's completion to the work done: the first completion only, since a
    /// replay's rerun of old work would report the age of the prediction.
    pub(crate) end_to_end: Option<Duration>,
}

impl Lags {
    /// The queue wait of a message whose work begins at `began`.
    pub(crate) fn received(record: &SqsMessage, began: OffsetDateTime) -> Self {
        let sent = record.attributes.get("SentTimestamp").and_then(|sent| lag::sent_at(sent));
        Self { queue_wait: sent.and_then(|sent| lag::between(sent, began)), ..Self::default() }
    }

    /// The work, done at `done` (for the first time unless `rerun`), of a prediction
    /// WriftAI says it `completed` then ([`lag::completed_at`]).
    pub(crate) fn done(&mut self, completed: Option<OffsetDateTime>, rerun: bool, done: OffsetDateTime) {
        if !rerun {
            self.end_to_end = completed.and_then(|completed| lag::between(completed, done));
        }
    }

    /// Adds what was measured to the batch's document.
    pub(crate) fn add_to(&self, metrics: &mut Metrics) {
        if let Some(wait) = self.queue_wait {
            metrics.duration("QueueWait", wait);
        }
        if let Some(work) = self.work {
            metrics.duration("WorkDuration", work);
        }
        if let Some(end_to_end) = self.end_to_end {
            metrics.duration("EndToEnd", end_to_end);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::prediction::Prediction;
    use serde_json::json;

    use super::*;

    const HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    fn record(attributes: &[(&str, &str)]) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.attributes = attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        record
    }

    #[test]
    fn the_work_belongs_to_the_trace_its_message_carried_else_to_this_invocations() {
        let invocation = TraceHeader::parse("Root=1-6b122b2b-7e84985b80e10a6d3445f0e7").unwrap();
        let carried = trace_of(&record(&[(AWS_TRACE_HEADER, HEADER)]), Some(&invocation)).unwrap();
        assert_eq!(carried.root(), "1-5759e988-bd862e3fe1be46a994272793");
        for attributes in [&[][..], &[(AWS_TRACE_HEADER, "Root=broken")][..]] {
            assert_eq!(trace_of(&record(attributes), Some(&invocation)), Some(invocation.clone()));
            assert_eq!(trace_of(&record(attributes), None), None);
        }
    }

    #[test]
    fn the_queue_wait_runs_from_sqss_send_to_the_start_of_work() {
        let began = OffsetDateTime::from_unix_timestamp(1_700_000_001).unwrap();
        let waited = Lags::received(&record(&[("SentTimestamp", "1700000000750")]), began);
        assert_eq!(waited.queue_wait, Some(Duration::from_millis(250)));
        for sent in ["", "soon", "1800000000000"] {
            assert_eq!(Lags::received(&record(&[("SentTimestamp", sent)]), began).queue_wait, None, "{sent:?}");
        }
        assert_eq!(Lags::received(&record(&[]), began), Lags::default());
    }

    #[test]
    fn end_to_end_runs_from_wriftais_completion_to_the_first_time_the_work_was_done() {
        let body = json!({"id": "0b2d5ae4-1b9a-4a5e-8d1e-3b6f1c2d9e70", "status": "failed",
                          "updated_at": "2023-11-14T22:13:20Z"});
        let prediction = Prediction::from_json(body.to_string().as_bytes()).unwrap();
        let done = OffsetDateTime::from_unix_timestamp(1_700_000_003).unwrap();
        let mut first = Lags::default();
        first.done(lag::completed_at(&prediction), false, done);
        assert_eq!(first.end_to_end, Some(Duration::from_secs(3)));
        let mut rerun = Lags::default();
        rerun.done(lag::completed_at(&prediction), true, done);
        assert_eq!(rerun.end_to_end, None, "a replay's rerun says nothing of the trip");
    }

    #[test]
    fn only_what_was_measured_goes_in_the_document() {
        let lags = Lags { queue_wait: Some(Duration::from_millis(12)), work: None, end_to_end: Some(Duration::ZERO) };
        let mut metrics = Metrics::new("worker");
        lags.add_to(&mut metrics);
        assert_eq!(metrics.durations("QueueWait"), [12.0]);
        assert_eq!(metrics.durations("WorkDuration"), [] as [f64; 0]);
        assert_eq!(metrics.durations("EndToEnd"), [0.0]);
    }
}
