//! The `/v1` API as a client sees it: auth, rate limit, validation, wait, get, list,
//! cancel and expiry.

mod common;

use common::{Sim, eventually};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_request_without_the_right_token_is_refused_with_401() {
    let sim = Sim::start(|_| {}).await;
    let url = sim.url("/v1/predictions");
    for request in [sim.http.get(&url), sim.http.get(&url).bearer_auth("wrong")] {
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("JSON error");
        assert_eq!(body["error"], "unauthorized");
    }
}

#[tokio::test]
async fn past_the_rate_limit_requests_get_429_with_the_reset_time() {
    let sim = Sim::start(|c| c.rate_limit = 2).await;
    let mut refused = Vec::new();
    for _ in 0..10 {
        let response = sim.v1(Method::GET, "/predictions").send().await.expect("sent");
        if response.status() == 429 {
            let reset = response.headers().get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body: Value = response.json().await.expect("JSON error");
            refused.push((reset, body));
        }
    }
    assert!(!refused.is_empty(), "10 requests against a limit of 2 per second");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    for (reset, body) in &refused {
        let reset: u64 = reset.as_deref().and_then(|r| r.parse().ok()).expect("x-ratelimit-reset is a unix time");
        assert!(reset + 5 >= now && reset <= now + 5, "reset {reset} is about now ({now})");
        assert_eq!(body["error"], "rate_limited");
    }
    let (_, stats) = sim.get("/_sim/stats").await;
    assert_eq!(stats["rate_limited"], refused.len());
}

#[tokio::test]
async fn bad_json_or_a_missing_model_is_400_and_validated_non_object_input_is_422() {
    let sim = Sim::start(|_| {}).await;
    let post = |body: &'static str, validate: bool| {
        let request = sim.v1(Method::POST, "/predictions").header("content-type", "application/json").body(body);
        if validate { request.header("Validate-Input", "true") } else { request }
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(post("{not json", false).send().await.map(status).ok(), Some(400));
    assert_eq!(post(r#"{"input": {}}"#, false).send().await.map(status).ok(), Some(400));
    assert_eq!(post(r#"{"model": "a/b", "input": [1]}"#, true).send().await.map(status).ok(), Some(422));
    assert_eq!(post(r#"{"model": "a/b", "input": {}}"#, true).send().await.map(status).ok(), Some(201));
    assert_eq!(post(r#"{"model": "nope", "input": {}}"#, false).send().await.map(status).ok(), Some(422));
}

#[tokio::test]
async fn prefer_wait_answers_the_terminal_prediction() {
    let sim = Sim::start(|_| {}).await;
    let response = sim
        .v1(Method::POST, "/predictions")
        .header("Prefer", "wait=10")
        .json(&json!({"model": "acme/echo:3", "input": {"prompt": "hi"}}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let p: Value = response.json().await.expect("JSON");
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["output"], "echo: hi");
    assert_eq!(p["error"], Value::Null);
    assert_eq!(p["model"], json!({"owner": "acme", "name": "echo", "version_number": 3}));
    for field in ["created_at", "updated_at", "setup_time", "execution_time"] {
        assert!(p[field].is_string(), "{field} is set");
    }
    assert_eq!(p["stream"], false);
}

#[tokio::test]
async fn a_prediction_is_fetched_by_id_and_an_unknown_id_is_404() {
    let sim = Sim::start(|_| {}).await;
    let created = sim.create(json!({"model": "acme/fail", "input": {"n": 1}})).await;
    assert_eq!(created["status"], "pending");
    assert_eq!(created["output"], Value::Null);
    let id = created["id"].as_str().expect("id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "the id is a UUID");
    let failed = sim.finished(id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["output"], Value::Null);
    assert_eq!(failed["error"], json!({"source": "internal", "message": "simulated failure", "detail": null}));
    let (status, body) = sim.get(&format!("/v1/predictions/{}", uuid::Uuid::new_v4())).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn an_expired_prediction_answers_404() {
    let sim = Sim::start(|_| {}).await;
    let p = sim.create(json!({"model": "a/b", "input": {"sim": {"expire_after_ms": 100}}})).await;
    let path = format!("/v1/predictions/{}", p["id"].as_str().expect("id"));
    eventually("the prediction's data expires", || async { (sim.get(&path).await.0 == 404).then_some(()) }).await;
    let (_, list) = sim.get("/v1/predictions").await;
    assert_eq!(list["items"], json!([]), "an expired prediction is not listed either");
}

#[tokio::test]
async fn cancel_ends_a_running_prediction_and_leaves_a_finished_one_alone() {
    let sim = Sim::start(|_| {}).await;
    let running = sim.create(json!({"model": "acme/never", "input": {}})).await;
    let id = running["id"].as_str().expect("id");
    let path = format!("/v1/predictions/{id}");
    eventually("it starts", || async { (sim.get(&path).await.1["status"] == "started").then_some(()) }).await;
    let response = sim.v1(Method::POST, &format!("/predictions/{id}/cancel")).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["id"], id);
    assert_eq!(sim.finished(id).await["status"], "cancelled");

    let done = sim.create(json!({"model": "a/b", "input": {"prompt": "x"}})).await;
    let done_id = done["id"].as_str().expect("id");
    let before = sim.finished(done_id).await;
    let response = sim.v1(Method::POST, &format!("/predictions/{done_id}/cancel")).send().await.expect("sent");
    assert_eq!(response.json::<Value>().await.ok(), Some(before.clone()));
    assert_eq!(sim.get(&format!("/v1/predictions/{done_id}")).await.1, before);
    let missing = sim.v1(Method::POST, "/predictions/nope/cancel").send().await.expect("sent");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn output_files_and_sized_outputs_are_deterministic() {
    let sim = Sim::start(|_| {}).await;
    let sized = sim.create(json!({"model": "a/b", "input": {"prompt": "ab", "sim": {"output_bytes": 5000}}})).await;
    let sized = sim.finished(sized["id"].as_str().expect("id")).await;
    assert_eq!(sized["output"].as_str().map(|s| s.chars().count()), Some(5000));
    let linked = sim.create(json!({"model": "a/b", "input": {"prompt": "ab", "sim": {"output_url": true}}})).await;
    let id = linked["id"].as_str().expect("id");
    let linked = sim.finished(id).await;
    let url = linked["output"].as_str().expect("the output is a URL");
    assert_eq!(url, sim.url(&format!("/_sim/files/{id}")));
    let content = sim.http.get(url).send().await.expect("sent").text().await.expect("text");
    assert_eq!(content.len(), 1024);
    assert!(content.starts_with("echo: abecho: ab"));
}
