//! The contract at the ports, one suite run on both adapters: on the in-memory ones by
//! the engine's tests (`shared/tests/contract.rs`), on DynamoDB Local by the end-to-end
//! tests (`infra/e2e/tests/contract.rs`). So the simulation's AWS is the one the
//! end-to-end tests meet: where the two adapters differ, one of these fails.
//!
//! Each check is given a ledger and the (prediction, status) of an event the receiver
//! recorded with work to do, not yet claimed; time enters only through the `now` the
//! ports take, so the checks run on DynamoDB's clock as on a virtual one.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use crate::ports::{Claim, Claims, Kept, RecordTable, StepKey, StepState};
use crate::prediction::{PredictionId, Status};

/// A day, in the time the ports take.
const DAY: time::Duration = time::Duration::days(1);

/// Begins `step` and finishes it with `outcome`, as a run of its work does.
async fn finished<L: RecordTable>(ledger: &L, step: StepKey<'_>, outcome: &Kept, now: OffsetDateTime) {
    let StepState::Begun { .. } = ledger.begin_step(step, now).await.expect("begin") else { panic!("not begun") };
    ledger.finish_step(step, outcome, now).await.expect("finish");
}

/// Completes the unit of `step` by a run that went through it.
async fn done<L: Claims>(ledger: &L, step: StepKey<'_>, now: OffsetDateTime) {
    let token = claimed(ledger, step.id, step.status, now).await;
    let (result, steps) = (json!({}), [step.name.to_owned()]);
    let done = ledger.complete(step.id, step.status, &token, &result, &steps, now).await.expect("complete");
    assert!(done, "completed by its own claim");
}

/// Claims the unit's work, as a run of it does, and gives the claim's token.
async fn claimed<L: Claims>(ledger: &L, id: PredictionId, status: &Status, now: OffsetDateTime) -> String {
    let until = now + Duration::from_secs(300);
    match ledger.claim(id, status, until, now).await.expect("claim") {
        Claim::Acquired { token, .. } => token,
        other => panic!("the work is not free to claim: {other:?}"),
    }
}

/// Defect 1 (issue 33): a finished step of work not yet done never expires, however
/// long the work waits (a dead-lettered message replayed weeks later), even with a
/// retention set on records (`ledger` is given one of 15 days); once the work is done,
/// the step lives as long as its event (`keep`) and then reads as never begun (defect
/// 10: a replay after that runs it afresh, never fails on a gone outcome).
pub async fn a_step_lives_while_its_work_is_undone_and_then_as_long_as_its_event<L>(
    ledger: &L,
    id: PredictionId,
    status: &Status,
    keep: time::Duration,
) where
    L: Claims + RecordTable,
{
    let now = crate::clock::now();
    let step = StepKey { id, status, name: "chain" };
    let outcome = Kept::Whole(json!({"child": "x"}).to_string());
    finished(ledger, step, &outcome, now).await;
    let later = now + 100 * DAY;
    let found = ledger.begin_step(step, later).await.expect("begin, 100 days on");
    assert_eq!(found, StepState::Finished(outcome.clone()), "a step of undone work is kept, however long");

    done(ledger, step, now).await;
    let found = ledger.begin_step(step, now + keep - DAY).await.expect("begin, within the event's life");
    assert_eq!(found, StepState::Finished(outcome), "a done unit's step lives as long as its event");
    let found = ledger.begin_step(step, now + keep + DAY).await.expect("begin, past the event's life");
    assert!(matches!(found, StepState::Begun { .. }), "past its expiry the step is gone: {found:?}");
}

/// Defect 2 (issue 33): a unit of work `hooks forget` sealed (the caller seals it) is
/// never claimed, by a run or past any fence's expiry, nor reopened by a replay.
pub async fn a_sealed_unit_is_never_claimed_nor_reopened<L: Claims>(ledger: &L, id: PredictionId, status: &Status) {
    let now = crate::clock::now();
    for at in [now, now + 2 * DAY] {
        let claim = ledger.claim(id, status, at + Duration::from_secs(300), at).await.expect("claim");
        assert_eq!(claim, Claim::Forgotten, "a sealed unit is never claimed");
    }
    let reopened = ledger.reopen(id, status, &[], None).await.expect("reopen");
    assert_eq!(reopened, crate::ports::Reopened::Missing, "nor reopened");
}

/// Defect 6 (issue 33): once a check of the registered, unfinished prediction `id`
/// begins, no other is asked for before the time it gives; after it, one is.
pub async fn a_check_begun_holds_off_the_next_until_its_gap_ends<L: crate::ports::Ledger>(
    ledger: &L,
    id: PredictionId,
) {
    use crate::ports::CheckAsk;
    let now = crate::clock::now();
    let window = Duration::from_secs(60);
    assert_eq!(ledger.ask_check(id, now, window).await.expect("ask"), CheckAsk::Asked);
    ledger.check_sent(id).await.expect("sent");
    let next = now + Duration::from_secs(10);
    ledger.check_begun(id, Some(next)).await.expect("begun");
    let asked = ledger.ask_check(id, now + Duration::from_secs(1), window).await.expect("ask inside the gap");
    assert!(
        matches!(asked, CheckAsk::TooSoon { until } if until.unix_timestamp() == next.unix_timestamp()),
        "{asked:?}"
    );
    let after = next + Duration::from_secs(1);
    assert_eq!(ledger.ask_check(id, after, window).await.expect("ask after the gap"), CheckAsk::Asked);
}

/// A replay keeps the steps of the work it reopens until that work is done again: the
/// event no longer expires, and neither do they, however long the replayed work waits
/// (a review of issue 33's fix: a replay on day 25 of work done on day 0, redriven on
/// day 31, found its steps past the event's old expiry and ran them again).
pub async fn a_replay_keeps_its_steps_until_the_work_is_done_again<L>(
    ledger: &L,
    id: PredictionId,
    status: &Status,
    keep: time::Duration,
) where
    L: Claims + RecordTable,
{
    let now = crate::clock::now();
    let step = StepKey { id, status, name: "notify" };
    let outcome = Kept::Whole(json!({"sent": 1}).to_string());
    finished(ledger, step, &outcome, now).await;
    done(ledger, step, now).await;
    let reopened = ledger.reopen(id, status, &[], None).await.expect("reopen");
    assert!(matches!(reopened, crate::ports::Reopened::Reopened { was_done: true, .. }), "{reopened:?}");
    let found = ledger.begin_step(step, now + keep + 10 * DAY).await.expect("begin, past the old expiry");
    assert_eq!(found, StepState::Finished(outcome), "the replayed work still finds its step done");
}

/// Issue 34: a body larger than an event holds is written once, apart, by the run that
/// completes its work, not with every write of the event; a run that fails keeps it with
/// the event instead, so work left undone keeps its body however long it waits. `done`
/// and `failing` were recorded with `body`, too large for their events, `small` with a
/// body its event holds. The claim says which needs keeping, and for how long past the
/// completion (`keep`, the event's own life once done); what is kept is what a replay
/// and the reconciler's resend send, while it is live, and nothing once it is past its
/// expiry (DynamoDB's TTL deletes it late).
pub async fn a_body_the_event_cannot_hold_is_kept_once_by_its_run<L>(
    ledger: &L,
    [done, failing, small]: [PredictionId; 3],
    status: &Status,
    body: &str,
    keep: time::Duration,
) where
    L: Claims + crate::ports::ReconcileStore,
{
    let now = crate::clock::now();
    let until = now + Duration::from_secs(300);
    let claim = ledger.claim(small, status, until, now).await.expect("claim the small one");
    assert!(matches!(claim, Claim::Acquired { keep_body: None, .. }), "its event holds its body: {claim:?}");

    let Claim::Acquired { token, keep_body, .. } = ledger.claim(done, status, until, now).await.expect("claim") else {
        panic!("the work is not free to claim")
    };
    assert_eq!(keep_body, Some(keep), "the run keeps the body as long as the event is kept");
    assert_eq!(ledger.work_payload(done, status).await.expect("read"), None, "nothing kept before the run keeps it");
    ledger.keep_body(done, status, body, now + keep).await.expect("keep the body");
    assert!(ledger.complete(done, status, &token, &json!({}), &[], now).await.expect("complete"));
    assert_eq!(ledger.work_payload(done, status).await.expect("read").as_deref(), Some(body), "the resend's body");
    let reopened = ledger.reopen(done, status, &[], None).await.expect("reopen");
    let expected = crate::ports::Reopened::Reopened { payload: Some(body.to_owned()), was_done: true };
    assert_eq!(reopened, expected, "a replay sends the body the run kept");
    ledger.keep_body(done, status, body, now - DAY).await.expect("keep it, already expired");
    assert_eq!(ledger.work_payload(done, status).await.expect("read"), None, "a body past its expiry is gone");

    let Claim::Acquired { token, .. } = ledger.claim(failing, status, until, now).await.expect("claim") else {
        panic!("the work is not free to claim")
    };
    ledger.release(failing, status, &token, "boom", Some(body)).await.expect("release");
    assert_eq!(ledger.work_payload(failing, status).await.expect("read").as_deref(), Some(body), "kept by the event");
    let later = now + 100 * DAY;
    let claim = ledger.claim(failing, status, later + Duration::from_secs(300), later).await.expect("claim again");
    assert!(matches!(claim, Claim::Acquired { keep_body: None, .. }), "the event holds it now: {claim:?}");
}

/// Issue 34: an event enters the `received` index, which `hooks replay` by filter
/// selects from, in the write that ends a run of its work (done, failed), the
/// reconciler's requeue of work no run ended (a run that died without a word, a lost
/// message) or its give-up, not when it is recorded: so work that ends well writes the
/// index once, with its state, not at the record and again when done. Work waiting for
/// its first run is the queue's (it runs anyway), and no filter selects it. `[done,
/// failing, given_up, stale]` were recorded with work to do at or after `since`, not yet
/// claimed.
pub async fn an_event_is_selected_by_a_filter_once_its_work_has_ended(
    table: &crate::adapters::backend::Table,
    [done, failing, given_up, stale]: [PredictionId; 4],
    status: &Status,
    since: OffsetDateTime,
) {
    use crate::ports::{ReconcileStore, WorkState};
    let now = crate::clock::now();
    let ours = [done, failing, given_up, stale];
    let selected = async || {
        let until = crate::clock::now() + Duration::from_secs(60);
        let found = table.received_between(since, until, |e| ours.contains(&e.id)).await.expect("query");
        found.into_iter().map(|e| (e.id, e.work)).collect::<Vec<_>>()
    };
    assert_eq!(selected().await, [], "recorded work no run has ended is not selected");

    let token = claimed(table, done, status, now).await;
    assert_eq!(selected().await, [], "nor work a run holds");
    assert!(table.complete(done, status, &token, &json!({}), &[], now).await.expect("complete"));
    assert_eq!(selected().await, [(done, WorkState::Done)], "done work is selected, done");

    let token = claimed(table, failing, status, now).await;
    table.release(failing, status, &token, "boom", None).await.expect("release");
    table.give_up_work(given_up, status, "too many requeues", now).await.expect("give up");
    assert_eq!(table.touch_work(stale, status, now).await.expect("requeue"), Some(1));
    let mut found = selected().await;
    found.sort_by_key(|(id, _)| ours.iter().position(|o| o == id));
    let expected = [
        (done, WorkState::Done),
        (failing, WorkState::Failed),
        (given_up, WorkState::DeadLettered),
        (stale, WorkState::Waiting),
    ];
    assert_eq!(found, expected, "failed, given-up and requeued work is selected, in its state");
}

/// The bucket: an object put is read back whole, put again replaces it, and a key never
/// put reads as none (never an error), which the steps' and records' restore relies on.
pub async fn a_bucket_gives_back_what_was_put_and_nothing_for_a_key_never_put<B: crate::ports::Bucket>(bucket: &B) {
    let key = format!("contract/{}.json", PredictionId::random());
    assert_eq!(bucket.get(&key).await.expect("get a key never put"), None);
    bucket.put(&key, b"{\"n\":1}".to_vec()).await.expect("put");
    assert_eq!(bucket.get(&key).await.expect("get"), Some(b"{\"n\":1}".to_vec()));
    bucket.put(&key, b"{\"n\":2}".to_vec()).await.expect("put again");
    assert_eq!(bucket.get(&key).await.expect("get again"), Some(b"{\"n\":2}".to_vec()), "replaced whole");
}
