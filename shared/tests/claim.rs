//! One unit of work on the in-memory claims: it runs to completion once, whatever
//! repeats, failures or panics come its way.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::memory::{MemoryLedger, MemoryQueue, MemoryWriftAi};
use wriftai_hooks::internals::claim::{ClaimError, Outcome, run};
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::message::WorkMessage;
use wriftai_hooks::internals::ports::{Claim, Claims, Ledger};
use wriftai_hooks::internals::prediction::{Prediction, PredictionId, Status};

/// A registered prediction whose `succeeded` event was recorded and enqueued.
async fn recorded(ledger: &MemoryLedger, queue: &MemoryQueue) -> (PredictionId, String) {
    let id = PredictionId::random();
    ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();
    let raw = format!(r#"{{"id":"{id}","status":"succeeded","output":"out"}}"#);
    let ingest = Ingest::new(ledger, queue, ActOn::terminal(), Duration::from_secs(60));
    ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, OffsetDateTime::now_utc()).await.unwrap();
    (id, queue.messages().pop().unwrap())
}

fn message(body: &str) -> WorkMessage {
    WorkMessage::decode(body).expect("the receiver's message")
}

fn later() -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::from_secs(60)
}

#[tokio::test]
async fn a_message_delivered_twice_runs_its_work_once() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, body) = recorded(&ledger, &queue).await;
    let runs = AtomicU32::new(0);
    let job = |p: Prediction, _| {
        runs.fetch_add(1, Ordering::SeqCst);
        async move { Ok(json!({"output": p.output})) }
    };
    assert_eq!(
        run(&ledger, &source, message(&body), later(), job).await.unwrap(),
        Outcome::Done { attempt: 1, rerun: false }
    );
    assert_eq!(run(&ledger, &source, message(&body), later(), job).await.unwrap(), Outcome::AlreadyDone);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let event = ledger.event(id, "succeeded").unwrap();
    assert_eq!(event.done, Some(json!({"output": "out"})));
    assert_eq!(event.work_since, None, "done work leaves the work index");
}

#[tokio::test]
async fn a_failed_or_panicking_run_frees_the_claim_for_the_retry() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (_, body) = recorded(&ledger, &queue).await;
    let failed = run(&ledger, &source, message(&body), later(), |_, _| async { Err("boom".into()) }).await;
    assert!(matches!(failed, Err(ClaimError::Failed(_))));
    let panicked = run(&ledger, &source, message(&body), later(), |_, _| async { panic!("kaboom") }).await;
    assert!(matches!(panicked, Err(ClaimError::Panicked(ref m)) if m == "kaboom"), "{panicked:?}");
    let done = run(&ledger, &source, message(&body), later(), |_, _| async { Ok(json!(null)) }).await.unwrap();
    assert_eq!(done, Outcome::Done { attempt: 3, rerun: false });
}

#[tokio::test]
async fn a_failed_run_leaves_why_with_its_event_cut_to_a_kilobyte() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, body) = recorded(&ledger, &queue).await;
    run(&ledger, &source, message(&body), later(), |_, _| async { Err("boom".into()) }).await.unwrap_err();
    assert_eq!(ledger.event(id, "succeeded").unwrap().last_error.as_deref(), Some("the work failed: boom"));
    let long = "é".repeat(1000);
    run(&ledger, &source, message(&body), later(), |_, _| async move { Err(long.into()) }).await.unwrap_err();
    let kept = ledger.event(id, "succeeded").unwrap().last_error.unwrap();
    assert!(
        kept.len() <= wriftai_hooks::internals::ports::ERROR_KEPT_BYTES && kept.starts_with("the work failed: éé"),
        "{kept}"
    );
}

#[tokio::test]
async fn a_live_claim_makes_a_concurrent_duplicate_back_off_and_an_expired_one_does_not() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, body) = recorded(&ledger, &queue).await;
    let now = OffsetDateTime::now_utc();
    let held = ledger.claim(id, &Status::Succeeded, now + Duration::from_secs(30), now).await.unwrap();
    assert!(matches!(held, Claim::Acquired { attempt: 1, .. }));
    let busy = run(&ledger, &source, message(&body), later(), |_, _| async { Ok(json!(null)) }).await;
    assert!(matches!(busy, Err(ClaimError::Busy)));

    // The holder timed out: its claim expired with its deadline.
    let (id2, body2) = recorded(&ledger, &queue).await;
    let past = now - Duration::from_secs(1);
    ledger.claim(id2, &Status::Succeeded, past, past - Duration::from_secs(30)).await.unwrap();
    let taken = run(&ledger, &source, message(&body2), later(), |_, _| async { Ok(json!(null)) }).await.unwrap();
    assert_eq!(taken, Outcome::Done { attempt: 2, rerun: false });
}

#[tokio::test]
async fn a_message_by_reference_fetches_the_prediction_and_one_wriftai_forgot_fails() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, _) = recorded(&ledger, &queue).await;
    let by_reference =
        WorkMessage::encode(id, &Status::Succeeded, &format!(r#"{{"output":"{}"}}"#, "x".repeat(1 << 20)));
    assert!(WorkMessage::decode(&by_reference).unwrap().payload.is_none());

    let gone = run(&ledger, &source, message(&by_reference), later(), |_, _| async { Ok(json!(null)) }).await;
    assert!(matches!(gone, Err(ClaimError::Gone(g)) if g == id));
    source.set(&format!(r#"{{"id":"{id}","status":"succeeded","output":"fetched"}}"#));
    let seen =
        run(&ledger, &source, message(&by_reference), later(), |p, _| async move { Ok(p.output) }).await.unwrap();
    assert_eq!(seen, Outcome::Done { attempt: 2, rerun: false });
    assert_eq!(ledger.event(id, "succeeded").unwrap().done, Some(json!("fetched")));
}

#[tokio::test]
async fn a_message_that_is_not_ours_is_poison() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, _) = recorded(&ledger, &queue).await;
    let unreadable = WorkMessage::encode(id, &Status::Succeeded, r#"{"id":"not an id"}"#);
    let poison = run(&ledger, &source, message(&unreadable), later(), |_, _| async { Ok(json!(null)) }).await;
    assert!(matches!(poison, Err(ClaimError::Poison(_))), "{poison:?}");
    let stray = WorkMessage::encode(PredictionId::random(), &Status::Succeeded, "{}");
    let missing = run(&ledger, &source, message(&stray), later(), |_, _| async { Ok(json!(null)) }).await;
    assert!(matches!(missing, Err(ClaimError::MissingEvent { .. })), "{missing:?}");
}

#[tokio::test]
async fn an_event_is_kept_past_its_ttl_until_its_work_is_done_then_expires() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, body) = recorded(&ledger, &queue).await;
    // Days later (the TTL is a minute), the work still not done: DynamoDB's TTL runs.
    let days_later = OffsetDateTime::now_utc() + Duration::from_secs(3 * 86_400);
    ledger.expire(days_later);
    assert!(ledger.event(id, "succeeded").is_some(), "an event whose work is not done does not expire");

    // A redrive runs the work; from then on the event may expire, a TTL after.
    assert_eq!(
        run(&ledger, &source, message(&body), later(), |_, _| async { Ok(json!(null)) }).await.unwrap(),
        Outcome::Done { attempt: 1, rerun: false }
    );
    let expires_at = ledger.event(id, "succeeded").unwrap().expires_at.expect("done work expires");
    assert!(expires_at > OffsetDateTime::now_utc() + Duration::from_secs(55), "a TTL after the work: {expires_at}");
    ledger.expire(expires_at + Duration::from_secs(1));
    assert!(ledger.event(id, "succeeded").is_none());

    // A copy of the message after that is a loud error of its own, not poison.
    let late = run(&ledger, &source, message(&body), later(), |_, _| async { Ok(json!(null)) }).await;
    assert!(matches!(late, Err(ClaimError::MissingEvent { .. })), "{late:?}");
}

#[tokio::test]
async fn a_result_too_large_for_the_event_is_kept_as_its_size_and_digest() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, body) = recorded(&ledger, &queue).await;
    let large = json!({"blob": "r".repeat(100_000)});
    let job = |_, _| {
        let large = large.clone();
        async move { Ok(large) }
    };
    assert_eq!(
        run(&ledger, &source, message(&body), later(), job).await.unwrap(),
        Outcome::Done { attempt: 1, rerun: false }
    );
    let kept = ledger.event(id, "succeeded").unwrap().done.expect("the work is done");
    assert_eq!(kept["omitted_bytes"], large.to_string().len());
    assert_eq!(kept["sha256"].as_str().map(str::len), Some(64));
}

#[tokio::test]
async fn a_job_still_running_near_the_deadline_is_stopped_and_its_claim_given_back() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, body) = recorded(&ledger, &queue).await;
    // A call that would outlive the invocation: 120 s, with one second to spare before
    // the margin kept for reporting.
    let deadline = OffsetDateTime::now_utc() + wriftai_hooks::internals::claim::REPORT_MARGIN + Duration::from_secs(1);
    let slow = |_, _| async {
        tokio::time::sleep(Duration::from_secs(120)).await;
        Ok(json!(null))
    };
    let started = std::time::Instant::now();
    let ran = run(&ledger, &source, message(&body), deadline, slow).await;
    assert!(matches!(ran, Err(ClaimError::OutOfTime)), "{ran:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "stopped at the budget: {:?}", started.elapsed());
    let event = ledger.event(id, "succeeded").unwrap();
    assert_eq!((event.claim, event.done), (None, None), "the claim is given back for the retry");
}

#[tokio::test]
async fn a_replay_whose_run_fails_leaves_the_work_done_with_its_first_result() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, body) = recorded(&ledger, &queue).await;
    run(&ledger, &source, message(&body), later(), |_, _| async { Ok(json!("first")) }).await.unwrap();

    let reopened = ledger.reopen(id, &Status::Succeeded, &[], None).await.unwrap();
    assert!(
        matches!(reopened, wriftai_hooks::internals::ports::Reopened::Reopened { was_done: true, .. }),
        "{reopened:?}"
    );
    assert_eq!(ledger.event(id, "succeeded").unwrap().done, Some(json!("first")), "done until a new result");
    let failed = run(&ledger, &source, message(&body), later(), |_, _| async { Err("the URLs expired".into()) }).await;
    assert!(matches!(failed, Err(ClaimError::Failed(_))));
    let event = ledger.event(id, "succeeded").unwrap();
    assert_eq!(event.done, Some(json!("first")), "a failed replay keeps the work done");
    assert_eq!(event.last_error.as_deref(), Some("the work failed: the URLs expired"), "and says why");
    assert!(event.replay && event.work_since.is_some(), "the replay is still asked for, and in the work index");

    let again = run(&ledger, &source, message(&body), later(), |_, _| async { Ok(json!("second")) }).await.unwrap();
    assert_eq!(again, Outcome::Done { attempt: 3, rerun: true }, "a replay's run is a rerun");
    let event = ledger.event(id, "succeeded").unwrap();
    assert_eq!((event.done, event.replay), (Some(json!("second")), false));
    assert_eq!(
        run(&ledger, &source, message(&body), later(), |_, _| async { Ok(json!("third")) }).await.unwrap(),
        Outcome::AlreadyDone
    );
}

#[tokio::test]
async fn a_bulk_replay_reopens_work_once_per_run_and_leaves_work_that_left_the_state_it_selected() {
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, body) = recorded(&ledger, &queue).await;
    run(&ledger, &source, message(&body), later(), |_, _| async { Ok(json!("first")) }).await.unwrap();
    let rerun = |run, only| Some(wriftai_hooks::internals::ports::Rerun { run, only });
    let reopen = |rerun| ledger.reopen(id, &Status::Succeeded, &[], rerun);
    use wriftai_hooks::internals::ports::{Reopened, WorkState};
    assert_eq!(reopen(rerun("a", Some(WorkState::Failed))).await.unwrap(), Reopened::NotSelected, "it is done");
    assert!(matches!(reopen(rerun("a", Some(WorkState::Done))).await.unwrap(), Reopened::Reopened { .. }));
    assert_eq!(reopen(rerun("a", Some(WorkState::Done))).await.unwrap(), Reopened::AlreadyReplayed);
    assert!(matches!(reopen(rerun("b", None)).await.unwrap(), Reopened::Reopened { .. }));
    assert_eq!(reopen(rerun("a", None)).await.unwrap(), Reopened::AlreadyReplayed, "run a's mark outlives run b");
}

#[tokio::test]
async fn a_replay_is_refused_while_a_run_holds_the_work() {
    let (ledger, queue) = (MemoryLedger::default(), MemoryQueue::default());
    let (id, _) = recorded(&ledger, &queue).await;
    let now = OffsetDateTime::now_utc();
    ledger.claim(id, &Status::Succeeded, now + Duration::from_secs(30), now).await.unwrap();
    assert_eq!(
        ledger.reopen(id, &Status::Succeeded, &[], None).await.unwrap(),
        wriftai_hooks::internals::ports::Reopened::Running
    );
}

/// Issue 33, defect 8: only reruns of done work were left out of `EndToEnd`, so the
/// runbook's `hooks replay --work failed` fed day-old lags to its alarm. Every run that
/// follows a reopen is a rerun.
#[tokio::test]
async fn a_run_after_a_replay_of_failed_work_is_a_rerun() {
    use wriftai_hooks::internals::ports::Reopened;
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let (id, body) = recorded(&ledger, &queue).await;
    let failed = run(&ledger, &source, message(&body), later(), |_, _| async { Err("boom".into()) }).await;
    assert!(matches!(failed, Err(ClaimError::Failed(_))));
    let reopened = ledger.reopen(id, &Status::Succeeded, &[], None).await.unwrap();
    assert!(matches!(reopened, Reopened::Reopened { was_done: false, .. }), "{reopened:?}");
    let done = run(&ledger, &source, message(&body), later(), |_, _| async { Ok(json!({})) }).await.unwrap();
    assert_eq!(done, Outcome::Done { attempt: 2, rerun: true });
}

/// Issue 34: a body too large for its event is kept once, apart, by the run that
/// completes its work, with the event's own expiry, and a replay sends it; a run that
/// fails keeps it with the event instead, for as long as the work waits; a body that
/// came by reference is kept as WriftAI sent it; a body the event holds is not kept again.
#[tokio::test]
async fn a_run_keeps_the_body_its_event_cannot_hold_and_a_replay_sends_it() {
    use wriftai_hooks::internals::ports::{ReconcileStore, Reopened};
    let (ledger, queue, source) = (MemoryLedger::default(), MemoryQueue::default(), MemoryWriftAi::default());
    let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), Duration::from_secs(60));
    let large = |id: PredictionId| format!(r#"{{"id":"{id}","status":"succeeded","output":"{}"}}"#, "o".repeat(2_000));
    let recorded = async |id: PredictionId| {
        ledger.register(id, OffsetDateTime::now_utc()).await.unwrap();
        let raw = large(id);
        ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(ledger.event(id, "succeeded").unwrap().payload, None, "the event holds no body this large");
        queue.messages().pop().unwrap()
    };
    let body_item = async |id: PredictionId| {
        let items = ledger.prediction_items(id).await.unwrap();
        items.into_iter().find(|item| item["sk"] == "BODY#succeeded")
    };

    let done = PredictionId::random();
    let message_of_done = recorded(done).await;
    run(&ledger, &source, message(&message_of_done), later(), |_, _| async { Ok(json!(null)) }).await.unwrap();
    let kept = body_item(done).await.expect("kept apart by the run that completed it");
    let event = ledger.event(done, "succeeded").unwrap();
    assert_eq!(kept["expires_at"], json!(event.expires_at.unwrap().unix_timestamp()), "the event's own expiry");
    let reopened = ledger.reopen(done, &Status::Succeeded, &[], None).await.unwrap();
    assert_eq!(reopened, Reopened::Reopened { payload: Some(large(done)), was_done: true });
    let kept = body_item(done).await.expect("kept through the replay");
    assert_eq!(kept["expires_at"], json!(null), "it stops expiring while the rerun waits, as its event does");
    run(&ledger, &source, message(&message_of_done), later(), |_, _| async { Ok(json!(null)) }).await.unwrap();
    let event = ledger.event(done, "succeeded").unwrap();
    let kept = body_item(done).await.expect("kept again by the rerun");
    assert_eq!(kept["expires_at"], json!(event.expires_at.unwrap().unix_timestamp()), "the event's new expiry");

    let failing = PredictionId::random();
    let message_of_failing = recorded(failing).await;
    let failed = run(&ledger, &source, message(&message_of_failing), later(), |_, _| async { Err("boom".into()) });
    assert!(matches!(failed.await, Err(ClaimError::Failed(_))));
    assert_eq!(ledger.event(failing, "succeeded").unwrap().payload, Some(large(failing)), "kept by its event");
    run(&ledger, &source, message(&message_of_failing), later(), |_, _| async { Ok(json!(null)) }).await.unwrap();
    assert!(body_item(failing).await.is_none(), "its event holds it: nothing kept apart");

    let fetched = PredictionId::random();
    recorded(fetched).await;
    source.set(&large(fetched));
    let reference = format!(r#"{{"prediction_id":"{fetched}","status":"succeeded","payload":null}}"#);
    run(&ledger, &source, message(&reference), later(), |_, _| async { Ok(json!(null)) }).await.unwrap();
    let kept = ledger.work_payload(fetched, &Status::Succeeded).await.unwrap();
    assert_eq!(kept, Some(large(fetched)), "kept as WriftAI sent it");

    let (small, small_body) = self::recorded(&ledger, &queue).await;
    run(&ledger, &source, message(&small_body), later(), |_, _| async { Ok(json!(null)) }).await.unwrap();
    assert!(body_item(small).await.is_none(), "a small body stays with its event only");
}
