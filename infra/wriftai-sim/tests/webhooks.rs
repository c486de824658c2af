//! Webhook delivery: order and bodies, signatures, retries, and drops chosen per
//! prediction.

mod common;

use common::{Receiver, Sim, eventually};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// The header's `key=value` pairs, in order.
fn pairs(header: &str) -> Vec<(String, String)> {
    header.split(',').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// Waits until `n` delivery attempts of `id` are logged.
async fn logged(sim: &Sim, id: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} attempts are logged"), || async {
        let log = sim.deliveries(id).await;
        (log.len() >= n).then_some(log)
    })
    .await
}

#[tokio::test]
async fn every_status_change_is_delivered_in_order_with_the_full_prediction() {
    let sim = Sim::start(|_| {}).await;
    let hook = Receiver::start(&[]).await;
    let created =
        sim.create(json!({"model": "acme/echo", "input": {"prompt": "hi"}, "webhook": {"url": hook.url}})).await;
    let hits = hook.wait_for(4).await;
    assert_eq!(hook.statuses(), ["pending", "starting", "started", "succeeded"]);
    for hit in &hits {
        assert_eq!(hit.json["id"], created["id"]);
        assert_eq!(hit.content_type.as_deref(), Some("application/json"));
        assert_eq!(hit.signature, None, "no secret, no signature");
        for field in [
            "created_at",
            "updated_at",
            "setup_time",
            "execution_time",
            "model",
            "input",
            "output",
            "error",
            "metrics",
            "stream",
        ] {
            assert!(hit.json.get(field).is_some(), "{field} is in every body");
        }
    }
    assert_eq!(hits[0].json["output"], Value::Null);
    assert_eq!(hits[3].json["output"], "echo: hi");
    assert_eq!(hits[3].json, sim.get(&format!("/v1/predictions/{}", created["id"].as_str().unwrap_or(""))).await.1);
}

#[tokio::test]
async fn a_signature_verifies_with_the_secret_and_unknown_schemes_can_ride_along() {
    let sim = Sim::start(|c| c.extra_signatures = true).await;
    let hook = Receiver::start(&[]).await;
    let secret = "whsec-test";
    sim.create(json!({"model": "a/b", "input": {}, "webhook": {"url": hook.url, "secret": secret}})).await;
    for hit in hook.wait_for(4).await {
        let header = hit.signature.as_deref().expect("a signature header");
        let pairs = pairs(header);
        assert_eq!(pairs[0].0, "t");
        assert_eq!(pairs[1].0, "v1");
        assert_eq!(pairs[2].0, "v2", "the unknown scheme comes after v1");
        let t: u64 = pairs[0].1.parse().expect("t is unix seconds");
        let message = [format!("{t}.").as_bytes(), &hit.body].concat();
        assert_eq!(pairs[1].1, hmac_hex(secret, &message));
        assert_ne!(pairs[1].1, hmac_hex("other", &message));
    }
}

#[tokio::test]
async fn a_503_or_429_is_retried_until_the_receiver_accepts() {
    let sim = Sim::start(|_| {}).await;
    let hook = Receiver::start(&[503, 429]).await;
    let p = sim.create(json!({"model": "a/b", "input": {}, "webhook": {"url": hook.url}})).await;
    let id = p["id"].as_str().expect("id");
    let log = logged(&sim, id, 6).await;
    let pending: Vec<(u64, Value)> = log
        .iter()
        .filter(|a| a["status"] == "pending")
        .map(|a| (a["attempt"].as_u64().unwrap_or(0), a["outcome"].clone()))
        .collect();
    assert_eq!(pending, [(1, json!({"http": 503})), (2, json!({"http": 429})), (3, json!({"http": 200}))]);
    assert_eq!(hook.statuses()[..3], ["pending", "pending", "pending"]);
    hook.wait_for(6).await;
    let (_, stats) = sim.get("/_sim/stats").await;
    assert_eq!(stats["retries"], 2);
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let sim = Sim::start(|_| {}).await;
    let hook = Receiver::start(&[400]).await;
    let p = sim.create(json!({"model": "a/b", "input": {}, "webhook": {"url": hook.url}})).await;
    let log = logged(&sim, p["id"].as_str().expect("id"), 4).await;
    let outcomes: Vec<(&str, &Value)> =
        log.iter().map(|a| (a["status"].as_str().unwrap_or(""), &a["outcome"])).collect();
    assert_eq!(outcomes[0], ("pending", &json!({"http": 400})));
    assert_eq!(outcomes[1].0, "starting", "the next status follows without a retry");
    assert_eq!(hook.wait_for(4).await.len(), 4);
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_up_to_max_attempts_then_given_up() {
    let sim = Sim::start(|c| c.chaos.max_attempts = 2).await;
    // A port that was free a moment ago and has nobody listening now.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", closed.local_addr().expect("address"));
    drop(closed);
    let p = sim.create(json!({"model": "a/b", "input": {}, "webhook": {"url": url}})).await;
    let log = logged(&sim, p["id"].as_str().expect("id"), 8).await;
    assert_eq!(log.len(), 8, "4 statuses, 2 attempts each");
    assert!(log.iter().all(|a| a["outcome"]["error"].is_string()), "{log:?}");
    let (_, stats) = sim.get("/_sim/stats").await;
    assert_eq!(stats["exhausted"], 4);
}

#[tokio::test]
async fn one_predictions_deliveries_in_flight_are_counted_apart_from_anothers() {
    // Retries a second apart keep the refused prediction's deliveries in flight.
    let sim = Sim::start(|c| c.retry_base = std::time::Duration::from_secs(1)).await;
    let refusing = Receiver::start(&[503; 5]).await;
    let accepting = Receiver::start(&[]).await;
    let slow = sim.create(json!({"model": "a/b", "input": {}, "webhook": {"url": refusing.url}})).await;
    let quick = sim.create(json!({"model": "a/b", "input": {}, "webhook": {"url": accepting.url}})).await;
    let in_flight = |id: String| {
        let sim = &sim;
        async move { sim.get(&format!("/_sim/in_flight?prediction_id={id}")).await.1["in_flight"].clone() }
    };
    let (slow, quick) = (slow["id"].as_str().expect("id").to_owned(), quick["id"].as_str().expect("id").to_owned());
    accepting.wait_for(4).await;
    eventually("the quick prediction has nothing in flight", || async {
        (in_flight(quick.clone()).await == 0).then_some(())
    })
    .await;
    assert!(in_flight(slow.clone()).await.as_u64().expect("a count") > 0, "its 503s are still being retried");
    assert!(sim.get("/_sim/stats").await.1["in_flight"].as_u64().expect("a count") > 0);
    assert_eq!(in_flight("never-created".to_owned()).await, 0);
}

#[tokio::test]
async fn statuses_chosen_in_sim_are_dropped_and_logged_as_dropped() {
    let sim = Sim::start(|_| {}).await;
    let hook = Receiver::start(&[]).await;
    let some = sim
        .create(json!({"model": "a/b", "input": {"sim": {"drop_statuses": ["started", "starting"]}}, "webhook": {"url": hook.url}}))
        .await;
    let log = logged(&sim, some["id"].as_str().expect("id"), 4).await;
    let dropped: Vec<&str> =
        log.iter().filter(|a| a["outcome"] == "dropped").filter_map(|a| a["status"].as_str()).collect();
    assert_eq!(dropped, ["starting", "started"]);
    assert!(log.iter().filter(|a| a["outcome"] == "dropped").all(|a| a["attempt"] == 0));
    assert_eq!(hook.wait_for(2).await.len(), 2);
    assert_eq!(hook.statuses(), ["pending", "succeeded"]);

    let all = sim
        .create(json!({"model": "a/b", "input": {"sim": {"drop_webhooks": true}}, "webhook": {"url": hook.url}}))
        .await;
    let log = logged(&sim, all["id"].as_str().expect("id"), 4).await;
    assert!(log.iter().all(|a| a["outcome"] == "dropped"));
    assert_eq!(hook.hits().len(), 2, "nothing of the second prediction arrived");
}

#[tokio::test]
async fn a_cancelled_prediction_delivers_cancelled_last() {
    let sim = Sim::start(|_| {}).await;
    let hook = Receiver::start(&[]).await;
    let p = sim.create(json!({"model": "acme/never", "input": {}, "webhook": {"url": hook.url}})).await;
    let id = p["id"].as_str().expect("id");
    hook.wait_for(3).await;
    let cancel = sim.v1(reqwest::Method::POST, &format!("/predictions/{id}/cancel")).send().await.expect("sent");
    assert_eq!(cancel.status(), 200);
    let hits = hook.wait_for(4).await;
    assert_eq!(hook.statuses(), ["pending", "starting", "started", "cancelled"]);
    assert_eq!(hits[3].json["output"], Value::Null);
}
