//! `GET /v1/predictions`: newest first, status filters, and cursors both ways.

mod common;

use common::{Sim, eventually};
use serde_json::{Value, json};

/// Follows `next_cursor` from the first page; returns the ids of each page.
async fn pages(sim: &Sim, query: &str) -> (Vec<Vec<String>>, Vec<Value>) {
    let mut pages = Vec::new();
    let mut bodies = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/predictions?{query}&cursor={c}"),
            None => format!("/v1/predictions?{query}"),
        };
        let (status, body) = sim.get(&path).await;
        assert_eq!(status, 200, "{path}");
        let ids = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["id"].as_str().unwrap_or("").to_owned())
            .collect();
        pages.push(ids);
        cursor = body["next_cursor"].as_str().map(str::to_owned);
        bodies.push(body);
        if cursor.is_none() {
            return (pages, bodies);
        }
    }
}

#[tokio::test]
async fn listing_pages_newest_first_with_a_status_filter_and_cursors_both_ways() {
    let sim = Sim::start(|_| {}).await;
    let mut succeeded = Vec::new();
    let mut running = Vec::new();
    for i in 0..7 {
        let model = if i % 3 == 2 { "acme/never" } else { "acme/echo" };
        let p = sim.create(json!({"model": model, "input": {"i": i}})).await;
        let id = p["id"].as_str().expect("id").to_owned();
        if i % 3 == 2 { running.push(id) } else { succeeded.push(id) }
    }
    for id in &succeeded {
        sim.finished(id).await;
    }
    for id in &running {
        let path = format!("/v1/predictions/{id}");
        eventually("it starts", || async { (sim.get(&path).await.1["status"] == "started").then_some(()) }).await;
    }

    let (found, bodies) = pages(&sim, "statuses=succeeded&page_size=2").await;
    assert_eq!(found.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
    let newest_first: Vec<String> = succeeded.iter().rev().cloned().collect();
    assert_eq!(found.concat(), newest_first);
    assert_eq!(bodies[0]["previous_cursor"], Value::Null);
    assert_eq!(bodies[2]["next_cursor"], Value::Null);
    assert!(bodies[0]["items"][0].get("input").is_none(), "list items are summaries");

    // Back from the second page to the first.
    let back = bodies[1]["previous_cursor"].as_str().expect("the second page has a previous cursor");
    let (_, first_again) = sim.get(&format!("/v1/predictions?statuses=succeeded&page_size=2&cursor={back}")).await;
    let ids: Vec<&str> =
        first_again["items"].as_array().expect("items").iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, found[0]);
    assert_eq!(first_again["previous_cursor"], Value::Null);

    let (only_started, _) = pages(&sim, "statuses=started").await;
    assert_eq!(only_started.concat(), running.iter().rev().cloned().collect::<Vec<_>>());
    let (both, _) = pages(&sim, "statuses=started&statuses=succeeded").await;
    assert_eq!(both.concat().len(), 7);
    let (everything, _) = pages(&sim, "page_size=100").await;
    assert_eq!(everything.len(), 1);
    assert_eq!(everything[0].len(), 7);
}

#[tokio::test]
async fn an_unknown_status_or_a_foreign_cursor_is_refused() {
    let sim = Sim::start(|_| {}).await;
    assert_eq!(sim.get("/v1/predictions?statuses=done").await.0, 422);
    assert_eq!(sim.get("/v1/predictions?cursor=abc").await.0, 400);
    assert_eq!(sim.get("/v1/predictions?page_size=lots").await.0, 422);
}
