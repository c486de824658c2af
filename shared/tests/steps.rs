//! Steps of the work on the in-memory table and bucket: each runs at most once per
//! (prediction, status, name), whatever becomes of the run around it.

use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::FutureExt;
use serde_json::{Value, json};
use wriftai_hooks::internals::ports::Kept;
use wriftai_hooks::internals::records::ITEM_BYTES;
use wriftai_hooks::testing;
use wriftai_hooks::{Context, Failure, Prediction, StepError};

fn prediction() -> Prediction {
    testing::prediction("failed").error("internal", "boom").build()
}

/// A context in memory, without a bucket unless the test adds one.
fn context() -> Context {
    Context::in_memory(()).without_files()
}

/// A side effect that counts how often it happened.
async fn notify(sent: &AtomicU32) -> Result<u32, Failure> {
    Ok(sent.fetch_add(1, Ordering::SeqCst) + 1)
}

#[tokio::test]
async fn a_rerun_returns_the_recorded_outcome_without_running_the_step_again() {
    let (ctx, p, sent) = (context(), prediction(), AtomicU32::new(0));
    assert_eq!(ctx.steps(&p).once("notify", || notify(&sent)).await.unwrap(), 1);
    assert_eq!(ctx.steps(&p).once("notify", || notify(&sent)).await.unwrap(), 1);
    assert_eq!(sent.load(Ordering::SeqCst), 1);
    // Another name, or another status of the same prediction, is another step.
    assert_eq!(ctx.steps(&p).once("page", || notify(&sent)).await.unwrap(), 2);
}

#[tokio::test]
async fn a_panic_after_the_side_effect_and_before_the_store_runs_the_step_once() {
    let (ctx, p, sent) = (context(), prediction(), AtomicU32::new(0));
    // The work as a user writes it: a step, then the result stored.
    let work = |crash: bool| {
        let (ctx, p, sent) = (&ctx, &p, &sent);
        async move {
            let n = ctx.steps(p).once("notify", || notify(sent)).await.unwrap();
            assert!(!crash, "crash after the side effect, before the store");
            ctx.records().store(p.id, "result", &json!(n)).await.unwrap();
        }
    };
    let crashed = std::panic::AssertUnwindSafe(work(true)).catch_unwind().await;
    assert!(crashed.is_err(), "the first run panics");
    assert_eq!(ctx.memory_table().record(p.id, "result"), None);
    work(false).await;
    assert_eq!(sent.load(Ordering::SeqCst), 1, "the retry found the step done");
    assert_eq!(ctx.memory_table().record(p.id, "result"), Some((json!(1), 1)));
}

#[tokio::test]
async fn a_step_begun_and_never_finished_is_unknown_and_never_repeated() {
    let (ctx, p, sent) = (context(), prediction(), AtomicU32::new(0));
    // A run that died after its effect, before its record: its future is dropped there.
    let step = ctx.steps(&p);
    let died = step.once("notify", || async {
        notify(&sent).await?;
        std::future::pending::<Result<u32, Failure>>().await
    });
    assert!(tokio::time::timeout(std::time::Duration::from_millis(50), died).await.is_err());
    for _ in 0..2 {
        let again = ctx.steps(&p).once("notify", || notify(&sent)).await;
        assert!(matches!(again, Err(StepError::Unknown { ref name, .. }) if name == "notify"), "{again:?}");
    }
    assert_eq!(sent.load(Ordering::SeqCst), 1, "never sent twice");
    // An unknown step is an error that says what to do.
    let said = ctx.steps(&p).once("notify", || notify(&sent)).await.unwrap_err().to_string();
    assert!(said.contains("may have had its effect") && said.contains("--forget-step"), "{said}");
}

#[tokio::test]
async fn a_step_that_failed_without_an_effect_runs_again_and_one_that_may_have_is_unknown() {
    let (ctx, p, sent) = (context(), prediction(), AtomicU32::new(0));
    let refused = ctx.steps(&p).once("notify", || async { Err::<u32, _>(Failure::not_done("refused")) }).await;
    assert!(matches!(refused, Err(StepError::Failed { .. })));
    assert_eq!(ctx.steps(&p).once("notify", || notify(&sent)).await.unwrap(), 1);

    // `?` in a step: the error may have followed the effect.
    let lost = ctx.steps(&p).once("post", || async { Err::<u32, _>("no answer".into()) }).await;
    assert!(matches!(lost, Err(StepError::Unknown { source: Some(_), .. })));
    let again = ctx.steps(&p).once("post", || notify(&sent)).await;
    assert!(matches!(again, Err(StepError::Unknown { .. })));
    assert_eq!(sent.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_step_begun_and_never_finished_takes_what_find_finds() {
    let (ctx, p, sent) = (context(), prediction(), AtomicU32::new(0));
    let begun = ctx.steps(&p).once("chain", || async { Err::<String, _>("lost answer".into()) }).await;
    assert!(begun.is_err());
    let create = |_| async { Ok("second".to_owned()) };
    let nothing = ctx.steps(&p).once_or_find("chain", create, |_, _| async { Ok(None) }).await;
    assert!(matches!(nothing, Err(StepError::Unknown { .. })));
    let found = ctx
        .steps(&p)
        .once_or_find("chain", |_| async { Ok("second".to_owned()) }, |_, _| async { Ok(Some("first".to_owned())) })
        .await;
    assert_eq!(found.unwrap(), "first");
    // Recorded: the next rerun neither runs the step nor asks again.
    let again = ctx.steps(&p).once("chain", || async { Ok::<_, Failure>("third".to_owned()) }).await;
    assert_eq!(again.unwrap(), "first");
    assert_eq!(sent.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn find_is_given_the_mark_the_step_was_given() {
    let (ctx, p) = (context(), prediction());
    let given = std::sync::Mutex::new(String::new());
    let lost = ctx
        .steps(&p)
        .once_or_find(
            "chain",
            |mark| {
                *given.lock().unwrap() = mark;
                async { Err::<String, _>("lost answer".into()) }
            },
            |_, _| async { Ok(None) },
        )
        .await;
    assert!(matches!(lost, Err(StepError::Unknown { .. })));
    let mark = given.lock().unwrap().clone();
    assert!(!mark.is_empty());
    let found = ctx
        .steps(&p)
        .once_or_find("chain", |_| async { Ok(String::new()) }, |_, asked| async move { Ok(Some(asked)) })
        .await;
    assert_eq!(found.unwrap(), mark, "find looks for what the step marked");
}

#[tokio::test]
async fn a_repeatable_step_runs_again_until_its_outcome_is_recorded() {
    let (ctx, p, sent) = (context(), prediction(), AtomicU32::new(0));
    let step = ctx.steps(&p);
    let died = step.once_repeatable("copy", |_| async {
        notify(&sent).await?;
        std::future::pending::<Result<u32, Failure>>().await
    });
    assert!(tokio::time::timeout(std::time::Duration::from_millis(50), died).await.is_err());
    assert_eq!(ctx.steps(&p).once_repeatable("copy", |_| notify(&sent)).await.unwrap(), 2);
    assert_eq!(ctx.steps(&p).once_repeatable("copy", |_| notify(&sent)).await.unwrap(), 2);
    assert_eq!(sent.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_repeatable_step_is_told_its_failed_tries_and_records_an_outcome_after_the_last() {
    let (ctx, p) = (context(), prediction());
    // A try that fails as `Tried` is counted; one that fails otherwise (our own side, a
    // crash) is not.
    let told = |last: u32| {
        let steps = ctx.steps(&p);
        async move {
            steps
                .once_repeatable("copy", |tries| async move {
                    match tries {
                        _ if tries + 1 >= last => Ok(format!("gave up after {} tries", tries + 1)),
                        _ => Err(Failure::tried(format!("503 on try {}", tries + 1))),
                    }
                })
                .await
        }
    };
    assert!(matches!(told(3).await, Err(StepError::Failed { .. })));
    let ours = ctx.steps(&p).once_repeatable("copy", |_| async { Err::<String, _>("S3 is down".into()) }).await;
    assert!(matches!(ours, Err(StepError::Failed { .. })), "not counted against the step");
    assert!(matches!(told(3).await, Err(StepError::Failed { .. })));
    assert_eq!(told(3).await.unwrap(), "gave up after 3 tries");
    assert_eq!(told(3).await.unwrap(), "gave up after 3 tries", "recorded: never tried again");
    assert_eq!(ctx.memory_table().step(p.id, "failed", "copy").unwrap().tries.len(), 2);
}

#[tokio::test]
async fn an_outcome_too_large_to_keep_without_a_bucket_is_refused_when_the_step_ends_and_never_recorded() {
    let (ctx, p) = (context(), prediction());
    let large = json!({"blob": "b".repeat(ITEM_BYTES)});
    let first = ctx.steps(&p).once("big", || async { Ok::<Value, Failure>(large.clone()) }).await;
    let Err(refused @ StepError::Unkeepable { .. }) = first else { panic!("refused when recorded: {first:?}") };
    assert!(refused.to_string().contains("OUTPUT_BUCKET"), "{refused}");
    let step = ctx.memory_table().step(p.id, "failed", "big").unwrap();
    assert_eq!(step.outcome, None, "no outcome a rerun could not read back is kept");
}

#[tokio::test]
async fn an_outcome_too_large_for_an_item_is_kept_in_the_bucket_and_read_back() {
    let (ctx, p) = (Context::in_memory(()), prediction());
    let large = json!({"blob": "b".repeat(ITEM_BYTES)});
    let kept = ctx.steps(&p).once("big", || async { Ok::<Value, Failure>(large.clone()) }).await.unwrap();
    assert_eq!(kept, large);
    let again = ctx.steps(&p).once("big", || async { Ok::<Value, Failure>(json!("ran again")) }).await;
    assert_eq!(again.unwrap(), large, "read back from the bucket");
    // Under steps/, which no lifecycle rule expires: it lives as long as its step.
    assert_eq!(ctx.memory_bucket().keys(), [format!("steps/{}/failed/big.json", p.id)]);
    let step = ctx.memory_table().step(p.id, "failed", "big").unwrap();
    assert!(matches!(step.outcome, Some(Kept::InBucket { .. })), "{step:?}");
}
