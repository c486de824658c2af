//! `hooks replay` by filter on the in-memory stack: what an operator meets when a send
//! fails, and when the same command is typed again after a second fix.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::backend::{Queue, Table};
use wriftai_hooks::internals::adapters::memory::{MemoryDeadLetters, MemoryLedger, MemoryQueue};
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::ports::{Claim, Claims, Kept, Ledger, RecordTable, StepKey, StepState};
use wriftai_hooks::internals::prediction::{Prediction, PredictionId, Status};
use wriftai_hooks::ops::Ops;
use wriftai_hooks::ops::bulk::{Filter, Run, Work, replay};

/// A stack in memory with one `failed` event whose work ran and failed.
async fn failed_work() -> (Ops, Table, Queue, PredictionId) {
    let (table, queue) = (Table::from(MemoryLedger::default()), Queue::from(MemoryQueue::default()));
    let ingest = Ingest::new(table.clone(), queue.clone(), ActOn::terminal(), Duration::from_secs(30 * 86_400));
    let id = PredictionId::random();
    table.register(id, OffsetDateTime::now_utc()).await.unwrap();
    let raw = format!(r#"{{"id":"{id}","status":"failed","error":{{"code":"x","message":"boom"}}}}"#);
    ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, OffsetDateTime::now_utc()).await.unwrap();
    let until = OffsetDateTime::now_utc() + Duration::from_secs(60);
    let Claim::Acquired { token, .. } =
        table.claim(id, &Status::Failed, until, OffsetDateTime::now_utc()).await.unwrap()
    else {
        panic!("not claimed")
    };
    table.release(id, &Status::Failed, &token, "downstream down", None).await.unwrap();
    let ops = Ops::in_memory(ingest, Arc::new(MemoryDeadLetters::default()), None);
    (ops, table, queue, id)
}

fn failed_ones() -> Filter {
    Filter { work: Some(Work::Failed), ..Filter::default() }
}

fn run<'a>(name: &'a str) -> Run<'a> {
    Run { name, only: Some(Work::Failed), rate: 1000, dry_run: false, forget: &[], progress: false }
}

/// Issue 33, defect 11: a bulk replay whose send failed had stamped the event with its
/// run's name, so the same command run again sent it never.
#[tokio::test]
async fn a_replay_whose_send_failed_is_sent_by_the_same_command_run_again() {
    let (ops, _, queue, id) = failed_work().await;
    let sent_before = queue.memory().unwrap().messages().len();
    queue.memory().unwrap().fail_next.store(1, Ordering::SeqCst);
    assert!(replay(&ops, &failed_ones(), &run("fix-1")).await.is_err(), "the send fails");
    let again = replay(&ops, &failed_ones(), &run("fix-1")).await.unwrap();
    assert!(again.as_str().unwrap().contains("(1 more sent again)"), "{again}");
    let messages = queue.memory().unwrap().messages();
    assert_eq!(messages.len(), sent_before + 1, "{messages:?}");
    assert!(messages.last().unwrap().contains(&id.to_string()));
}

#[tokio::test]
async fn the_same_command_after_a_second_fix_sends_again_what_failed_again() {
    let (ops, table, _, id) = failed_work().await;
    assert!(replay(&ops, &failed_ones(), &run("fix-1")).await.unwrap().as_str().unwrap().contains("sent 1 of 1"));
    // The replayed run fails too; after a second fix, the same command.
    fail(&table, id).await;
    let again = replay(&ops, &failed_ones(), &run("fix-1")).await.unwrap();
    assert!(again.as_str().unwrap().contains("1 of them unfinished and sent again"), "{again}");
    // Once it ran to completion, the same run never sends it again, and says how to.
    complete(&table, id, &[]).await;
    let by_status = Filter { status: Some(Status::Failed), ..Filter::default() };
    let told = replay(&ops, &by_status, &Run { only: None, ..run("fix-1") }).await.unwrap();
    assert!(
        told.as_str().unwrap().contains("--run <name>") && told.as_str().unwrap().contains("sent 0 of 0"),
        "{told}"
    );
    let renamed = replay(&ops, &by_status, &Run { only: None, ..run("fix-2") }).await.unwrap();
    assert!(renamed.as_str().unwrap().contains("sent 1 of 1"), "{renamed}");
}

/// The run of a bulk replay that forgot a step, run again after its send's answer was
/// lost and the work ran meanwhile, forgets the step no second time: it never runs twice.
#[tokio::test]
async fn a_rerun_after_the_replayed_work_completed_forgets_no_step_again() {
    let (ops, table, queue, id) = failed_work().await;
    queue.memory().unwrap().fail_next.store(1, Ordering::SeqCst);
    let forget = ["notify".to_owned()];
    let forgetting = Run { forget: &forget, ..run("fix-1") };
    assert!(replay(&ops, &failed_ones(), &forgetting).await.is_err(), "the send fails");
    // The work runs anyway (the reconciler requeues reopened work): its step, then done.
    let step = StepKey { id, status: &Status::Failed, name: "notify" };
    let StepState::Begun { .. } = table.begin_step(step, OffsetDateTime::now_utc()).await.unwrap() else {
        panic!("not begun")
    };
    let outcome = Kept::Whole("1".to_owned());
    table.finish_step(step, &outcome, OffsetDateTime::now_utc()).await.unwrap();
    complete(&table, id, &["notify".to_owned()]).await;
    let by_status = Filter { status: Some(Status::Failed), ..Filter::default() };
    let again = replay(&ops, &by_status, &Run { forget: &forget, only: None, ..run("fix-1") }).await.unwrap();
    assert!(again.as_str().unwrap().contains("sent 0 of 0 (0 more sent again)"), "{again}");
    let found = table.begin_step(step, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(found, StepState::Finished(outcome), "the step the run forgot once is not forgotten again");
}

async fn claim(table: &Table, id: PredictionId) -> String {
    let until = OffsetDateTime::now_utc() + Duration::from_secs(60);
    match table.claim(id, &Status::Failed, until, OffsetDateTime::now_utc()).await.unwrap() {
        Claim::Acquired { token, .. } => token,
        other => panic!("not claimed: {other:?}"),
    }
}

async fn fail(table: &Table, id: PredictionId) {
    let token = claim(table, id).await;
    table.release(id, &Status::Failed, &token, "still down", None).await.unwrap();
}

async fn complete(table: &Table, id: PredictionId, steps: &[String]) {
    let token = claim(table, id).await;
    let result = serde_json::json!({});
    assert!(table.complete(id, &Status::Failed, &token, &result, steps, OffsetDateTime::now_utc()).await.unwrap());
}
