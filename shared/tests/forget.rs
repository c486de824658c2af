//! `hooks forget` on the in-memory stack, on a virtual clock: interrupted once the
//! prediction is marked, it still lets nothing of it run again, however long after.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::backend::{Queue, Table};
use wriftai_hooks::internals::adapters::memory::{
    Fate, MemoryBucket, MemoryDeadLetters, MemoryLedger, MemoryQueue, MemoryWriftAi,
};
use wriftai_hooks::internals::claim::{ClaimError, run};
use wriftai_hooks::internals::clock;
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::message::WorkMessage;
use wriftai_hooks::internals::ports::{Claims, Ledger, Reopened};
use wriftai_hooks::internals::prediction::{Prediction, PredictionId, Status};
use wriftai_hooks::ops::{Ops, forget};

const DAY: Duration = Duration::from_secs(86_400);

/// Issue 33, defect 2: the S3 delete fails after the mark; the fences last a day, and
/// before the fix a claim (a requeue, a redrive, a duplicate webhook) ran the work
/// again the next day and wrote its records back.
#[tokio::test(start_paused = true)]
async fn a_forget_interrupted_after_its_mark_lets_nothing_of_the_prediction_run_again() {
    clock::start(OffsetDateTime::now_utc());
    let table = Table::from(MemoryLedger::default());
    let queue = MemoryQueue::default();
    let ingest = || Ingest::new(table.clone(), Queue::from(MemoryQueue::default()), ActOn::terminal(), 30 * DAY);
    let id = PredictionId::random();
    table.register(id, clock::now()).await.unwrap();
    let raw = format!(r#"{{"id":"{id}","status":"failed","error":{{"code":"x","message":"boom"}}}}"#);
    let recorded = Ingest::new(table.clone(), Queue::from(queue), ActOn::terminal(), 30 * DAY);
    recorded.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, clock::now()).await.unwrap();
    let message = format!(r#"{{"prediction_id":"{id}","status":"failed"}}"#);

    // S3 refuses the deletes: the forget stops after its mark and the prediction's item.
    let refusing: wriftai_hooks::internals::adapters::memory::Weather = Arc::new(|call| match call {
        "DeleteObjects" => (Duration::ZERO, Fate::Refused),
        _ => (Duration::ZERO, Fate::Answered),
    });
    let bucket = Arc::new(MemoryBucket::default().under(refusing));
    let ops = Ops::in_memory(ingest(), Arc::new(MemoryDeadLetters::default()), Some(bucket));
    assert!(forget(&ops, id).await.is_err(), "the S3 delete fails");
    assert!(table.memory().unwrap().marked(id), "the mark is written");

    // A day and more later the fences have expired.
    tokio::time::advance(DAY + Duration::from_secs(3600)).await;
    let until = clock::now() + Duration::from_secs(300);
    let ran = run(&table, &MemoryWriftAi::default(), WorkMessage::decode(&message).unwrap(), until, |_, _| async {
        Ok(json!({"ran": true}))
    })
    .await;
    assert!(matches!(ran, Err(ClaimError::Forgotten(of)) if of == id), "{ran:?}");
    assert_eq!(
        table.claim(id, &Status::Failed, until, clock::now()).await.unwrap(),
        wriftai_hooks::internals::ports::Claim::Forgotten
    );
    assert_eq!(table.reopen(id, &Status::Failed, &[], None).await.unwrap(), Reopened::Missing, "no replay revives it");
    let event = table.memory().unwrap().event(id, "failed").unwrap();
    assert_eq!(event.work_since, None, "out of the work index: the reconciler stops requeueing it");
    clock::end();
}

/// The review's case: the forget stops at its mark (the table refuses it). Sealed
/// before the mark, the work still never runs again once its fences expire.
#[tokio::test(start_paused = true)]
async fn a_forget_stopped_before_its_mark_has_sealed_the_work_already() {
    use std::sync::atomic::{AtomicBool, Ordering};
    clock::start(OffsetDateTime::now_utc());
    let refusing_puts = Arc::new(AtomicBool::new(false));
    let refusing = refusing_puts.clone();
    let weather: wriftai_hooks::internals::adapters::memory::Weather = Arc::new(move |call| {
        let refused = call == "PutItem" && refusing.load(Ordering::SeqCst);
        (Duration::ZERO, if refused { Fate::Refused } else { Fate::Answered })
    });
    let table = Table::from(MemoryLedger::default().under(weather));
    let id = PredictionId::random();
    table.register(id, clock::now()).await.unwrap();
    let raw = format!(r#"{{"id":"{id}","status":"failed","error":{{"code":"x","message":"boom"}}}}"#);
    let ingest = || Ingest::new(table.clone(), Queue::from(MemoryQueue::default()), ActOn::terminal(), 30 * DAY);
    ingest().ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, clock::now()).await.unwrap();
    refusing_puts.store(true, Ordering::SeqCst);
    let ops = Ops::in_memory(ingest(), Arc::new(MemoryDeadLetters::default()), Some(Arc::new(MemoryBucket::default())));
    assert!(forget(&ops, id).await.is_err(), "the mark is refused");
    assert!(!table.memory().unwrap().marked(id), "no mark");
    tokio::time::advance(DAY + Duration::from_secs(3600)).await;
    let until = clock::now() + Duration::from_secs(300);
    let claim = table.claim(id, &Status::Failed, until, clock::now()).await.unwrap();
    assert_eq!(claim, wriftai_hooks::internals::ports::Claim::Forgotten, "sealed before the mark");
    clock::end();
}

/// Found by `make verify`'s simulation (seed 1, 100,000 predictions over 60 days): a
/// replay of a parent's done work ran its chain step's registration again and wrote the
/// child `hooks forget` had erased back into the table.
#[tokio::test]
async fn the_work_never_registers_a_forgotten_prediction_again() {
    let ctx = wriftai_hooks::Context::in_memory(());
    let id = PredictionId::random();
    let now = OffsetDateTime::now_utc();
    ctx.memory_table().mark_forgotten(id, now, now + DAY).await.unwrap();
    assert!(!ctx.register(id).await.unwrap(), "not registered");
    assert!(ctx.memory_table().prediction(id).is_none(), "nothing written");
}
