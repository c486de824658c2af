//! Unsigned deliveries (`ALLOW_UNSIGNED_WEBHOOKS=true`): anyone who knows a prediction's
//! ID can post one, so a delivery is only a trigger. What the work acts on is what
//! WriftAI's `GET` says.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::memory::{MemoryLedger, MemoryQueue, MemoryWriftAi};
use wriftai_hooks::internals::claim::{Outcome, run};
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::{CHECK_GAP, Ingest, Ingested};
use wriftai_hooks::internals::message::{Message, WorkMessage};
use wriftai_hooks::internals::ports::Ledger;
use wriftai_hooks::internals::prediction::{Prediction, PredictionId};

/// A registered prediction WriftAI says is `started`, on in-memory adapters.
async fn started() -> (MemoryLedger, MemoryQueue, MemoryWriftAi, PredictionId) {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let id = PredictionId::random();
    ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();
    source.set(&json!({"id": id.to_string(), "status": "started"}).to_string());
    (ledger, queue, source, id)
}

/// The checks on `queue`.
fn checks_in(queue: &MemoryQueue) -> usize {
    queue.messages().iter().filter(|m| matches!(Message::decode(m), Ok(Message::Check { .. }))).count()
}

#[tokio::test]
async fn a_forged_succeeded_then_the_genuine_failed_ends_as_wriftai_says() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(3600));
    let id = PredictionId::random();
    ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();

    // The forged delivery, then the genuine one: the receiver cannot tell them apart.
    let now = OffsetDateTime::now_utc();
    assert_eq!(ingest.trigger(id, now).await.unwrap(), Ingested::Triggered { enqueued: true });
    assert_eq!(
        ingest.trigger(id, now).await.unwrap(),
        Ingested::Triggered { enqueued: false },
        "answered by the first's check"
    );
    assert!(ledger.event(id, "succeeded").is_none(), "nothing of the forged delivery is recorded");

    // WriftAI's truth, which the worker's checks ask for.
    let truth = json!({"id": id.to_string(), "status": "failed", "output": null,
                       "error": {"source": "internal", "message": "out of memory"}});
    source.set(&truth.to_string());
    for body in queue.messages() {
        if let Message::Check { check } = Message::decode(&body).unwrap() {
            ingest.refresh(&source, check, OffsetDateTime::now_utc()).await.unwrap();
        }
    }
    // One unit of work, for the status WriftAI gave, carrying WriftAI's payload.
    let work: Vec<String> =
        queue.messages().into_iter().filter(|m| !matches!(Message::decode(m), Ok(Message::Check { .. }))).collect();
    assert_eq!(work.len(), 1, "{work:?}");
    let seen = Mutex::new(None::<Prediction>);
    let deadline = OffsetDateTime::now_utc() + Duration::from_secs(60);
    let job = |prediction: Prediction, _| {
        *seen.lock().unwrap() = Some(prediction);
        async { Ok(Value::Null) }
    };
    assert_eq!(
        run(&ledger, &source, WorkMessage::decode(&work[0]).unwrap(), deadline, job).await.unwrap(),
        Outcome::Done { attempt: 1, rerun: false }
    );
    let acted_on = seen.into_inner().unwrap().unwrap();
    assert_eq!(acted_on.status.as_str(), "failed");
    assert_eq!((acted_on.output, acted_on.error.unwrap().message.as_deref()), (Value::Null, Some("out of memory")));
    assert!(ledger.event(id, "succeeded").is_none());
}

#[tokio::test]
async fn a_trigger_for_a_finished_or_unknown_prediction_enqueues_nothing() {
    let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
    let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(3600));
    let now = OffsetDateTime::now_utc();
    assert_eq!(ingest.trigger(PredictionId::random(), now).await.unwrap(), Ingested::UnknownPrediction);
    let id = PredictionId::random();
    ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();
    let raw = format!(r#"{{"id":"{id}","status":"failed"}}"#);
    ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, OffsetDateTime::now_utc()).await.unwrap();
    let sent = queue.messages().len();
    assert_eq!(ingest.trigger(id, now).await.unwrap(), Ingested::Triggered { enqueued: false });
    assert_eq!(queue.messages().len(), sent, "a finished prediction needs no check");
}

#[tokio::test]
async fn a_flood_of_unsigned_deliveries_asks_for_one_check_until_it_begins() {
    let (ledger, queue, source, id) = started().await;
    let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(3600));
    let checks = || checks_in(&queue);
    let now = OffsetDateTime::now_utc();
    for _ in 0..500 {
        ingest.trigger(id, now).await.unwrap();
    }
    assert_eq!(checks(), 1, "500 deliveries, one check waiting");
    // The check begins: a delivery after the gap may bring news its GET predates.
    ingest.refresh(&source, id, now).await.unwrap();
    let now = OffsetDateTime::now_utc() + CHECK_GAP + Duration::from_secs(1);
    assert_eq!(ingest.trigger(id, now).await.unwrap(), Ingested::Triggered { enqueued: true });
    assert_eq!(checks(), 2);
    // A check asked for and never begun (its message lost) lapses.
    let later = now + wriftai_hooks::internals::ingest::CHECK_WINDOW + Duration::from_secs(1);
    assert_eq!(ingest.trigger(id, now).await.unwrap(), Ingested::Triggered { enqueued: false });
    assert_eq!(ingest.trigger(id, later).await.unwrap(), Ingested::Triggered { enqueued: true });
    assert_eq!(checks(), 3);
}

#[tokio::test]
async fn a_check_asked_for_and_never_confirmed_sent_is_asked_for_again() {
    // A receiver died between the ask and the send: WriftAI delivers again, and that
    // delivery must send the check, not take it as on its way.
    let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
    let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(3600));
    let id = PredictionId::random();
    ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        ledger.ask_check(id, now, wriftai_hooks::internals::ingest::CHECK_WINDOW).await.unwrap(),
        wriftai_hooks::internals::ports::CheckAsk::Asked
    );
    assert_eq!(ingest.trigger(id, now).await.unwrap(), Ingested::Triggered { enqueued: true });
    assert_eq!(ingest.trigger(id, now).await.unwrap(), Ingested::Triggered { enqueued: false }, "now confirmed");
}

#[tokio::test]
async fn a_check_that_could_not_be_sent_is_asked_for_again_by_the_next_delivery() {
    let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
    let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(3600));
    let id = PredictionId::random();
    ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();
    queue.fail_next.store(1, std::sync::atomic::Ordering::SeqCst);
    let now = OffsetDateTime::now_utc();
    assert!(ingest.trigger(id, now).await.is_err(), "a 503: WriftAI delivers again");
    assert_eq!(ingest.trigger(id, now).await.unwrap(), Ingested::Triggered { enqueued: true });
}

/// Issue 33, defect 6: a check's beginning cleared the ask, so a flood of unsigned posts
/// for one open ID drove a GET and three writes per queue round trip. One check a gap.
#[tokio::test]
async fn a_flood_right_after_a_check_began_waits_out_the_gap_and_is_told_when() {
    let (ledger, queue, source, id) = started().await;
    let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(3600));
    let checks = || checks_in(&queue);
    // Each round: a delivery asks for a check, and the check begins at once.
    for _ in 0..50 {
        let now = OffsetDateTime::now_utc();
        let answered = ingest.trigger(id, now).await.unwrap();
        if answered == (Ingested::Triggered { enqueued: true }) {
            ingest.refresh(&source, id, now).await.unwrap();
        } else {
            let Ingested::TooSoon { until } = answered else { panic!("{answered:?}") };
            assert!(
                until > now - Duration::from_secs(1) && until <= now + CHECK_GAP,
                "deliver again at the gap's end: {until}"
            );
        }
    }
    assert_eq!(checks(), 1, "50 deliveries inside the gap, one check");
    let after_gap = OffsetDateTime::now_utc() + CHECK_GAP + Duration::from_secs(1);
    assert_eq!(ingest.trigger(id, after_gap).await.unwrap(), Ingested::Triggered { enqueued: true });
}
