//! Output files kept in the stack's bucket (moto's S3 here) by the worker's example:
//! streamed whole, once per file however often the work runs, never partly, and only
//! from where the URL policy allows (the local stack allows the simulator's address
//! alone). Replays keep done work done.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use e2e::{Sim, Stack, eventually, hooks, objects};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wriftai_hooks::internals::prediction::PredictionId;

async fn create(stack: &Stack, input: Value) -> PredictionId {
    super::create(stack, "acme/echo", input).await
}

fn number(item: &e2e::Item, name: &str) -> u64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The event of a prediction's `succeeded` work once `ready` holds of it.
async fn event_when(
    stack: &Stack,
    id: PredictionId,
    seconds: u64,
    what: &str,
    ready: impl Fn(&e2e::Item) -> bool,
) -> e2e::Item {
    eventually(seconds, what, || async {
        let event = stack.items(id).await.remove("EVENT#succeeded")?;
        ready(&event).then_some(event)
    })
    .await
}

fn done(event: &e2e::Item) -> bool {
    event.get("work").and_then(|w| w.as_s().ok()).is_some_and(|w| w == "done")
}

#[tokio::test]
async fn a_50_mb_output_is_kept_whole_and_a_replay_neither_fetches_nor_writes_it_again() {
    let stack = Stack::from_env().await;
    let size = 50_000_000;
    let id = create(&stack, json!({"prompt": "big", "sim": {"output_url": true, "output_bytes": size}})).await;
    let (record, _) = eventually(120, "the output kept", || stack.record(id, "result")).await;
    let file = &record["files"][0];
    let key = format!("predictions/{id}/output");
    assert_eq!((file["pointer"].as_str(), file["key"].as_str()), (Some(""), Some(key.as_str())));
    assert_eq!(
        (file["bytes"].as_u64(), file["content_type"].as_str()),
        (Some(size), Some("text/plain; charset=utf-8"))
    );

    let url = record["output"].as_str().unwrap();
    let served = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let (s3, bucket) = e2e::bucket(&stack.aws);
    let object = s3.get_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(object.content_type(), Some("text/plain; charset=utf-8"));
    let written = object.last_modified().cloned();
    let kept = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(kept.len(), size as usize);
    assert!(kept == served, "the object is the file, byte for byte");
    assert_eq!(file["sha256"].as_str(), Some(hex::encode(Sha256::digest(&kept)).as_str()));

    // The same work again: the result is stored again, the copy is the recorded one.
    let said = hooks(&["replay", &id.to_string()]).unwrap();
    assert!(said.contains("it was done, and stays done"), "{said}");
    event_when(&stack, id, 120, "the replayed work done", |e| done(e) && !e.contains_key("replay")).await;
    let (again, writes) = stack.record(id, "result").await.unwrap();
    assert_eq!((again["files"].clone(), writes), (record["files"].clone(), 2), "the result stored once per run");
    assert_eq!(objects(&stack.aws, id).await, vec![key.clone()]);
    let object = s3.head_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(object.last_modified().cloned(), written, "the object was not written again");
}

#[tokio::test]
async fn a_file_copied_before_a_crash_is_not_fetched_again() {
    let stack = Stack::from_env().await;
    // The file is served once, then 404, like a URL that expired; the first attempt
    // copies it and crashes before storing its result. That first copy can itself fail
    // on a loaded machine (the stack's S3 or table slower than a call's timeout, with
    // the suite's 50 MB copy beside it): then the file is gone before anything was
    // copied, this test's premise does not hold, and it runs again on a new prediction.
    for _ in 0..3 {
        let input = json!({"prompt": "once", "test_hook": "panic_before_store",
                           "sim": {"output_url": true, "file_fault": "once"}});
        let id = create(&stack, input).await;
        let (record, writes) = eventually(120, "the output kept", || stack.record(id, "result")).await;
        let event = event_when(&stack, id, 30, "the work done", done).await;
        let first_run = event.get("last_error").and_then(|e| e.as_s().ok()).cloned().unwrap_or_default();
        if !first_run.contains("test hook: panic after the work's steps") {
            eprintln!("the first run of {id} did not reach its crash ({first_run}); once more");
            continue;
        }
        assert_eq!(writes, 1);
        let file = &record["files"][0];
        assert_eq!(file["key"].as_str(), Some(format!("predictions/{id}/output").as_str()), "{record}");
        assert_eq!(file["bytes"].as_u64(), Some(1024));
        assert_eq!(number(&event, "work_attempts"), 2, "the first attempt crashed, the second found the copy recorded");
        return;
    }
    panic!("three first runs in a row failed before their crash: see the worker's log");
}

#[tokio::test]
async fn an_output_too_large_for_an_item_ends_done_with_its_result_in_the_bucket() {
    let stack = Stack::from_env().await;
    // The simulator's outputs are one URL or one text; a long text stands for the
    // output too large for an item.
    let text = create(&stack, json!({"prompt": "long", "sim": {"output_bytes": 400_000}})).await;
    let key = format!("records/{text}/result.json");
    let item = eventually(60, "the result kept", || async { stack.items(text).await.remove("RECORD#result") }).await;
    assert_eq!(item["record_key"].as_s().unwrap(), &key);
    assert!(number(&item, "record_bytes") > 400_000);
    let (s3, bucket) = e2e::bucket(&stack.aws);
    let object = s3.get_object().bucket(&bucket).key(&key).send().await.unwrap();
    let result: Value = serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(result["output"].as_str().map(str::len), Some(400_000));
    event_when(&stack, text, 30, "the work done", done).await;
}

#[tokio::test]
async fn an_output_of_10000_urls_ends_done_with_the_files_past_the_cap_counted() {
    let stack = Stack::from_env().await;
    let source = create(&stack, json!({"prompt": "source", "sim": {"output_url": true}})).await;
    let (record, _) = eventually(60, "the source's file", || stack.record(source, "result")).await;
    let url = record["output"].as_str().unwrap().to_owned();
    // The echo model returns its input as its output: 10,000 URLs of the simulator.
    let id = create(&stack, json!({"files": vec![url; 10_000]})).await;
    event_when(&stack, id, 120, "the work done", done).await;
    // The output itself, 10,000 URLs, makes the result too large for its item.
    let item = stack.items(id).await.remove("RECORD#result").unwrap();
    let (s3, bucket) = e2e::bucket(&stack.aws);
    let object = s3.get_object().bucket(&bucket).key(item["record_key"].as_s().unwrap()).send().await.unwrap();
    let record: Value = serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    let files = record["files"].as_array().unwrap();
    assert_eq!(files.len(), 101, "100 files, and one count of the rest");
    assert_eq!(files[100]["past_limit"], 9_900, "{}", files[100]);
    assert!(files[100]["refused"].as_str().unwrap().contains("OUTPUT_MAX_FILES"));
    let copied = objects(&stack.aws, id).await.iter().filter(|k| k.contains("/output/")).count();
    assert_eq!(copied, 100, "OUTPUT_MAX_FILES files copied");
}

/// A server on 127.0.0.1 that counts the connections it gets: a place on this machine
/// the copy must never reach. Its port and its count.
async fn planted() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, seen)
}

#[tokio::test]
async fn urls_to_anywhere_else_on_this_machine_are_refused_and_never_reached() {
    let stack = Stack::from_env().await;
    let sim = Sim::from_env().base().to_owned();
    let sim_port = sim.rsplit(':').next().unwrap();
    let (a, a_seen) = planted().await;
    let (b, b_seen) = planted().await;
    let (c, c_seen) = planted().await;
    // The echo model returns this input as the output, URLs and all.
    let input = json!({
        "loopback": format!("http://127.0.0.1:{a}/secret"),
        "by_name": [format!("http://localhost:{b}/"), format!("http://127.0.0.2:{sim_port}/_sim/health")],
        "mapped": format!("http://[::ffff:127.0.0.1]:{c}/"),
        "redirected": format!("{sim}/_sim/redirect?to=http://127.0.0.1:{a}/after-a-redirect"),
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "runtime_api": "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
    });
    let id = create(&stack, input).await;
    let (record, writes) = eventually(60, "the work done", || stack.record(id, "result")).await;
    assert_eq!(writes, 1);
    let files = record["files"].as_array().unwrap();
    assert_eq!(files.len(), 7, "{files:?}");
    for file in files {
        let why = file["refused"].as_str().unwrap_or_else(|| panic!("not refused: {file}"));
        assert!(why.contains("OUTPUT_URL_HOSTS"), "{file}");
    }
    assert_eq!(
        (a_seen.load(Ordering::SeqCst), b_seen.load(Ordering::SeqCst), c_seen.load(Ordering::SeqCst)),
        (0, 0, 0)
    );
    assert!(objects(&stack.aws, id).await.iter().all(|k| !k.contains("/output")), "nothing kept");
}

#[tokio::test]
async fn a_replay_whose_run_fails_leaves_the_work_done_with_its_first_result() {
    let stack = Stack::from_env().await;
    // The first run succeeds; every run after it fails.
    let id = create(&stack, json!({"prompt": "replay", "test_hook": "fail_after_first"})).await;
    let (first, _) = eventually(60, "the first run's result", || stack.record(id, "result")).await;
    let done_event = event_when(&stack, id, 30, "the work done", done).await;

    let said = hooks(&["replay", &id.to_string()]).unwrap();
    assert!(said.contains("stays done"), "{said}");
    let event = event_when(&stack, id, 150, "the replay failed five times", |e| number(e, "work_attempts") >= 6).await;
    assert!(done(&event), "done work stays done");
    assert_eq!(event["work_result"], done_event["work_result"], "with its first result");
    assert!(event["last_error"].as_s().unwrap().contains("after the first"), "{:?}", event["last_error"]);
    assert_eq!(stack.record(id, "result").await.unwrap().0, first);
    let text = hooks(&["inspect", &id.to_string()]).unwrap();
    for expected in ["work: done", "a replay waits to run", "last failure", "after the first"] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

#[tokio::test]
async fn a_replay_that_forgets_a_copy_fetches_the_file_again_and_records_what_became_of_it() {
    let stack = Stack::from_env().await;
    // Served once, then 404: the URL has expired by the time of the replay.
    let id = create(&stack, json!({"prompt": "forget", "sim": {"output_url": true, "file_fault": "once"}})).await;
    let (first, _) = eventually(60, "the first run's result", || stack.record(id, "result")).await;
    assert_eq!(first["files"][0]["bytes"], 1024, "{first}");
    event_when(&stack, id, 30, "the work done", done).await;

    let said = hooks(&["replay", &id.to_string(), "--forget-step", "file output"]).unwrap();
    assert!(said.contains("stays done") && said.contains("file output"), "{said}");
    let (again, writes) = eventually(60, "the replay's result", || async {
        stack.record(id, "result").await.filter(|(_, writes)| *writes == 2)
    })
    .await;
    assert_eq!(writes, 2);
    assert!(again["files"][0]["refused"].as_str().unwrap().contains("404"), "{again}");
    event_when(&stack, id, 30, "the replayed work done", |e| done(e) && !e.contains_key("replay")).await;
}

/// The file entry of a done prediction's result, with its work's attempts.
async fn file_of(stack: &Stack, id: PredictionId, what: &str) -> (Value, u64) {
    let event = event_when(stack, id, 150, what, done).await;
    let (record, _) = stack.record(id, "result").await.unwrap_or_else(|| panic!("{what}: no result"));
    (record["files"][0].clone(), number(&event, "work_attempts"))
}

#[tokio::test]
async fn a_bad_output_file_never_sinks_the_work_and_no_object_is_left_part_written() {
    let stack = Stack::from_env().await;
    let (s3, bucket) = e2e::bucket(&stack.aws);
    let mut ids = Vec::new();
    // 20 MB cut at 10 MB: one part of a multipart upload is written before the break.
    for (fault, bytes) in [("missing", 1000), ("cut", 20_000_000), ("stall", 1_000_000), ("error_once", 1000)] {
        let input = json!({"prompt": fault, "sim": {"output_url": true, "output_bytes": bytes, "file_fault": fault}});
        ids.push((fault, create(&stack, input).await));
    }
    for (fault, id) in ids {
        let (file, attempts) = file_of(&stack, id, &format!("{fault}: the work done")).await;
        match fault {
            // A file that cannot be had is recorded as such, and the work goes on at once.
            "missing" => {
                assert!(file["refused"].as_str().unwrap().contains("404"), "{fault}: {file}");
                assert_eq!(attempts, 1, "{fault}: not tried again");
            }
            // What a later try may mend is tried once a run, then recorded as failed.
            "cut" | "stall" => {
                assert_eq!(file["tries"], 3, "{fault}: {file}");
                assert!(file["failed"].as_str().unwrap().contains("the origin failed"), "{fault}: {file}");
                assert_eq!(attempts, 3, "{fault}: one try a run");
            }
            _ => {
                assert_eq!(file["bytes"], 1000, "{fault}: kept on its second try: {file}");
                assert_eq!(attempts, 2, "{fault}");
            }
        }
        let objects = objects(&stack.aws, id).await;
        let kept = usize::from(fault == "error_once");
        assert_eq!(objects.iter().filter(|k| k.contains("/output")).count(), kept, "{fault}: {objects:?}");
        let uploads = s3.list_multipart_uploads().bucket(&bucket).prefix(format!("predictions/{id}/")).send().await;
        assert!(uploads.unwrap().uploads().is_empty(), "{fault}: no upload left unfinished");
    }
}

#[tokio::test]
async fn a_content_type_no_object_could_carry_is_kept_as_octet_stream() {
    let stack = Stack::from_env().await;
    let id =
        create(&stack, json!({"prompt": "long type", "sim": {"output_url": true, "file_fault": "long_type"}})).await;
    let (file, attempts) = file_of(&stack, id, "the work done").await;
    assert_eq!((file["content_type"].as_str(), attempts), (Some("application/octet-stream"), 1), "{file}");
    let (s3, bucket) = e2e::bucket(&stack.aws);
    let key = file["key"].as_str().unwrap();
    let object = s3.head_object().bucket(&bucket).key(key).send().await.unwrap();
    assert_eq!(object.content_type(), Some("application/octet-stream"));
}
