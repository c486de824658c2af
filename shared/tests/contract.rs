//! The contract suite at the ports (`wriftai_hooks::internals::contract`) on the
//! in-memory adapters; `infra/e2e/tests/contract.rs` runs the same on DynamoDB Local.

use std::time::Duration;

use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::memory::{MemoryLedger, MemoryQueue};
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::contract;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::ports::Ledger;
use wriftai_hooks::internals::prediction::{Prediction, PredictionId, Status};

/// How long a done event is kept here (`EVENT_TTL_DAYS`, 30).
const KEEP: Duration = Duration::from_secs(30 * 86_400);

/// A registered prediction whose `failed` event was recorded with work to do.
async fn failed(ledger: &MemoryLedger) -> PredictionId {
    let (id, queue) = (PredictionId::random(), MemoryQueue::default());
    ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();
    let raw = format!(r#"{{"id":"{id}","status":"failed","error":{{"code":"x","message":"boom"}}}}"#);
    let ingest = Ingest::new(ledger, &queue, ActOn::terminal(), KEEP);
    ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, OffsetDateTime::now_utc()).await.unwrap();
    id
}

#[tokio::test]
async fn a_step_lives_while_its_work_is_undone_and_then_as_long_as_its_event() {
    let ledger = MemoryLedger::default().keeping_records(Some(Duration::from_secs(15 * 86_400)));
    let id = failed(&ledger).await;
    let keep = time::Duration::try_from(KEEP).unwrap();
    contract::a_step_lives_while_its_work_is_undone_and_then_as_long_as_its_event(&ledger, id, &Status::Failed, keep)
        .await;
}

#[tokio::test]
async fn a_body_the_event_cannot_hold_is_kept_once_by_its_run() {
    let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
    let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), KEEP);
    let raw = |id: PredictionId| {
        format!(r#"{{"id":"{id}","status":"failed","error":{{"code":"x","message":"{}"}}}}"#, "b".repeat(2000))
    };
    let (done, failing) = (PredictionId::random(), PredictionId::random());
    for id in [done, failing] {
        ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();
        let raw = raw(id);
        ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, OffsetDateTime::now_utc()).await.unwrap();
    }
    let small = failed(&ledger).await;
    let keep = time::Duration::try_from(KEEP).unwrap();
    // Both bodies are the same length; the contract keeps one of them for both.
    contract::a_body_the_event_cannot_hold_is_kept_once_by_its_run(
        &ledger,
        [done, failing, small],
        &Status::Failed,
        &raw(done),
        keep,
    )
    .await;
}

#[tokio::test]
async fn a_sealed_unit_is_never_claimed_nor_reopened() {
    let ledger = MemoryLedger::default();
    let id = failed(&ledger).await;
    ledger.seal_work(id, &Status::Failed).await.unwrap();
    contract::a_sealed_unit_is_never_claimed_nor_reopened(&ledger, id, &Status::Failed).await;
}

/// Issue 33, defect 9: a replay revived an event past its expiry (DynamoDB's TTL deletes
/// it days late), whose steps were gone, so they ran again. The DynamoDB adapter's
/// reopen carries the same condition (`expires_at > :now`).
#[tokio::test(start_paused = true)]
async fn an_event_past_its_expiry_is_not_reopened() {
    use wriftai_hooks::internals::clock;
    use wriftai_hooks::internals::ports::{Claim, Claims, Reopened};
    clock::start(OffsetDateTime::now_utc());
    let ledger = MemoryLedger::default();
    let id = failed(&ledger).await;
    let until = clock::now() + Duration::from_secs(300);
    let Claim::Acquired { token, .. } = ledger.claim(id, &Status::Failed, until, clock::now()).await.unwrap() else {
        panic!("not claimed")
    };
    assert!(ledger.complete(id, &Status::Failed, &token, &serde_json::json!({}), &[], clock::now()).await.unwrap());
    tokio::time::advance(KEEP - Duration::from_secs(60)).await;
    assert!(matches!(ledger.reopen(id, &Status::Failed, &[], None).await.unwrap(), Reopened::Reopened { .. }));
    let Claim::Acquired { token, .. } = ledger.claim(id, &Status::Failed, until, clock::now()).await.unwrap() else {
        panic!("not claimed")
    };
    assert!(ledger.complete(id, &Status::Failed, &token, &serde_json::json!({}), &[], clock::now()).await.unwrap());
    tokio::time::advance(KEEP + Duration::from_secs(60)).await;
    assert_eq!(ledger.reopen(id, &Status::Failed, &[], None).await.unwrap(), Reopened::Missing, "past its expiry");
    clock::end();
}

#[tokio::test]
async fn a_check_begun_holds_off_the_next_until_its_gap_ends() {
    let (ledger, id) = (MemoryLedger::default(), PredictionId::random());
    ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();
    contract::a_check_begun_holds_off_the_next_until_its_gap_ends(&ledger, id).await;
}

#[tokio::test]
async fn a_replay_keeps_its_steps_until_the_work_is_done_again() {
    let ledger = MemoryLedger::default();
    let id = failed(&ledger).await;
    let keep = time::Duration::try_from(KEEP).unwrap();
    contract::a_replay_keeps_its_steps_until_the_work_is_done_again(&ledger, id, &Status::Failed, keep).await;
}

#[tokio::test]
async fn a_bucket_gives_back_what_was_put_and_nothing_for_a_key_never_put() {
    use wriftai_hooks::internals::adapters::backend::Objects;
    let bucket = Objects::from(wriftai_hooks::internals::adapters::memory::MemoryBucket::default());
    contract::a_bucket_gives_back_what_was_put_and_nothing_for_a_key_never_put(&bucket).await;
}

#[tokio::test]
async fn an_event_is_selected_by_a_filter_once_its_work_has_ended() {
    use wriftai_hooks::internals::adapters::backend::Table;
    let since = OffsetDateTime::now_utc() - Duration::from_secs(1);
    let ledger = std::sync::Arc::new(MemoryLedger::default());
    let ids = [failed(&ledger).await, failed(&ledger).await, failed(&ledger).await, failed(&ledger).await];
    contract::an_event_is_selected_by_a_filter_once_its_work_has_ended(
        &Table::Memory(ledger),
        ids,
        &Status::Failed,
        since,
    )
    .await;
}
