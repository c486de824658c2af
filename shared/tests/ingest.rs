//! The record-and-enqueue rules, on the in-memory ledger and queue.

use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::memory::{MemoryLedger, MemoryQueue};
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::{Ingest, Ingested};
use wriftai_hooks::internals::message::WorkMessage;
use wriftai_hooks::internals::ports::{Claim, Claims, Ledger};
use wriftai_hooks::internals::prediction::{Prediction, PredictionId, Status};

struct World {
    ledger: MemoryLedger,
    queue: MemoryQueue,
}

impl World {
    fn new() -> Self {
        Self { ledger: MemoryLedger::default(), queue: MemoryQueue::default() }
    }

    async fn known(&self) -> PredictionId {
        let id = PredictionId::random();
        assert!(self.ledger.register(id, OffsetDateTime::now_utc()).await.unwrap());
        id
    }

    async fn deliver(&self, id: PredictionId, status: &str) -> wriftai_hooks::internals::error::Result<Ingested> {
        self.deliver_with(id, status, ActOn::terminal()).await
    }

    async fn deliver_with(
        &self,
        id: PredictionId,
        status: &str,
        act_on: ActOn,
    ) -> wriftai_hooks::internals::error::Result<Ingested> {
        let raw = format!(r#"{{"id":"{id}","status":"{status}","output":{{"n":1}}}}"#);
        let prediction = Prediction::from_json(raw.as_bytes()).unwrap();
        let ingest = Ingest::new(&self.ledger, &self.queue, act_on, Duration::from_secs(60));
        ingest.ingest(&prediction, &raw, OffsetDateTime::now_utc()).await
    }

    /// Runs the work of `id`'s `succeeded` event to done, as the worker would.
    async fn work_done(&self, id: PredictionId) {
        let now = OffsetDateTime::now_utc();
        let until = now + time::Duration::minutes(1);
        let Claim::Acquired { token, .. } = self.ledger.claim(id, &Status::Succeeded, until, now).await.unwrap() else {
            panic!("the work is not claimable");
        };
        assert!(self.ledger.complete(id, &Status::Succeeded, &token, &serde_json::json!({}), &[], now).await.unwrap());
    }

    fn status(&self, id: PredictionId) -> Option<String> {
        self.ledger.prediction(id).unwrap().status.map(|s| s.to_string())
    }
}

#[tokio::test]
async fn a_new_terminal_event_is_recorded_and_enqueued_once() {
    let w = World::new();
    let id = w.known().await;
    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Recorded { enqueued: true });
    let messages = w.queue.messages();
    assert_eq!(messages.len(), 1);
    let msg = WorkMessage::decode(&messages[0]).unwrap();
    assert_eq!((msg.prediction_id, msg.status.as_str()), (id, "succeeded"));
    assert!(msg.payload.unwrap().get().contains(r#""output":{"n":1}"#));
    assert_eq!(w.status(id).as_deref(), Some("succeeded"));
    assert!(!w.ledger.prediction(id).unwrap().open, "a terminal prediction leaves the open index");
    assert!(w.ledger.event(id, "succeeded").unwrap().needs_work);
}

#[tokio::test]
async fn a_repeat_sends_the_work_again_until_it_is_done_then_never() {
    let w = World::new();
    let id = w.known().await;
    w.deliver(id, "succeeded").await.unwrap();
    // Nothing says whether the first send happened: the repeat sends again, and the
    // worker's claim absorbs the copy.
    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Duplicate { enqueued: true });
    assert_eq!(w.queue.messages().len(), 2);
    w.work_done(id).await;
    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Duplicate { enqueued: false });
    assert_eq!(w.deliver(id, "failed").await.unwrap(), Ingested::OutOfOrder);
    assert_eq!(w.deliver(id, "failed").await.unwrap(), Ingested::Duplicate { enqueued: false });
    assert_eq!(w.queue.messages().len(), 2, "nothing more sent");
}

/// A review of issue 34: a body's `updated_at` is its sender's text; one longer than a
/// time is not kept, so no field grows the items it is kept in.
#[tokio::test]
async fn an_updated_at_longer_than_a_time_is_not_kept() {
    let w = World::new();
    let ingest = Ingest::new(&w.ledger, &w.queue, ActOn::terminal(), Duration::from_secs(60));
    let long = "9".repeat(wriftai_hooks::internals::ports::UPDATED_AT_KEPT_BYTES + 1);
    for (updated_at, kept) in [("2026-12-05T10:00:00.123456Z", true), (long.as_str(), false)] {
        let id = w.known().await;
        let raw = format!(r#"{{"id":"{id}","status":"succeeded","updated_at":"{updated_at}"}}"#);
        let prediction = Prediction::from_json(raw.as_bytes()).unwrap();
        let recorded = ingest.ingest(&prediction, &raw, OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(recorded, Ingested::Recorded { enqueued: true });
        let event = w.ledger.event(id, "succeeded").unwrap();
        assert_eq!(event.updated_at.is_some(), kept, "{updated_at:?}");
    }
}

/// A review of issue 34: once a run has claimed the work, its message exists (SQS
/// delivers it again while the work fails), so a repeat sends no copy that would run the
/// failing work again at once, use up its files' tries and land in the DLQ on its own.
#[tokio::test]
async fn a_repeat_after_a_run_claimed_the_work_sends_nothing() {
    let w = World::new();
    let id = w.known().await;
    w.deliver(id, "succeeded").await.unwrap();
    let now = OffsetDateTime::now_utc();
    let until = now + time::Duration::minutes(1);
    let Claim::Acquired { token, .. } = w.ledger.claim(id, &Status::Succeeded, until, now).await.unwrap() else {
        panic!("the work is not claimable");
    };
    w.ledger.release(id, &Status::Succeeded, &token, "downstream down", None).await.unwrap();
    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Duplicate { enqueued: false });
    assert_eq!(w.queue.messages().len(), 1, "only the first send");
}

#[tokio::test]
async fn a_non_terminal_event_is_recorded_but_not_enqueued() {
    let w = World::new();
    let id = w.known().await;
    assert_eq!(w.deliver(id, "started").await.unwrap(), Ingested::Recorded { enqueued: false });
    assert!(w.queue.messages().is_empty());
    assert_eq!(w.status(id).as_deref(), Some("started"));
    assert!(w.ledger.prediction(id).unwrap().open);
}

#[tokio::test]
async fn the_statuses_acted_on_are_configurable() {
    let w = World::new();
    let id = w.known().await;
    let act_on: ActOn = "started".parse().unwrap();
    assert_eq!(w.deliver_with(id, "started", act_on.clone()).await.unwrap(), Ingested::Recorded { enqueued: true });
    assert_eq!(w.deliver_with(id, "succeeded", act_on).await.unwrap(), Ingested::Recorded { enqueued: false });
    assert_eq!(w.queue.messages().len(), 1);
}

#[tokio::test]
async fn a_duplicate_delivery_of_done_work_writes_and_enqueues_nothing() {
    let w = World::new();
    let id = w.known().await;
    w.deliver(id, "succeeded").await.unwrap();
    w.work_done(id).await;
    let items = w.ledger.item_count();
    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Duplicate { enqueued: false });
    assert_eq!(w.ledger.item_count(), items);
    assert_eq!(w.queue.messages().len(), 1);
}

#[tokio::test]
async fn an_older_status_after_a_newer_one_does_not_move_the_prediction_back() {
    let w = World::new();
    let id = w.known().await;
    w.deliver(id, "succeeded").await.unwrap();
    assert_eq!(w.deliver(id, "started").await.unwrap(), Ingested::OutOfOrder);
    assert_eq!(w.deliver(id, "pending").await.unwrap(), Ingested::OutOfOrder);
    assert_eq!(w.status(id).as_deref(), Some("succeeded"));
    assert!(w.ledger.event(id, "started").is_none(), "a status the worker does not act on leaves no event");
    assert_eq!(w.queue.messages().len(), 1);
}

#[tokio::test]
async fn a_status_the_worker_does_not_act_on_moves_the_prediction_alone_and_keeps_when_it_came() {
    let w = World::new();
    let id = w.known().await;
    assert_eq!(w.deliver(id, "starting").await.unwrap(), Ingested::Recorded { enqueued: false });
    assert_eq!(w.deliver(id, "starting").await.unwrap(), Ingested::Duplicate { enqueued: false });
    // `pending` after a later status: read, never written (below).
    assert_eq!(w.deliver(id, "pending").await.unwrap(), Ingested::OutOfOrder);
    assert_eq!(w.deliver(id, "started").await.unwrap(), Ingested::Recorded { enqueued: false });
    assert_eq!(w.status(id).as_deref(), Some("started"));
    let seen: Vec<String> = w.ledger.prediction(id).unwrap().seen.iter().map(|(s, _)| s.to_string()).collect();
    assert_eq!(seen, ["starting", "started"]);
    assert!(w.ledger.event(id, "starting").is_none() && w.ledger.event(id, "started").is_none());
    assert!(w.queue.messages().is_empty());
}

/// Issue 34: a `pending` the worker does not act on cost a conditional write, and each
/// repeat a failed one, a write unit each, to say what the registration says. It is now
/// one read: a registered prediction's is answered `known`, after a later status out of
/// order, an unknown one's as unknown, and nothing is written.
/// A worker that acts on `pending` records it as any status it acts on.
#[tokio::test]
async fn a_pending_the_worker_does_not_act_on_is_checked_by_a_read_and_writes_nothing() {
    let w = World::new();
    let id = w.known().await;
    let before = w.ledger.prediction(id).unwrap();
    for _ in 0..2 {
        assert_eq!(w.deliver(id, "pending").await.unwrap(), Ingested::Known);
    }
    assert_eq!(w.ledger.prediction(id).unwrap(), before, "nothing written");
    assert_eq!(w.deliver(PredictionId::random(), "pending").await.unwrap(), Ingested::UnknownPrediction);
    w.deliver(id, "succeeded").await.unwrap();
    assert_eq!(w.deliver(id, "pending").await.unwrap(), Ingested::OutOfOrder);

    let acting = w.known().await;
    let on_pending: ActOn = "pending,succeeded".parse().unwrap();
    assert_eq!(w.deliver_with(acting, "pending", on_pending).await.unwrap(), Ingested::Recorded { enqueued: true });
    assert!(w.ledger.event(acting, "pending").unwrap().needs_work);
}

#[tokio::test]
async fn the_first_terminal_status_absorbs_later_ones() {
    let w = World::new();
    let id = w.known().await;
    w.deliver(id, "succeeded").await.unwrap();
    assert_eq!(w.deliver(id, "failed").await.unwrap(), Ingested::OutOfOrder);
    assert_eq!(w.status(id).as_deref(), Some("succeeded"));
    assert!(!w.ledger.event(id, "failed").unwrap().needs_work);
    assert_eq!(w.queue.messages().len(), 1);
}

#[tokio::test]
async fn an_unknown_prediction_id_writes_and_enqueues_nothing() {
    let w = World::new();
    let before = w.ledger.item_count();
    assert_eq!(w.deliver(PredictionId::random(), "succeeded").await.unwrap(), Ingested::UnknownPrediction);
    assert_eq!(w.deliver(PredictionId::random(), "brand_new").await.unwrap(), Ingested::UnknownPrediction);
    assert_eq!(w.ledger.item_count(), before);
    assert!(w.queue.messages().is_empty());
}

#[tokio::test]
async fn a_delivery_for_a_forgotten_prediction_is_answered_and_brings_nothing_back() {
    let w = World::new();
    let id = w.known().await;
    assert!(matches!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Recorded { enqueued: true }));
    w.ledger.forget(id);
    let before = (w.ledger.item_count(), w.queue.messages().len());
    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Forgotten);
    assert_eq!(w.deliver(id, "failed").await.unwrap(), Ingested::Forgotten);
    let unsigned = Ingest::new(&w.ledger, &w.queue, ActOn::terminal(), Duration::from_secs(60));
    assert_eq!(unsigned.trigger(id, OffsetDateTime::now_utc()).await.unwrap(), Ingested::Forgotten);
    assert_eq!((w.ledger.item_count(), w.queue.messages().len()), before, "nothing written, nothing sent");
    assert!(w.ledger.prediction(id).is_none());
}

#[tokio::test]
async fn an_unknown_status_is_recorded_but_never_acted_on() {
    let w = World::new();
    let id = w.known().await;
    w.deliver(id, "started").await.unwrap();
    assert_eq!(w.deliver(id, "paused_for_gpu").await.unwrap(), Ingested::OutOfOrder);
    assert!(w.ledger.event(id, "paused_for_gpu").is_some());
    assert_eq!(w.status(id).as_deref(), Some("started"));
    assert!(w.queue.messages().is_empty());
}

#[tokio::test]
async fn a_failed_send_is_retried_by_the_next_delivery_exactly_once() {
    let w = World::new();
    let id = w.known().await;
    w.queue.fail_next.store(1, Ordering::SeqCst);
    assert!(w.deliver(id, "succeeded").await.unwrap_err().is_retryable());
    assert!(w.ledger.event(id, "succeeded").unwrap().needs_work);
    assert!(w.queue.messages().is_empty());

    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Duplicate { enqueued: true });
    assert_eq!(w.queue.messages().len(), 1);
    w.work_done(id).await;
    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Duplicate { enqueued: false });
    assert_eq!(w.queue.messages().len(), 1);
}

#[tokio::test]
async fn a_repeat_of_work_the_reconciler_dead_lettered_sends_nothing() {
    use wriftai_hooks::internals::ports::ReconcileStore;
    let w = World::new();
    let id = w.known().await;
    w.deliver(id, "succeeded").await.unwrap();
    w.ledger.give_up_work(id, &Status::Succeeded, "requeued too often", OffsetDateTime::now_utc()).await.unwrap();
    // `hooks redrive` decides when it runs again, not WriftAI's repeats.
    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Duplicate { enqueued: false });
    assert_eq!(w.queue.messages().len(), 1);
}

#[tokio::test]
async fn a_failed_record_writes_nothing_and_the_retry_completes() {
    let w = World::new();
    let id = w.known().await;
    let items = w.ledger.item_count();
    w.ledger.fail_next.store(1, Ordering::SeqCst);
    assert!(w.deliver(id, "succeeded").await.unwrap_err().is_retryable());
    assert_eq!(w.ledger.item_count(), items);
    assert_eq!(w.deliver(id, "succeeded").await.unwrap(), Ingested::Recorded { enqueued: true });
    assert_eq!(w.queue.messages().len(), 1);
}

#[tokio::test]
async fn each_message_carries_the_trace_of_the_call_that_sent_it() {
    let w = World::new();
    let ingest = Ingest::new(&w.ledger, &w.queue, ActOn::terminal(), Duration::from_secs(60));
    let trace = |root: &str| {
        wriftai_hooks::internals::trace::TraceHeader::parse(&format!("Root=1-5759e988-{root};Sampled=1")).unwrap()
    };
    let (first, second) = (trace("bd862e3fe1be46a994272793"), trace("00000000000000000000000a"));
    let (a, b) = (w.known().await, w.known().await);
    for (id, trace) in [(a, &first), (b, &second)] {
        let raw = format!(r#"{{"id":"{id}","status":"succeeded"}}"#);
        let prediction = Prediction::from_json(raw.as_bytes()).unwrap();
        let traced = ingest.traced(Some(trace));
        assert_eq!(traced.trace(), Some(trace));
        assert_eq!(
            traced.ingest(&prediction, &raw, OffsetDateTime::now_utc()).await.unwrap(),
            Ingested::Recorded { enqueued: true }
        );
    }
    // The reconciler's path: a resend carries the trace of the run that sent it.
    ingest
        .traced(Some(&first))
        .resend(b, &wriftai_hooks::internals::prediction::Status::Succeeded, None)
        .await
        .unwrap();
    let roots: Vec<_> = w.queue.sent().into_iter().map(|(_, trace)| trace.map(|t| t.root().to_owned())).collect();
    assert_eq!(roots, [Some(first.root().to_owned()), Some(second.root().to_owned()), Some(first.root().to_owned())]);
    assert_eq!(ingest.trace(), None, "the path itself keeps no call's trace");
}
