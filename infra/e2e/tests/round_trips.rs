//! Round trips to AWS per path, counted on the wire (one per HTTP attempt) against the
//! local stack. The README's table of round trips is this test's expectations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use e2e::{Stack, payload};
use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::dynamo::DynamoLedger;
use wriftai_hooks::internals::adapters::sqs::SqsQueue;
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::{Ingest, Ingested};
use wriftai_hooks::internals::prediction::Prediction;

#[derive(Debug, Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "round-trip counter"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Counted {
    ingest: Ingest<DynamoLedger, SqsQueue>,
    trips: Counter,
}

impl Counted {
    async fn new(stack: &Stack) -> Self {
        let trips = Counter::default();
        let ddb = aws_sdk_dynamodb::config::Builder::from(&stack.aws).interceptor(trips.clone()).build();
        let sqs = aws_sdk_sqs::config::Builder::from(&stack.aws).interceptor(trips.clone()).build();
        let ingest = Ingest::new(
            stack.ledger_on(aws_sdk_dynamodb::Client::from_conf(ddb)),
            SqsQueue::new(aws_sdk_sqs::Client::from_conf(sqs), &stack.queue_url),
            ActOn::terminal(),
            Duration::from_secs(3600),
        );
        Self { ingest, trips }
    }

    /// Ingests one delivery; returns its outcome and the round trips it took.
    async fn trips(&self, raw: &str) -> (Ingested, usize) {
        let prediction = Prediction::from_json(raw.as_bytes()).unwrap();
        let before = self.trips.0.load(Ordering::SeqCst);
        let outcome = self.ingest.ingest(&prediction, raw, OffsetDateTime::now_utc()).await.unwrap();
        (outcome, self.trips.0.load(Ordering::SeqCst) - before)
    }
}

/// The worker's run of `id`'s `succeeded` work, to done.
async fn done(stack: &Stack, id: wriftai_hooks::internals::prediction::PredictionId) {
    use wriftai_hooks::internals::ports::{Claim, Claims};
    use wriftai_hooks::internals::prediction::Status;
    let (ledger, now) = (stack.ledger(), OffsetDateTime::now_utc());
    let Claim::Acquired { token, .. } =
        ledger.claim(id, &Status::Succeeded, now + time::Duration::minutes(1), now).await.unwrap()
    else {
        panic!("the work is not claimable");
    };
    assert!(ledger.complete(id, &Status::Succeeded, &token, &serde_json::json!({}), &[], now).await.unwrap());
}

#[tokio::test]
async fn each_path_takes_the_documented_number_of_round_trips() {
    let stack = Stack::from_env().await;
    let counted = Counted::new(&stack).await;
    let id = stack.registered().await;

    // `pending`, not acted on, says what the registration says: one read, nothing written.
    assert_eq!(counted.trips(&payload(id, "pending", 0)).await, (Ingested::Known, 1));
    assert_eq!(counted.trips(&payload(id, "started", 0)).await, (Ingested::Recorded { enqueued: false }, 1));
    assert_eq!(counted.trips(&payload(id, "started", 0)).await, (Ingested::Duplicate { enqueued: false }, 1));
    // Record, send (docs/design.md: why no confirmation follows).
    assert_eq!(counted.trips(&payload(id, "succeeded", 3)).await, (Ingested::Recorded { enqueued: true }, 2));
    // A repeat while the work is undone sends again; once it is done, nothing.
    assert_eq!(counted.trips(&payload(id, "succeeded", 3)).await, (Ingested::Duplicate { enqueued: true }, 2));
    done(&stack, id).await;
    assert_eq!(counted.trips(&payload(id, "succeeded", 3)).await, (Ingested::Duplicate { enqueued: false }, 1));
    // A status the worker does not act on, after a later one: nothing kept (`pending`:
    // its read; another: its failed write).
    assert_eq!(counted.trips(&payload(id, "pending", 0)).await, (Ingested::OutOfOrder, 1));
    // One it acts on: the failed transaction, then its event alone, kept as seen.
    assert_eq!(counted.trips(&payload(id, "failed", 3)).await, (Ingested::OutOfOrder, 2));
    assert_eq!(counted.trips(&payload(id, "mystery", 0)).await, (Ingested::OutOfOrder, 1));

    // The failed write, then whether `hooks forget` erased it.
    let stranger = wriftai_hooks::internals::prediction::PredictionId::random();
    assert_eq!(counted.trips(&payload(stranger, "succeeded", 3)).await, (Ingested::UnknownPrediction, 2));
    assert_eq!(counted.trips(&payload(stranger, "mystery", 3)).await, (Ingested::UnknownPrediction, 2));
    assert_eq!(counted.trips(&payload(stranger, "pending", 0)).await, (Ingested::UnknownPrediction, 2));
}
