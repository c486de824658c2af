//! The DynamoDB adapter's writes on DynamoDB Local, where the in-memory twin cannot
//! speak for them: a replay starts the requeue count afresh and forgets steps in the
//! same write it reopens the work with (or not at all), a step's failed tries are
//! counted once each, an unsigned delivery's checks are asked for once until one
//! begins, records expire only with a retention set, and steps only with their event.

use e2e::{Stack, payload};
use time::OffsetDateTime;
use wriftai_hooks::internals::ports::{
    CheckAsk, Claim, Claims, Ledger, PageAsk, ReconcileStore, RecordTable, Reopened, Rerun, StepKey, StepState,
    WorkState,
};
use wriftai_hooks::internals::prediction::{PredictionId, Status};

fn step_of(id: PredictionId) -> StepKey<'static> {
    StepKey { id, status: &Status::Failed, name: "" }
}

/// A registered prediction whose `failed` event the receiver recorded, so it has work.
async fn failed(stack: &Stack) -> PredictionId {
    let id = stack.registered().await;
    assert_eq!(stack.post(payload(id, "failed", 3)).await.0, 200);
    id
}

fn number(item: &e2e::Item, name: &str) -> Option<u64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

#[tokio::test]
async fn a_bulk_replay_reopens_an_event_once_per_run_and_only_while_its_work_is_as_selected() {
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), failed(&stack).await);
    let rerun = |run, only| Some(Rerun { run, only });
    let reopen = |rerun| ledger.reopen(id, &Status::Failed, &[], rerun);
    // Its work is waiting, not failed: a run that selected it as failed leaves it.
    assert_eq!(reopen(rerun("a", Some(WorkState::Failed))).await.unwrap(), Reopened::NotSelected);
    assert!(matches!(reopen(rerun("a", Some(WorkState::Waiting))).await.unwrap(), Reopened::Reopened { .. }));
    assert_eq!(reopen(rerun("a", None)).await.unwrap(), Reopened::AlreadyReplayed, "once per run");
    assert!(matches!(reopen(rerun("b", None)).await.unwrap(), Reopened::Reopened { .. }), "another run's own");
    assert_eq!(reopen(rerun("a", None)).await.unwrap(), Reopened::AlreadyReplayed, "run a's mark outlives run b");
    let runs = stack.items(id).await["EVENT#failed"].get("replay_runs").cloned().unwrap();
    assert_eq!(runs.as_ss().unwrap().len(), 2, "{runs:?}");
}

#[tokio::test]
async fn a_replay_of_work_given_up_on_starts_its_requeues_afresh() {
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), failed(&stack).await);
    let now = OffsetDateTime::now_utc();
    for _ in 0..3 {
        ledger.touch_work(id, &Status::Failed, now).await.unwrap();
    }
    ledger.give_up_work(id, &Status::Failed, "requeued 3 times without completing", now).await.unwrap();
    assert!(matches!(ledger.reopen(id, &Status::Failed, &[], None).await.unwrap(), Reopened::Reopened { .. }));
    let event = &stack.items(id).await["EVENT#failed"];
    assert_eq!(number(event, "requeues"), None, "{event:?}");
    assert!(!event.contains_key("gave_up") && event.contains_key("work_pk"), "{event:?}");
    assert_eq!(ledger.touch_work(id, &Status::Failed, now).await.unwrap(), Some(1), "counted from one again");
}

#[tokio::test]
async fn a_replay_forgets_its_steps_in_the_same_write_or_not_at_all() {
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), failed(&stack).await);
    let step = StepKey { id, status: &Status::Failed, name: "notify" };
    assert!(matches!(ledger.begin_step(step, OffsetDateTime::now_utc()).await.unwrap(), StepState::Begun { .. }));
    // A run holds the work: the replay is refused, and the step stays.
    let until = OffsetDateTime::now_utc() + time::Duration::minutes(5);
    let claim = ledger.claim(id, &Status::Failed, until, OffsetDateTime::now_utc()).await.unwrap();
    let Claim::Acquired { token, .. } = claim else { panic!("{claim:?}") };
    let forget = ["notify".to_owned()];
    assert_eq!(ledger.reopen(id, &Status::Failed, &forget, None).await.unwrap(), Reopened::Running);
    assert!(stack.items(id).await.contains_key("STEP#failed#notify"), "nothing forgotten while it runs");
    // Once it is free, the replay reopens it and forgets the step at once.
    ledger.release(id, &Status::Failed, &token, "failed", None).await.unwrap();
    assert!(matches!(ledger.reopen(id, &Status::Failed, &forget, None).await.unwrap(), Reopened::Reopened { .. }));
    let items = stack.items(id).await;
    assert!(!items.contains_key("STEP#failed#notify") && items["EVENT#failed"].contains_key("replay"));
    let missing = ledger.reopen(PredictionId::random(), &Status::Failed, &forget, None).await.unwrap();
    assert_eq!(missing, Reopened::Missing);
}

#[tokio::test]
async fn a_steps_failed_tries_are_counted_once_each() {
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), failed(&stack).await);
    let step = StepKey { id, status: &Status::Failed, name: "file output" };
    let now = OffsetDateTime::now_utc();
    let StepState::Begun { token } = ledger.begin_step(step, now).await.unwrap() else { panic!("not begun") };
    // The same try noted twice (its answer lost, say) counts once.
    for try_id in ["a", "a", "b"] {
        ledger.note_try(step, try_id).await.unwrap();
    }
    let again = ledger.begin_step(step, now).await.unwrap();
    assert!(matches!(again, StepState::Started { tries: 2, token: ref t, .. } if *t == token), "{again:?}");
}

#[tokio::test]
async fn with_a_retention_records_expire_and_without_one_they_are_kept_and_steps_wait_for_their_work() {
    let stack = Stack::from_env().await;
    let id = failed(&stack).await;
    let day = std::time::Duration::from_secs(86_400);
    let kept = wriftai_hooks::internals::ports::Kept::Whole(r#"{"n":1}"#.to_owned());
    let expiring = stack.ledger().keeping_records(Some(day));
    expiring.put_record(id, "expiring", &kept).await.unwrap();
    let (finished, begun) =
        (StepKey { id, status: &Status::Failed, name: "expiring" }, StepKey { name: "begun", ..step_of(id) });
    for step in [finished, begun] {
        let StepState::Begun { .. } = expiring.begin_step(step, OffsetDateTime::now_utc()).await.unwrap() else {
            panic!("not begun")
        };
    }
    expiring.finish_step(finished, &kept, OffsetDateTime::now_utc()).await.unwrap();
    stack.ledger().put_record(id, "kept", &kept).await.unwrap();
    let items = stack.items(id).await;
    let expires = |sk: &str| items[sk].get("expires_at").map(|v| v.as_n().unwrap().parse::<i64>().unwrap());
    let in_a_day = (OffsetDateTime::now_utc() + day).unix_timestamp();
    assert!(
        expires("RECORD#expiring").is_some_and(|at| (at - in_a_day).abs() < 60),
        "{:?}",
        expires("RECORD#expiring")
    );
    // A step expires with its event once its work is done (the contract suite), never
    // before: the work may be replayed weeks after it was dead-lettered.
    assert_eq!(expires("STEP#failed#expiring"), None, "a finished step of undone work is kept");
    assert_eq!(expires("STEP#failed#begun"), None, "a step whose outcome is unknown waits for the operator");
    assert_eq!(expires("RECORD#kept"), None, "no retention: kept until forgotten");
}

#[tokio::test]
async fn checks_of_one_prediction_are_asked_for_once_until_one_begins() {
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), stack.registered().await);
    let (now, window) = (OffsetDateTime::now_utc(), std::time::Duration::from_secs(60));
    assert_eq!(ledger.ask_check(id, now, window).await.unwrap(), CheckAsk::Asked);
    assert_eq!(ledger.ask_check(id, now, window).await.unwrap(), CheckAsk::Asked, "never confirmed sent");
    ledger.check_sent(id).await.unwrap();
    assert_eq!(ledger.ask_check(id, now, window).await.unwrap(), CheckAsk::Pending);
    ledger.check_begun(id, None).await.unwrap();
    assert_eq!(ledger.ask_check(id, now, window).await.unwrap(), CheckAsk::Asked);
    ledger.check_sent(id).await.unwrap();
    let lapsed = now + window + std::time::Duration::from_secs(1);
    assert_eq!(ledger.ask_check(id, lapsed, window).await.unwrap(), CheckAsk::Asked, "a lost check lapses");
    assert_eq!(ledger.ask_check(PredictionId::random(), now, window).await.unwrap(), CheckAsk::Unknown);
    assert_eq!(stack.post(payload(id, "failed", 3)).await.0, 200);
    assert_eq!(ledger.ask_check(id, lapsed, window).await.unwrap(), CheckAsk::Finished);
}

#[tokio::test]
async fn a_table_written_before_sharding_is_walked_with_its_shards_oldest_first() {
    use wriftai_hooks::internals::adapters::memory::{MemoryQueue, MemoryWriftAi};
    use wriftai_hooks::internals::config::ActOn;
    use wriftai_hooks::internals::ingest::Ingest;
    use wriftai_hooks::internals::reconcile::{ReconcileConfig, Reconciler};

    let stack = Stack::from_env().await;
    let ledger = stack.ledger();
    let source = MemoryWriftAi::default();
    // Two hours ago, a minute apart: one prediction as the code before sharding wrote it
    // (open_pk "OPEN"), between ones of today's code, each in its shard.
    let base = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let mut ids = Vec::new();
    for n in 0..5 {
        let (id, at) = (PredictionId::random(), base + time::Duration::minutes(n));
        if n == 2 {
            let at = wriftai_hooks::internals::adapters::dynamo::rfc3339(at);
            let item = [
                ("pk", format!("PRED#{id}")),
                ("sk", "PRED".into()),
                ("id", id.to_string()),
                ("registered_at", at.clone()),
                ("open_pk", "OPEN".into()),
                ("open_since", at),
            ];
            let put = stack.dynamodb.put_item().table_name(&stack.table);
            let put =
                item.into_iter().fold(put, |put, (k, v)| put.item(k, aws_sdk_dynamodb::types::AttributeValue::S(v)));
            put.send().await.unwrap();
        } else {
            ledger.register(id, at).await.unwrap();
        }
        source.set(&format!(r#"{{"id":"{id}","status":"started"}}"#));
        ids.push(id);
    }
    let config = ReconcileConfig {
        min_age: std::time::Duration::from_secs(3600),
        overdue_after: std::time::Duration::from_secs(24 * 3600),
        work_stale_after: std::time::Duration::from_secs(24 * 3600),
        max_requeues: 3,
        concurrency: 1,
        page_size: 2,
        save_margin: std::time::Duration::from_millis(200),
    };
    let (queue, dead_letters) = (MemoryQueue::default(), MemoryQueue::default());
    let ingest = Ingest::new(&ledger, &queue, ActOn::terminal(), std::time::Duration::from_secs(3600));
    let reconciler =
        Reconciler { ingest: &ingest, store: &ledger, source: &source, dead_letters: &dead_letters, config: &config };
    reconciler.run(tokio::time::Instant::now() + std::time::Duration::from_secs(60)).await.unwrap();
    // Other tests' predictions two hours old may be walked too: only ours are held to order.
    let asked: Vec<PredictionId> = source.order().into_iter().filter(|id| ids.contains(id)).collect();
    assert_eq!(asked, ids, "oldest first, the legacy partition among the shards");
    let backlog = ledger.backlog(wriftai_hooks::internals::shards::Index::Open).await.unwrap();
    let legacy = backlog.iter().find(|b| b.partition == "OPEN").unwrap();
    assert!(legacy.count >= 1, "hooks status sees the legacy partition");
    assert_eq!(backlog.len(), usize::from(ledger.shards()) + 1);
}

#[tokio::test]
async fn a_place_past_the_runs_bound_reads_nothing_and_fails_nothing() {
    // An age setting raised since the place was saved: `from` is after `before`, which
    // DynamoDB would refuse as a reversed BETWEEN.
    let stack = Stack::from_env().await;
    let ledger = stack.ledger();
    let now = OffsetDateTime::now_utc();
    let (from, before) = (now - time::Duration::minutes(5), now - time::Duration::minutes(10));
    let partition = wriftai_hooks::internals::shards::Index::Open.partitions(ledger.shards()).remove(0);
    let ask = PageAsk { partition: &partition, from: Some(from), before, after: None, limit: 10 };
    let open = ledger.open_predictions(ask).await.unwrap();
    assert!(open.items.is_empty() && open.next.is_none());
    let partition = wriftai_hooks::internals::shards::Index::Work.partitions(ledger.shards()).remove(0);
    let ask = PageAsk { partition: &partition, ..ask };
    let work = ledger.stale_work(ask).await.unwrap();
    assert!(work.items.is_empty() && work.next.is_none());
}

/// Issue 33, defect 7: a reopen stamped `work_since` from the HTTP Date header, whole
/// seconds, so the reopens of one second shared a time the walk cannot order.
#[tokio::test]
async fn a_reopen_stamps_its_own_time_not_the_date_headers_second() {
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), failed(&stack).await);
    assert!(matches!(ledger.reopen(id, &Status::Failed, &[], None).await.unwrap(), Reopened::Reopened { .. }));
    let items = stack.items(id).await;
    let since = items["EVENT#failed"].get("work_since").and_then(|v| v.as_s().ok()).cloned().unwrap();
    let stamped = OffsetDateTime::parse(&since, &time::format_description::well_known::Rfc3339).unwrap();
    assert_ne!(stamped.nanosecond(), 0, "a time of its own, to the nanosecond: {since}");
}

/// Issue 33, defect 11: a ledger with fewer shards than the table was written with (the
/// template's `IndexShards` lowered, `hooks` without `INDEX_SHARDS`) walked only its
/// own; it now learns the widest count the reconciler recorded, and never lowers it.
#[tokio::test]
async fn a_narrower_ledger_learns_and_walks_the_widest_shard_count_ever_written() {
    use wriftai_hooks::internals::adapters::dynamo::DynamoLedger;
    use wriftai_hooks::internals::ports::ReconcileStore;
    use wriftai_hooks::internals::shards::Index;
    let stack = Stack::from_env().await;
    let wide = stack.ledger();
    ReconcileStore::learn_shards(&wide).await.unwrap();
    let narrow = DynamoLedger::new(stack.dynamodb.clone(), &stack.table, 2);
    assert_eq!(narrow.partitions(Index::Open).len(), 3, "its own two, and the one of before sharding");
    assert_eq!(narrow.learn_shards(true).await.unwrap(), wide.shards(), "the wider count is kept, not lowered");
    assert_eq!(narrow.partitions(Index::Open).len(), usize::from(wide.shards()) + 1);
    assert_eq!(narrow.shards(), 2, "its writes keep their own count");
}
