//! `hooks inspect <id>`: one prediction's story from the table (and the bucket):
//! registered, each status received (when, and whether in order), each unit of work
//! (attempts, state, result or last error), the work's records and steps, the output
//! objects, and why it was closed if the reconciler gave up on it.
//!
//! Repeated deliveries are not in it: the receiver writes nothing for a repeat (that is
//! what keeps it idempotent and fast); they are counted by the `Duplicate` metric.

use crate::prediction::{PredictionId, Status};
use serde_json::{Value, json};

use super::error::{OpsError as Error, Result};
use super::{Ops, OpsBucket};

/// One prediction's timeline (`hooks inspect`): registered, each status received and
/// whether in order, each unit of work (attempts, result, last failure), its records
/// and output objects, why it was closed; as a JSON report ([`render_inspection`](super::render_inspection)
/// writes it for people).
pub async fn inspect(ops: &Ops, id: PredictionId) -> Result<Value> {
    let items = ops.ledger().prediction_items(id).await?;
    if items.is_empty() {
        return Err(Error::NoSuchPrediction(id));
    }
    // Its output files, then its records and step outcomes too large for an item.
    let mut objects = Vec::new();
    if let Some(OpsBucket::S3 { client: s3, name: bucket }) = &ops.bucket {
        for prefix in [format!("predictions/{id}/"), format!("records/{id}/"), format!("steps/{id}/")] {
            let listed = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .send()
                .await
                .map_err(|e| Error::aws(format!("listing s3://{bucket}"), e))?;
            objects.extend(listed.contents().iter().map(|o| {
                json!({"key": o.key(), "bytes": o.size(), "last_modified": o.last_modified().map(|t| t.to_string())})
            }));
        }
    }
    let report = report(id, &items, objects);
    Ok(report)
}

/// The report of one prediction from its items (as `DynamoLedger::prediction_items`
/// gives them) and its output objects.
pub(crate) fn report(id: PredictionId, items: &[Value], objects: Vec<Value>) -> Value {
    let sk = |item: &Value| item["sk"].as_str().unwrap_or_default().to_owned();
    let prediction = items.iter().find(|item| sk(item) == "PRED").cloned().unwrap_or(Value::Null);
    // A status the worker does not act on leaves no event, only when it came on the
    // prediction (`seen_<status>`); one of an older version's tables left an event.
    let seen: Vec<Value> = prediction
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, at)| Some(json!({"status": name.strip_prefix("seen_")?, "received_at": at})))
        .collect();
    let mut events: Vec<&Value> = items.iter().filter(|item| sk(item).starts_with("EVENT#")).collect();
    events.extend(seen.iter().filter(|s| !events.iter().any(|e| e["status"] == s["status"])).collect::<Vec<_>>());
    events.sort_by(|a, b| a["received_at"].as_str().cmp(&b["received_at"].as_str()));
    let rank = |item: &Value| item["status"].as_str().and_then(|s| Status::parse(s).ok()).and_then(|s| s.rank());
    let mut highest: Option<(u8, String)> = None;
    let events: Vec<Value> = events
        .into_iter()
        .map(|event| {
            let status = event["status"].as_str().unwrap_or_default();
            let order = match (&highest, rank(event)) {
                (Some((seen, after)), Some(this)) if *seen > this => format!("out of order (after {after})"),
                _ => "in order".to_owned(),
            };
            if let Some(this) = rank(event)
                && highest.as_ref().is_none_or(|(seen, _)| this > *seen)
            {
                highest = Some((this, status.to_owned()));
            }
            json!({
                "status": status,
                "received_at": event["received_at"],
                "updated_at": event["updated_at"],
                "order": order,
                "work": event.get("enqueue").map(|_| work(event)),
            })
        })
        .collect();
    let records: Vec<Value> = items
        .iter()
        .filter_map(|item| {
            let name = sk(item).strip_prefix("RECORD#")?.to_owned();
            Some(json!({"name": name, "stored_at": item["stored_at"], "record": kept(item)}))
        })
        .collect();
    // Bodies kept apart from their events (`BODY#`), by size: what `hooks forget` erases.
    let bodies: Vec<Value> = items
        .iter()
        .filter_map(|item| {
            let status = sk(item).strip_prefix("BODY#")?.to_owned();
            let bytes = item["body"].as_str().map_or(0, str::len);
            Some(json!({"status": status, "bytes": bytes, "expires_at": item["expires_at"]}))
        })
        .collect();
    let steps: Vec<Value> = items
        .iter()
        .filter_map(|item| {
            let sk = sk(item);
            let (status, name) = sk.strip_prefix("STEP#")?.split_once('#')?;
            let state = if item["state"] == "finished" { "finished" } else { "begun, no outcome recorded" };
            Some(json!({
                "status": status, "name": name, "state": state, "started_at": item["started_at"],
                "finished_at": item["finished_at"], "outcome": kept(item),
            }))
        })
        .collect();
    json!({
        "id": id.to_string(),
        "registered_at": prediction["registered_at"],
        "status": prediction["status"],
        "unfinished": prediction.get("open_pk").is_some(),
        "closed": prediction["closed"],
        "events": events,
        "records": records,
        "bodies": bodies,
        "steps": steps,
        "objects": objects,
    })
}

/// A record or step outcome as its item keeps it: the JSON itself, where it is in the
/// bucket, or its size when it was cut.
fn kept(item: &Value) -> Value {
    if let Some(text) = item["record"].as_str() {
        return serde_json::from_str(text).unwrap_or_else(|_| json!(text));
    }
    match (item.get("record_key"), item.get("record_bytes")) {
        (Some(key), bytes) => json!({"in_bucket": key, "bytes": bytes, "sha256": item["record_sha256"]}),
        (None, Some(bytes)) => json!({"omitted_bytes": bytes, "sha256": item["record_sha256"]}),
        (None, None) => Value::Null,
    }
}

/// A unit of work's state from its event: `waiting` (not claimed yet, or given back
/// after a failure), `running` (a run holds its claim), `done`; and whether a replay of
/// it is waiting to run (done work stays done until the replay stores a new result).
fn work(event: &Value) -> Value {
    let state = match (event.get("work_token"), event["work"].as_str()) {
        (Some(_), _) => "running",
        (None, Some("done")) => "done",
        _ => "waiting",
    };
    let result = event["work_result"].as_str().and_then(|text| serde_json::from_str::<Value>(text).ok());
    json!({
        "state": state,
        "enqueue": event["enqueue"],
        "attempts": event.get("work_attempts").cloned().unwrap_or(json!(0)),
        "done_at": event["done_at"],
        "result": result,
        "last_error": event["last_error"],
        "failed_at": event["failed_at"],
        "replays": event.get("reopened").cloned().unwrap_or(json!(0)),
        "replay_waiting": event.get("replay").is_some(),
    })
}

/// The report as lines for a person.
pub fn render(report: &Value) -> String {
    let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    let mut lines = vec![format!(
        "prediction {}: {}{}",
        text(&report["id"]),
        report["status"].as_str().unwrap_or("no status yet"),
        if report["unfinished"] == json!(true) { " (unfinished)" } else { "" },
    )];
    lines.push(format!("  {}  registered", text(&report["registered_at"])));
    for event in report["events"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  {}  received {}, {}",
            text(&event["received_at"]),
            text(&event["status"]),
            text(&event["order"])
        ));
        let work = &event["work"];
        if work.is_null() {
            continue;
        }
        let attempts = work["attempts"].as_u64().unwrap_or(0);
        let mut line =
            format!("      work: {}, {attempts} attempt{}", text(&work["state"]), if attempts == 1 { "" } else { "s" });
        if work["replays"].as_u64().unwrap_or(0) > 0 {
            line.push_str(&format!(", replayed {}x", work["replays"]));
        }
        if work["replay_waiting"] == json!(true) {
            line.push_str(", a replay waits to run");
        }
        if let Some(done_at) = work["done_at"].as_str() {
            line.push_str(&format!(", done {done_at}: {}", work["result"]));
        }
        lines.push(line);
        if let Some(error) = work["last_error"].as_str() {
            lines.push(format!("      last failure ({}): {error}", text(&work["failed_at"])));
        }
    }
    for record in report["records"].as_array().into_iter().flatten() {
        lines.push(format!("  {}  record {}: {}", text(&record["stored_at"]), text(&record["name"]), record["record"]));
    }
    for body in report["bodies"].as_array().into_iter().flatten() {
        let until =
            if body["expires_at"].is_null() { "its work is done".to_owned() } else { body["expires_at"].to_string() };
        lines.push(format!("  body of {} kept apart: {} bytes, until {until}", text(&body["status"]), body["bytes"]));
    }
    for step in report["steps"].as_array().into_iter().flatten() {
        let outcome = if step["outcome"].is_null() { String::new() } else { format!(": {}", step["outcome"]) };
        lines.push(format!(
            "  {}  step {:?} ({} work): {}{outcome}",
            text(&step["started_at"]),
            text(&step["name"]),
            text(&step["status"]),
            text(&step["state"])
        ));
    }
    for object in report["objects"].as_array().into_iter().flatten() {
        lines.push(format!("  object {} ({} bytes)", text(&object["key"]), object["bytes"]));
    }
    if let Some(reason) = report["closed"].as_str() {
        lines.push(format!("  closed by the reconciler: {reason}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(id: PredictionId) -> Vec<Value> {
        let pk = format!("PRED#{id}");
        vec![
            json!({"pk": pk, "sk": "EVENT#started", "status": "started", "received_at": "2026-01-01T00:00:03Z"}),
            json!({"pk": pk, "sk": "EVENT#succeeded", "status": "succeeded", "received_at": "2026-01-01T00:00:02Z",
                   "enqueue": "sent", "work": "done", "work_attempts": 2, "done_at": "2026-01-01T00:00:04Z",
                   "work_result": "{\"stored\":true}", "last_error": "boom", "failed_at": "2026-01-01T00:00:03Z"}),
            json!({"pk": pk, "sk": "RECORD#result", "record": "{\"status\":\"succeeded\"}", "stored_at": "2026-01-01T00:00:04Z"}),
            json!({"pk": pk, "sk": "BODY#succeeded", "body": "{\"id\":\"x\"}", "expires_at": 1_800_000_000}),
            json!({"pk": pk, "sk": "STEP#succeeded#notify", "state": "started", "started_at": "2026-01-01T00:00:03Z"}),
            json!({"pk": pk, "sk": "STEP#succeeded#file /0", "state": "finished", "started_at": "2026-01-01T00:00:03Z",
                   "record": "{\"key\":\"k\"}"}),
            json!({"pk": pk, "sk": "PRED", "status": "succeeded", "registered_at": "2026-01-01T00:00:01Z"}),
        ]
    }

    #[test]
    fn the_report_orders_events_by_arrival_and_marks_late_ones() {
        let id = PredictionId::random();
        let report = report(id, &items(id), vec![json!({"key": "predictions/x/output", "bytes": 5})]);
        let events = report["events"].as_array().unwrap();
        assert_eq!(events[0]["status"], "succeeded");
        assert_eq!(events[1]["order"], "out of order (after succeeded)");
        assert_eq!(events[0]["work"]["state"], "done");
        assert_eq!(events[0]["work"]["attempts"], 2);
        assert_eq!(events[0]["work"]["result"], json!({"stored": true}));
        assert!(events[1]["work"].is_null(), "a status without work has none");
        assert_eq!(report["records"][0]["record"], json!({"status": "succeeded"}));
        assert_eq!((report["unfinished"].clone(), report["closed"].clone()), (json!(false), Value::Null));
    }

    #[test]
    fn statuses_the_worker_does_not_act_on_are_told_from_the_predictions_own_times() {
        let id = PredictionId::random();
        let pk = format!("PRED#{id}");
        let items = vec![
            json!({"pk": pk, "sk": "PRED", "status": "succeeded", "registered_at": "2026-01-01T00:00:01Z",
                   "seen_pending": "2026-01-01T00:00:02Z", "seen_started": "2026-01-01T00:00:03Z"}),
            json!({"pk": pk, "sk": "EVENT#succeeded", "status": "succeeded", "received_at": "2026-01-01T00:00:04Z",
                   "enqueue": "queued"}),
        ];
        let report = report(id, &items, Vec::new());
        let events = report["events"].as_array().unwrap();
        let told: Vec<_> = events.iter().map(|e| (e["status"].clone(), e["order"].clone())).collect();
        assert_eq!(
            told,
            [
                (json!("pending"), json!("in order")),
                (json!("started"), json!("in order")),
                (json!("succeeded"), json!("in order"))
            ]
        );
        assert!(events[1]["work"].is_null() && events[2]["work"]["state"] == "waiting");
    }

    #[test]
    fn the_rendering_tells_the_story_in_lines() {
        let id = PredictionId::random();
        let text = render(&report(id, &items(id), vec![json!({"key": "predictions/x/output", "bytes": 5})]));
        for expected in [
            "registered",
            "received succeeded, in order",
            "received started, out of order (after succeeded)",
            "work: done, 2 attempts, done 2026-01-01T00:00:04Z",
            "last failure (2026-01-01T00:00:03Z): boom",
            "record result",
            "step \"notify\" (succeeded work): begun, no outcome recorded",
            "step \"file /0\" (succeeded work): finished: {\"key\":\"k\"}",
            "object predictions/x/output (5 bytes)",
            "body of succeeded kept apart: 10 bytes, until 1800000000",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
    }
}
