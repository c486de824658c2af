//! Chaos: drop, duplicate and reorder at the configured rates, reproducibly per seed.

mod common;

use common::{Receiver, Sim, eventually};
use serde_json::{Value, json};

/// Creates a prediction with a webhook and waits until `n` attempts of it are logged.
async fn run_one(sim: &Sim, hook: &Receiver, n: usize) -> Vec<Value> {
    let p = sim.create(json!({"model": "a/b", "input": {}, "webhook": {"url": hook.url}})).await;
    let id = p["id"].as_str().expect("id").to_owned();
    eventually(&format!("{n} attempts are logged"), || async {
        let log = sim.deliveries(&id).await;
        (log.len() >= n).then_some(log)
    })
    .await
}

#[tokio::test]
async fn a_drop_rate_of_one_drops_every_delivery() {
    let sim = Sim::start(|c| c.chaos.drop_rate = 1.0).await;
    let hook = Receiver::start(&[]).await;
    let log = run_one(&sim, &hook, 4).await;
    assert!(log.iter().all(|a| a["outcome"] == "dropped"));
    assert!(hook.hits().is_empty());
}

#[tokio::test]
async fn a_duplicate_rate_of_one_sends_every_delivery_twice() {
    let sim = Sim::start(|_| {}).await;
    let (status, settings) = sim.put_chaos(json!({"duplicate_rate": 1.0})).await;
    assert_eq!(status, 200);
    assert_eq!(settings["duplicate_rate"], 1.0);
    assert_eq!(settings["max_attempts"], 5, "the answer holds every setting");
    let hook = Receiver::start(&[]).await;
    let log = run_one(&sim, &hook, 8).await;
    let copies: Vec<(&str, bool)> =
        log.iter().map(|a| (a["status"].as_str().unwrap_or(""), a["duplicate"] == true)).collect();
    assert_eq!(
        copies,
        [
            ("pending", false),
            ("pending", true),
            ("starting", false),
            ("starting", true),
            ("started", false),
            ("started", true),
            ("succeeded", false),
            ("succeeded", true)
        ]
    );
    assert_eq!(hook.wait_for(8).await.len(), 8);
    assert_eq!(sim.get("/_sim/stats").await.1["duplicates"], 4);
}

#[tokio::test]
async fn a_reorder_rate_of_one_sends_started_after_the_terminal_status() {
    let sim = Sim::start(|c| c.chaos.reorder_rate = 1.0).await;
    let hook = Receiver::start(&[]).await;
    let log = run_one(&sim, &hook, 4).await;
    let order: Vec<&str> = log.iter().filter_map(|a| a["status"].as_str()).collect();
    assert_eq!(order, ["pending", "starting", "succeeded", "started"]);
    assert_eq!(log[3]["reordered"], true);
    hook.wait_for(4).await;
    assert_eq!(hook.statuses(), ["pending", "starting", "succeeded", "started"]);
}

#[tokio::test]
async fn a_bad_chaos_setting_is_refused() {
    let sim = Sim::start(|_| {}).await;
    assert_eq!(sim.put_chaos(json!({"drop_rate": 2})).await.0, 422);
    assert_eq!(sim.put_chaos(json!({"max_attempts": 0})).await.0, 422);
    assert_eq!(sim.put_chaos(json!({"dorp_rate": 0.1})).await.0, 400);
    assert_eq!(sim.get("/_sim/chaos").await.1["drop_rate"], 0.0);
}

/// The chaos of `n` predictions in creation order: per delivery, (status, dropped,
/// duplicate, reordered).
async fn chaos_trace(sim: &Sim, n: usize) -> Vec<Vec<(String, bool, bool, bool)>> {
    let hook = Receiver::start(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..n {
        let p = sim.create(json!({"model": "a/b", "input": {}, "webhook": {"url": hook.url}})).await;
        ids.push(p["id"].as_str().expect("id").to_owned());
    }
    // Settled: every prediction has all four statuses logged, and nothing is in flight
    // (so duplicates and held-back deliveries are logged too).
    let logs = eventually("the deliveries settle", || async {
        let mut logs = Vec::new();
        for id in &ids {
            logs.push(sim.deliveries(id).await);
        }
        let complete = logs.iter().all(|log| {
            log.iter().filter_map(|a| a["status"].as_str()).collect::<std::collections::HashSet<_>>().len() == 4
        });
        let idle = sim.get("/_sim/stats").await.1["in_flight"] == 0;
        (complete && idle).then_some(logs)
    })
    .await;
    logs.iter()
        .map(|log| {
            log.iter()
                .map(|a| {
                    let status = a["status"].as_str().unwrap_or("").to_owned();
                    (status, a["outcome"] == "dropped", a["duplicate"] == true, a["reordered"] == true)
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn the_same_seed_gives_the_same_chaos_decisions() {
    let chaotic = |c: &mut wriftai_sim::Config| {
        c.chaos.seed = 42;
        c.chaos.drop_rate = 0.3;
        c.chaos.duplicate_rate = 0.3;
        c.chaos.reorder_rate = 0.5;
    };
    let first = Sim::start(chaotic).await;
    let second = Sim::start(chaotic).await;
    let a = chaos_trace(&first, 6).await;
    let b = chaos_trace(&second, 6).await;
    assert_eq!(a, b);
    let all: Vec<_> = a.iter().flatten().collect();
    assert!(all.iter().any(|d| d.1), "seed 42 drops something");
    assert!(all.iter().any(|d| d.2), "seed 42 duplicates something");
    assert!(all.iter().any(|d| d.3), "seed 42 reorders something");

    // Setting the seed again restarts the sequence: the replay matches too.
    assert_eq!(first.put_chaos(json!({"seed": 42})).await.0, 200);
    assert_eq!(chaos_trace(&first, 6).await, a);
}
