//! Output files kept in the stack's bucket (moto's S3 here) by the worker's example:
//! streamed whole, once per output however often the work runs, and never partly.

use e2e::{Stack, eventually, hooks, objects};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::prediction::PredictionId;

async fn create(stack: &Stack, input: Value) -> PredictionId {
    super::create(stack, "acme/echo", input).await
}

fn number(item: &e2e::Item, name: &str) -> u64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn a_50_mb_output_is_kept_whole_and_a_replay_leaves_one_object() {
    let stack = Stack::from_env().await;
    let size = 50_000_000;
    let id = create(&stack, json!({"prompt": "big", "sim": {"output_url": true, "output_bytes": size}})).await;
    let (record, _) = eventually(120, "the output kept", || stack.record(id, "result")).await;
    let file = &record["files"][0];
    let key = format!("predictions/{id}/output");
    assert_eq!((file["position"].as_str(), file["key"].as_str()), (Some("output"), Some(key.as_str())));
    assert_eq!(
        (file["bytes"].as_u64(), file["content_type"].as_str()),
        (Some(size), Some("text/plain; charset=utf-8"))
    );

    let url = record["output"].as_str().unwrap();
    let served = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let (s3, bucket) = e2e::bucket(&stack.aws);
    let object = s3.get_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(object.content_type(), Some("text/plain; charset=utf-8"));
    let kept = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(kept.len(), size as usize);
    assert!(kept == served, "the object is the file, byte for byte");
    assert_eq!(file["sha256"].as_str(), Some(hex::encode(Sha256::digest(&kept)).as_str()));

    // The same work again: the copy overwrites its object.
    let said = hooks(&["replay", &id.to_string()]).unwrap();
    assert!(said.contains("it was done; it runs again"), "{said}");
    eventually(120, "the replayed work done", || async {
        let event = stack.items(id).await.remove("EVENT#succeeded")?;
        (event.get("work")?.as_s().ok()? == "done" && number(&event, "reopened") == 1).then_some(())
    })
    .await;
    let (again, writes) = stack.record(id, "result").await.unwrap();
    assert_eq!((again["files"].clone(), writes), (record["files"].clone(), 2), "the result stored once per run");
    assert_eq!(objects(&stack.aws, id).await, vec![key]);
}

#[tokio::test]
async fn an_output_too_large_for_an_item_is_kept_as_one_json_object() {
    let stack = Stack::from_env().await;
    // The simulator's outputs are one URL or one text; a long text stands for the
    // JSON output too large for an item.
    let text = create(&stack, json!({"prompt": "long", "sim": {"output_bytes": 200_000}})).await;
    let (record, _) = eventually(60, "the output kept", || stack.record(text, "result")).await;
    let kept = &record["output"]["kept"];
    assert_eq!(kept["key"].as_str(), Some(format!("predictions/{text}/output.json").as_str()));
    assert_eq!(kept["bytes"].as_u64(), Some(200_002));
    assert_eq!(objects(&stack.aws, text).await, vec![format!("predictions/{text}/output.json")]);
}

#[tokio::test]
async fn a_file_that_breaks_off_is_missing_or_stalls_fails_its_work_and_keeps_nothing() {
    let stack = Stack::from_env().await;
    let (s3, bucket) = e2e::bucket(&stack.aws);
    let mut ids = Vec::new();
    // 20 MB cut at 10 MB: one part of a multipart upload is written before the break.
    for (fault, bytes) in [("cut", 20_000_000), ("missing", 1000), ("stall", 1_000_000)] {
        let input = json!({"prompt": fault, "sim": {"output_url": true, "output_bytes": bytes, "file_fault": fault}});
        ids.push((fault, create(&stack, input).await));
    }
    for (fault, id) in ids {
        // Tried five times (the queue's maxReceiveCount), then in the dead-letter queue.
        let event = eventually(150, &format!("{fault}: five failed attempts"), || async {
            let event = stack.items(id).await.remove("EVENT#succeeded")?;
            (number(&event, "work_attempts") >= 5 && !event.contains_key("work")).then_some(event)
        })
        .await;
        let error = event["last_error"].as_s().unwrap();
        let expected = if fault == "missing" { "404" } else { "error decoding response body" };
        assert!(error.contains(expected), "{fault}: {error}");
        eventually(60, &format!("{fault}: its message in the DLQ"), || async {
            stack.dead_letters(None).await.iter().any(|body| body.contains(&id.to_string())).then_some(())
        })
        .await;
        assert_eq!(stack.record(id, "result").await, None, "{fault}: no result");
        assert!(objects(&stack.aws, id).await.is_empty(), "{fault}: no object");
        let uploads = s3.list_multipart_uploads().bucket(&bucket).prefix(format!("predictions/{id}/")).send().await;
        assert!(uploads.unwrap().uploads().is_empty(), "{fault}: no upload left unfinished");
    }
}
