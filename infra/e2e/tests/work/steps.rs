//! The work's steps under crashes asked for: the test worker panics or fails before the
//! work (`panic_once`, `fail_once`) or after its steps and before its result is stored
//! (`panic_before_store`). Each step's side effect happens once, counted where it lands:
//! the simulator's notification sink, and WriftAI's own list of predictions.

use e2e::{Sim, Stack, api, eventually};
use serde_json::json;
use wriftai_hooks::internals::prediction::PredictionId;

use super::worked;

#[tokio::test]
async fn each_failed_prediction_is_notified_exactly_once_whatever_crashes() {
    let stack = Stack::from_env().await;
    let sim = Sim::from_env();
    let mut ids = Vec::new();
    for hook in [None, Some("panic_once"), Some("fail_once"), Some("panic_before_store")] {
        let mut input = json!({"prompt": "notify me", "sim": {"outcome": "failed"}});
        if let Some(hook) = hook {
            input["test_hook"] = hook.into();
        }
        ids.push((hook, super::create(&stack, "acme/echo", input).await));
    }
    for (hook, id) in ids {
        let (result, writes) = worked(&stack, id, 60).await;
        assert_eq!((result["status"].as_str(), writes), (Some("failed"), 1), "{hook:?}");
        let posts = sim.notifications(id).await;
        assert_eq!(posts.len(), 1, "{hook:?}: {posts:?}");
        assert_eq!(posts[0]["error"], "simulated failure", "{hook:?}");
    }
}

#[tokio::test]
async fn a_crash_before_the_store_creates_the_next_prediction_once() {
    let stack = Stack::from_env().await;
    let prompt = format!("chain {}", PredictionId::random());
    let input = json!({"prompt": prompt, "then": {"model": "acme/echo"}, "test_hook": "panic_before_store"});
    let first = super::create(&stack, "acme/echo", input).await;
    let (record, writes) = worked(&stack, first, 60).await;
    assert_eq!(writes, 1);
    let next = PredictionId::parse(record["next"].as_str().expect("the work chained a prediction")).unwrap();
    // WriftAI holds exactly one prediction made from this output.
    let made = api().list(&[], None, 100).await.unwrap();
    let mut children = Vec::new();
    for item in made.items {
        let full = api().get(item.id).await.unwrap().unwrap().prediction;
        if full.input["prompt"] == format!("echo: {prompt}") {
            children.push(item.id);
        }
    }
    assert_eq!(children, [next], "the retry returned the recorded child instead of creating another");
    let event = eventually(30, "the work marked done", || async {
        let event = stack.items(first).await.remove("EVENT#succeeded")?;
        (event.get("work")?.as_s().ok()? == "done").then_some(event)
    })
    .await;
    assert_eq!(event["work_attempts"].as_n().unwrap(), "2", "the first attempt crashed");
}
