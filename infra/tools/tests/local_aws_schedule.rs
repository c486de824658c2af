//! `local-aws schedule` against a fake function: the period, the event, one run at a time, the logs.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use axum::http::StatusCode;
use common::{FakeFunction, LocalAws, REGION, eventually};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_invokes_the_reconciler_every_period_one_run_at_a_time() {
    // Each run takes longer than the period: a second run must wait, not overlap.
    let answer = Box::new(|_, _: &serde_json::Value| (StatusCode::OK, json!({"checked": 2, "requeued": 1})));
    let function = FakeFunction::start(Duration::from_millis(1500), answer).await;
    let mut app = LocalAws::start(&["schedule", "--every-secs", "1", "--invoke-url", &function.url], &[]);

    // Each run's answer is logged on one line; three of them means three runs finished.
    let answered = |log: &str| {
        log.lines()
            .filter(|l| l.contains("scheduled run") && l.contains(r#"answer={"checked":2,"requeued":1}"#))
            .count()
    };
    eventually("three answered runs in the log", Duration::from_secs(20), async || answered(&app.log()) >= 3).await;
    let status = app.stop();
    assert!(status.success(), "exit {status:?}; log:\n{}", app.log());

    let calls = function.calls();
    assert_eq!(function.max_concurrent_calls(), 1, "runs overlapped");
    assert!(calls[0].at.duration_since(app.started) >= Duration::from_millis(900), "the first run waits one period");
    for pair in calls.windows(2) {
        assert!(
            pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(1500),
            "a run started before the last ended"
        );
    }
    let mut ids = HashSet::new();
    for call in &calls {
        let event = &call.event;
        assert_eq!(call.function, "reconciler");
        assert_eq!(event["version"], "0");
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["source"], "aws.scheduler");
        assert_eq!(event["region"], REGION);
        assert_eq!(event["detail"], json!({}));
        assert!(event["account"].is_string() && event["resources"][0].is_string(), "{event}");
        let time = event["time"].as_str().map(|t| OffsetDateTime::parse(t, &Rfc3339));
        assert!(matches!(time, Some(Ok(_))), "time is RFC 3339: {event}");
        assert!(ids.insert(event["id"].to_string()), "every event has its own id");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_logged_and_the_next_period_runs_anyway() {
    let error = json!({"errorType": "wriftai_hooks::Error", "errorMessage": "table missing"});
    let function =
        FakeFunction::start(Duration::ZERO, Box::new(move |_, _| (StatusCode::INTERNAL_SERVER_ERROR, error.clone())))
            .await;
    // The period comes from RECONCILE_EVERY_SECS, as `make dev` sets it.
    let mut app = LocalAws::start(&["schedule", "--invoke-url", &function.url], &[("RECONCILE_EVERY_SECS", "1")]);

    eventually("two scheduled runs", Duration::from_secs(20), async || function.calls().len() >= 2).await;
    assert!(app.stop().success());
    let log = app.log();
    let failed = log.lines().filter(|l| l.contains("scheduled run failed") && l.contains("table missing"));
    assert!(failed.count() >= 2, "{log}");
}
