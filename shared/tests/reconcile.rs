//! The reconciler on in-memory adapters: what webhooks left unfinished is brought to
//! its end, once, and nothing is polled forever.

use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;
use wriftai_hooks::internals::adapters::memory::{MemoryLedger, MemoryQueue, MemoryWriftAi};
use wriftai_hooks::internals::config::ActOn;
use wriftai_hooks::internals::ingest::Ingest;
use wriftai_hooks::internals::message::WorkMessage;
use wriftai_hooks::internals::ports::{Claims, Ledger};
use wriftai_hooks::internals::prediction::{Prediction, PredictionId, Status};
use wriftai_hooks::internals::reconcile::{CLOSED_NOT_FOUND, CLOSED_OVERDUE, ReconcileConfig, Reconciler, Summary};

struct World {
    ledger: MemoryLedger,
    queue: MemoryQueue,
    dead_letters: MemoryQueue,
    source: MemoryWriftAi,
    config: ReconcileConfig,
}

impl World {
    fn new() -> Self {
        let config = ReconcileConfig {
            min_age: Duration::from_secs(60),
            overdue_after: Duration::from_secs(35 * 60),
            work_stale_after: Duration::from_secs(600),
            max_requeues: 3,
            concurrency: 4,
            page_size: 2,
            save_margin: Duration::from_millis(100),
        };
        let (ledger, queue, dead_letters) = (MemoryLedger::default(), MemoryQueue::default(), MemoryQueue::default());
        Self { ledger, queue, dead_letters, source: MemoryWriftAi::default(), config }
    }

    /// A prediction of ours registered `age` ago, that WriftAI reports at `status`.
    async fn prediction(&self, age: Duration, status: Option<&str>) -> PredictionId {
        let id = PredictionId::random();
        self.ledger.register(id, OffsetDateTime::now_utc() - age).await.unwrap();
        if let Some(status) = status {
            self.source.set(&format!(r#"{{"id":"{id}","status":"{status}","output":"o"}}"#));
        }
        id
    }

    /// One run with `budget` to its deadline.
    async fn run(&self, budget: Duration) -> Summary {
        let ingest = Ingest::new(&self.ledger, &self.queue, ActOn::terminal(), Duration::from_secs(3600));
        let reconciler = Reconciler {
            ingest: &ingest,
            store: &self.ledger,
            source: &self.source,
            dead_letters: &self.dead_letters,
            config: &self.config,
        };
        reconciler.run(tokio::time::Instant::now() + budget).await.unwrap()
    }

    fn messages_for(&self, id: PredictionId) -> usize {
        self.queue.messages().iter().filter(|m| WorkMessage::decode(m).unwrap().prediction_id == id).count()
    }
}

const OLD: Duration = Duration::from_secs(600);
/// A run's budget when time is not what the test is about.
const AMPLE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_prediction_whose_webhooks_never_came_is_finished_from_wriftai_and_enqueued_once() {
    let w = World::new();
    let id = w.prediction(OLD, Some("succeeded")).await;
    let first = w.run(AMPLE).await;
    assert_eq!((first.examined, first.advanced, first.enqueued), (1, 1, 1));
    let row = w.ledger.prediction(id).unwrap();
    assert_eq!((row.status, row.open), (Some(Status::Succeeded), false));
    let second = w.run(AMPLE).await;
    assert_eq!(second.examined, 0, "a finished prediction leaves the set");
    assert_eq!(w.messages_for(id), 1);
}

#[tokio::test]
async fn a_young_or_still_running_prediction_is_left_alone_or_kept() {
    let w = World::new();
    let young = w.prediction(Duration::from_secs(5), Some("succeeded")).await;
    let running = w.prediction(OLD, Some("started")).await;
    let summary = w.run(AMPLE).await;
    assert_eq!((summary.examined, summary.advanced, summary.expired), (1, 1, 0));
    assert!(w.ledger.prediction(young).unwrap().status.is_none());
    let row = w.ledger.prediction(running).unwrap();
    assert_eq!((row.status, row.open), (Some(Status::Started), true));
}

#[tokio::test]
async fn a_prediction_wriftai_forgot_or_that_ran_past_its_limit_is_closed_for_good() {
    let w = World::new();
    let forgotten = w.prediction(OLD, None).await;
    let overdue = w.prediction(Duration::from_secs(40 * 60), Some("started")).await;
    let summary = w.run(AMPLE).await;
    assert_eq!((summary.examined, summary.expired), (2, 2));
    assert_eq!(w.ledger.prediction(forgotten).unwrap().closed.as_deref(), Some(CLOSED_NOT_FOUND));
    assert_eq!(w.ledger.prediction(overdue).unwrap().closed.as_deref(), Some(CLOSED_OVERDUE));
    assert_eq!(w.run(AMPLE).await.examined, 0, "never polled again");
}

#[tokio::test]
async fn a_run_cut_short_resumes_where_it_stopped_and_skips_nothing() {
    let w = World::new();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(w.prediction(OLD + Duration::from_secs(n), Some("started")).await);
    }
    // WriftAI answers in a second, and the walk of unfinished predictions gets two thirds
    // of 2.4 s: time for one page (two predictions at once) only.
    w.source.slow(Duration::from_secs(1));
    let first = w.run(Duration::from_millis(2400)).await;
    assert_eq!((first.examined, first.cut_short), (2, true));
    w.source.slow(Duration::ZERO);
    let second = w.run(AMPLE).await;
    assert_eq!((second.examined, second.cut_short), (3, false), "resumed after the first page");
    let third = w.run(AMPLE).await;
    assert_eq!(third.examined, 5, "a full pass starts from the oldest again");
}

#[tokio::test]
async fn work_recorded_but_never_enqueued_or_finished_is_enqueued_again() {
    let w = World::new();
    let id = w.prediction(OLD, None).await;
    // Recorded long ago with its enqueue cut short: the queue never saw it.
    let raw = format!(r#"{{"id":"{id}","status":"failed","error":{{"message":"m"}}}}"#);
    w.queue.fail_next.store(1, Ordering::SeqCst);
    let ingest = Ingest::new(&w.ledger, &w.queue, ActOn::terminal(), Duration::from_secs(3600));
    let long_ago = OffsetDateTime::now_utc() - Duration::from_secs(3600);
    assert!(ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, long_ago).await.is_err());

    let summary = w.run(AMPLE).await;
    assert_eq!((summary.requeued, summary.enqueued), (1, 1));
    let message = WorkMessage::decode(&w.queue.messages()[0]).unwrap();
    assert_eq!(message.payload.unwrap().get(), raw, "from the payload kept with the event");
    assert_eq!(w.run(AMPLE).await.requeued, 0, "touched: not again until it is stale again");

    // Once the worker has run it, it leaves the work index for good.
    let now = OffsetDateTime::now_utc();
    let wriftai_hooks::internals::ports::Claim::Acquired { token, .. } =
        w.ledger.claim(id, &Status::Failed, now, now).await.unwrap()
    else {
        panic!("claimable")
    };
    w.ledger.complete(id, &Status::Failed, &token, &serde_json::json!(null), &[], now).await.unwrap();
    assert!(w.ledger.event(id, "failed").unwrap().done.is_some());
}

#[tokio::test]
async fn with_wriftai_slower_than_a_run_every_prediction_is_examined_over_runs_and_stale_work_is_requeued_at_once() {
    let w = World::new();
    let mut ids = Vec::new();
    for n in 0..6 {
        // Still running: each stays unfinished, so every run has them to walk.
        ids.push(w.prediction(OLD + Duration::from_secs(10 - n), Some("started")).await);
    }
    // Work recorded long ago whose send was lost: only DynamoDB and SQS can help it.
    let stale = PredictionId::random();
    w.ledger.register(stale, OffsetDateTime::now_utc()).await.unwrap();
    let raw = format!(r#"{{"id":"{stale}","status":"failed","error":{{"message":"m"}}}}"#);
    w.queue.fail_next.store(1, Ordering::SeqCst);
    let ingest = Ingest::new(&w.ledger, &w.queue, ActOn::terminal(), Duration::from_secs(3600));
    let long_ago = OffsetDateTime::now_utc() - Duration::from_secs(3600);
    assert!(ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, long_ago).await.is_err());

    // Every GET takes a second, and a run has 2.4 s: each must end within its budget.
    w.source.slow(Duration::from_secs(1));
    let budget = Duration::from_millis(2400);
    let mut runs = Vec::new();
    while ids.iter().any(|id| w.ledger.prediction(*id).unwrap().status.is_none()) {
        assert!(runs.len() < 8, "the walk stopped moving forward: {runs:?}");
        let summary = tokio::time::timeout(budget + Duration::from_millis(300), w.run(budget))
            .await
            .expect("a run ends within its budget, whatever WriftAI does");
        runs.push(summary);
    }
    assert_eq!(runs[0].requeued, 1, "the stale work is enqueued by the first run, slow WriftAI or not");
    assert_eq!(runs.iter().map(|r| r.examined).collect::<Vec<_>>(), [2, 2, 2], "one page a run, each the next");
    for id in ids {
        assert_eq!(w.ledger.prediction(id).unwrap().status, Some(Status::Started), "{id} examined");
    }
}

#[tokio::test]
async fn a_get_that_outlives_the_walk_is_skipped_and_the_walk_moves_on() {
    let w = World::new();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(w.prediction(OLD + Duration::from_secs(10 - n), Some("started")).await);
    }
    // WriftAI holds every GET longer than a run's whole share: a page can never be
    // finished the old way, and its place would be kept before it forever.
    w.source.slow(Duration::from_secs(30));
    for _ in 0..2 {
        let summary = tokio::time::timeout(Duration::from_secs(4), w.run(Duration::from_secs(3))).await.unwrap();
        assert_eq!(summary.examined, 0);
    }
    for id in ids {
        assert_eq!(w.source.asked(id), 1, "{id}: each asked once over two runs, none twice");
    }
}

#[tokio::test]
async fn work_requeued_past_its_cap_goes_to_the_dead_letter_queue_once_and_stays_out() {
    let w = World::new();
    let id = w.prediction(OLD, None).await;
    let raw = format!(r#"{{"id":"{id}","status":"failed","error":{{"message":"m"}}}}"#);
    let ingest = Ingest::new(&w.ledger, &w.queue, ActOn::terminal(), Duration::from_secs(3600));
    let long_ago = OffsetDateTime::now_utc() - Duration::from_secs(3600);
    ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, long_ago).await.unwrap();
    // Its work keeps failing: the reconciler finds it stale run after run.
    let mut requeued = 0;
    for _ in 0..6 {
        let summary = w.run(AMPLE).await;
        requeued += summary.requeued;
        if summary.dead_lettered == 1 {
            break;
        }
        w.ledger.stale_since(id, "failed", long_ago);
    }
    assert_eq!(requeued, 3, "requeued max_requeues times");
    assert_eq!(w.dead_letters.messages().len(), 1, "then sent to the DLQ, once");
    let message = WorkMessage::decode(&w.dead_letters.messages()[0]).unwrap();
    assert_eq!(message.payload.unwrap().get(), raw);
    let event = w.ledger.event(id, "failed").unwrap();
    assert_eq!(event.gave_up.as_deref(), Some("requeued 3 times without completing"));
    assert_eq!(event.work_since, None, "out of the work index");
    w.ledger.stale_since(id, "failed", long_ago);
    assert_eq!(w.run(AMPLE).await.requeued, 0);
}

#[tokio::test]
async fn a_replay_of_work_given_up_on_starts_its_requeues_afresh() {
    let w = World::new();
    let id = w.prediction(OLD, None).await;
    let raw = format!(r#"{{"id":"{id}","status":"failed","error":{{"message":"m"}}}}"#);
    let ingest = Ingest::new(&w.ledger, &w.queue, ActOn::terminal(), Duration::from_secs(3600));
    let long_ago = OffsetDateTime::now_utc() - Duration::from_secs(3600);
    ingest.ingest(&Prediction::from_json(raw.as_bytes()).unwrap(), &raw, long_ago).await.unwrap();
    let mut dead_lettered = 0;
    while dead_lettered == 0 {
        dead_lettered = w.run(AMPLE).await.dead_lettered;
        w.ledger.stale_since(id, "failed", long_ago);
    }
    // The operator fixed the cause and replays it: the work is in the index again, and its
    // first requeue after that is a requeue, not a second trip to the DLQ.
    w.ledger.reopen(id, &Status::Failed, &[], None).await.unwrap();
    let event = w.ledger.event(id, "failed").unwrap();
    assert_eq!((event.requeues, event.gave_up.as_deref()), (0, None), "{event:?}");
    w.ledger.stale_since(id, "failed", long_ago);
    let summary = w.run(AMPLE).await;
    assert_eq!((summary.requeued, summary.dead_lettered), (1, 0), "{summary:?}");
    assert_eq!(w.dead_letters.messages().len(), 1);
}

#[tokio::test]
async fn a_run_whose_every_answer_is_a_404_closes_nothing_and_learns_nothing() {
    // A token of another account, or the wrong base URL: WriftAI answers 404 about every
    // prediction. Closing them all as not_found would give up on every one.
    let w = World::new();
    let ids = [w.prediction(OLD, None).await, w.prediction(OLD, None).await, w.prediction(OLD, None).await];
    let summary = w.run(AMPLE).await;
    assert_eq!((summary.expired, summary.unanswered), (0, 3), "{summary:?}");
    assert!(summary.learned_nothing());
    assert!(ids.iter().all(|id| w.ledger.prediction(*id).unwrap().open), "none closed");
    // Once WriftAI answers about one of them, the others' 404s are believed.
    w.source.set(&format!(r#"{{"id":"{}","status":"succeeded","output":"o"}}"#, ids[0]));
    let summary = w.run(AMPLE).await;
    assert_eq!((summary.examined, summary.expired, summary.advanced), (3, 2, 1), "{summary:?}");
    assert_eq!(w.ledger.prediction(ids[1]).unwrap().closed.as_deref(), Some(CLOSED_NOT_FOUND));
}

/// Issue 33, defect 3: WriftAI purged three predictions left open (their webhooks lost),
/// and the stack's other predictions finish by webhook inside `min_age`, so no run finds
/// any. Before the fix none was ever closed and every run learned nothing (its alarm).
#[tokio::test]
async fn purged_predictions_are_closed_when_the_accounts_newest_predictions_are_ours() {
    let w = World::new();
    let ids = [w.prediction(OLD, None).await, w.prediction(OLD, None).await, w.prediction(OLD, None).await];
    // Ours, finished by its webhook well inside min_age: never examined, but listed.
    let fast = w.prediction(Duration::ZERO, Some("succeeded")).await;
    let summary = w.run(AMPLE).await;
    assert_eq!((summary.examined, summary.expired, summary.unanswered), (3, 3, 0), "{summary:?}");
    assert!(!summary.learned_nothing(), "{summary:?}");
    assert!(ids.iter().all(|id| w.ledger.prediction(*id).unwrap().closed.as_deref() == Some(CLOSED_NOT_FOUND)));
    assert!(w.ledger.prediction(fast).unwrap().open, "the young one is left to its webhooks");
}

#[tokio::test]
async fn a_token_of_another_account_whose_predictions_are_listed_closes_nothing() {
    let w = World::new();
    let ids = [w.prediction(OLD, None).await, w.prediction(OLD, None).await, w.prediction(OLD, None).await];
    // The token's account holds predictions, none of them ours.
    w.source.set(&format!(r#"{{"id":"{}","status":"succeeded","output":"o"}}"#, PredictionId::random()));
    let summary = w.run(AMPLE).await;
    assert_eq!((summary.expired, summary.unanswered), (0, 3), "{summary:?}");
    assert!(summary.learned_nothing());
    assert!(ids.iter().all(|id| w.ledger.prediction(*id).unwrap().open), "none closed");
}

/// Issue 33, defect 7: a run stamped its start on every event it recorded, so the work
/// index held many items of one time, which its walk cannot order.
#[tokio::test]
async fn each_event_a_run_records_is_stamped_with_its_own_time() {
    let mut w = World::new();
    w.source.slow(Duration::from_millis(5));
    w.config.concurrency = 1;
    let ids = [
        w.prediction(OLD, Some("failed")).await,
        w.prediction(OLD, Some("failed")).await,
        w.prediction(OLD, Some("failed")).await,
    ];
    let summary = w.run(AMPLE).await;
    assert_eq!(summary.advanced, 3, "{summary:?}");
    let times: std::collections::BTreeSet<_> =
        ids.iter().map(|id| w.ledger.event(*id, "failed").unwrap().received_at).collect();
    assert_eq!(times.len(), 3, "one time each: {times:?}");
}

/// Issue 33, defect 11: `IndexShards` lowered in the template left what was written in
/// the shards above the new count unwalked for good.
#[tokio::test]
async fn a_lowered_shard_count_still_walks_every_shard_ever_written() {
    let mut w = World::new();
    w.ledger = MemoryLedger::sharded(8);
    // A prediction left unfinished in a shard above the count the stack is lowered to.
    let id = loop {
        let id = w.prediction(OLD, Some("failed")).await;
        if wriftai_hooks::internals::shards::shard(id, 8) >= 2 {
            break id;
        }
    };
    w.ledger.reshard(2);
    let summary = w.run(AMPLE).await;
    assert!(summary.examined >= 1, "{summary:?}");
    assert!(!w.ledger.prediction(id).unwrap().open, "found in its shard, past the new count");
}

#[tokio::test]
async fn unfinished_predictions_are_examined_oldest_first_across_the_shards() {
    let mut w = World::new();
    w.ledger = MemoryLedger::sharded(4);
    w.config.concurrency = 1;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(w.prediction(OLD + Duration::from_secs(100 - n), Some("started")).await);
    }
    let shards: std::collections::BTreeSet<u16> =
        ids.iter().map(|id| wriftai_hooks::internals::shards::shard(*id, 4)).collect();
    assert!(shards.len() > 1, "spread over shards: {shards:?}");
    let summary = w.run(AMPLE).await;
    assert_eq!(summary.examined, 12);
    assert_eq!(w.source.order(), ids, "in the order they were registered, whatever their shard");
}

#[tokio::test]
async fn a_place_that_did_not_move_is_not_written_again() {
    let mut w = World::new();
    w.config.page_size = 2;
    // Nothing to walk: no write to the reconciler's key, run after run.
    w.run(AMPLE).await;
    w.run(AMPLE).await;
    assert_eq!(w.ledger.cursor_writes(), 0, "an empty walk writes nothing");
    // Three to walk in waves of two: the place after the first wave, then its clearing.
    for n in 0..3 {
        w.prediction(OLD + Duration::from_secs(n), Some("started")).await;
    }
    let summary = w.run(AMPLE).await;
    assert_eq!(summary.examined, 3);
    assert_eq!(w.ledger.cursor_writes(), 2, "one write per place that moved");
}
