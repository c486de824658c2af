//! The contract suite at the ports (`wriftai_hooks::internals::contract`) on DynamoDB
//! Local; `shared/tests/contract.rs` runs the same on the in-memory adapters, which the
//! simulation runs on.

use e2e::{Stack, payload};
use wriftai_hooks::internals::contract;
use wriftai_hooks::internals::prediction::{PredictionId, Status};

/// A registered prediction whose `failed` event the receiver recorded, so it has work.
async fn failed(stack: &Stack) -> PredictionId {
    let id = stack.registered().await;
    assert_eq!(stack.post(payload(id, "failed", 3)).await.0, 200);
    id
}

#[tokio::test]
async fn a_step_lives_while_its_work_is_undone_and_then_as_long_as_its_event() {
    let stack = Stack::from_env().await;
    let id = failed(&stack).await;
    let ledger = stack.ledger().keeping_records(Some(std::time::Duration::from_secs(15 * 86_400)));
    // The local stack's receiver keeps a done event EVENT_TTL_DAYS' default, 30 days.
    let keep = time::Duration::days(30);
    contract::a_step_lives_while_its_work_is_undone_and_then_as_long_as_its_event(&ledger, id, &Status::Failed, keep)
        .await;
}

#[tokio::test]
async fn a_body_the_event_cannot_hold_is_kept_once_by_its_run() {
    let stack = Stack::from_env().await;
    // A failed body too large for its event: a 2,000-byte error message.
    let large = |id: PredictionId| {
        let mut body: serde_json::Value = serde_json::from_str(&payload(id, "failed", 0)).unwrap();
        body["error"] = serde_json::json!({"code": "x", "message": "b".repeat(2_000)});
        body.to_string()
    };
    let (done, failing) = (stack.registered().await, stack.registered().await);
    for id in [done, failing] {
        assert_eq!(stack.post(large(id)).await.0, 200);
    }
    let small = failed(&stack).await;
    // The local stack's receiver keeps a done event EVENT_TTL_DAYS' default, 30 days.
    let keep = time::Duration::days(30);
    let ledger = stack.ledger();
    contract::a_body_the_event_cannot_hold_is_kept_once_by_its_run(
        &ledger,
        [done, failing, small],
        &Status::Failed,
        &large(done),
        keep,
    )
    .await;
}

#[tokio::test]
async fn a_sealed_unit_is_never_claimed_nor_reopened() {
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), failed(&stack).await);
    ledger.seal_work(id, &Status::Failed).await.unwrap();
    contract::a_sealed_unit_is_never_claimed_nor_reopened(&ledger, id, &Status::Failed).await;
}

#[tokio::test]
async fn a_check_begun_holds_off_the_next_until_its_gap_ends() {
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), stack.registered().await);
    contract::a_check_begun_holds_off_the_next_until_its_gap_ends(&ledger, id).await;
}

#[tokio::test]
async fn a_replay_keeps_its_steps_until_the_work_is_done_again() {
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), failed(&stack).await);
    let keep = time::Duration::days(30);
    contract::a_replay_keeps_its_steps_until_the_work_is_done_again(&ledger, id, &Status::Failed, keep).await;
}

#[tokio::test]
async fn an_event_is_selected_by_a_filter_once_its_work_has_ended() {
    use wriftai_hooks::internals::adapters::backend::Table;
    let stack = Stack::from_env().await;
    let since = time::OffsetDateTime::now_utc() - std::time::Duration::from_secs(1);
    let ids = [failed(&stack).await, failed(&stack).await, failed(&stack).await, failed(&stack).await];
    let table = Table::Aws(stack.ledger());
    contract::an_event_is_selected_by_a_filter_once_its_work_has_ended(&table, ids, &Status::Failed, since).await;
}

#[tokio::test]
async fn a_bucket_gives_back_what_was_put_and_nothing_for_a_key_never_put() {
    use wriftai_hooks::internals::adapters::backend::Objects;
    use wriftai_hooks::internals::adapters::s3::S3Bucket;
    let stack = Stack::from_env().await;
    let (_, name) = e2e::bucket(&stack.aws);
    let bucket = Objects::from(S3Bucket::new(&stack.aws, name, true));
    contract::a_bucket_gives_back_what_was_put_and_nothing_for_a_key_never_put(&bucket).await;
}

/// Issue 33, defect 9, on DynamoDB Local, whose TTL deletes nothing: an event past its
/// `expires_at` (written here, as AWS's TTL would leave it for up to two days) is gone to
/// a replay, never revived.
#[tokio::test]
async fn an_event_past_its_expiry_is_not_reopened() {
    use wriftai_hooks::internals::ports::{Claim, Claims, Reopened};
    let stack = Stack::from_env().await;
    let (ledger, id) = (stack.ledger(), failed(&stack).await);
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::minutes(5);
    let Claim::Acquired { token, .. } = ledger.claim(id, &Status::Failed, until, now).await.unwrap() else {
        panic!("not claimed")
    };
    assert!(ledger.complete(id, &Status::Failed, &token, &serde_json::json!({}), &[], now).await.unwrap());
    let past = (now - time::Duration::minutes(1)).unix_timestamp().to_string();
    let expire = stack.dynamodb.update_item().table_name(&stack.table);
    let expire = expire
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("PRED#{id}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("EVENT#failed".into()))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(":past", aws_sdk_dynamodb::types::AttributeValue::N(past));
    expire.send().await.unwrap();
    assert_eq!(ledger.reopen(id, &Status::Failed, &[], None).await.unwrap(), Reopened::Missing);
}
