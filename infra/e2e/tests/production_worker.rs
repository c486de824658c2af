//! The production worker carries nothing of the tests: a message whose prediction asks
//! for a crash (`"test_hook"`) is worked as any other. The same message makes the test
//! worker fail, so the input is one a hook would act on.

use e2e::{Stack, payload};
use serde_json::{Value, json};
use wriftai_hooks::internals::message::WorkMessage;
use wriftai_hooks::internals::prediction::Status;

/// Invokes `function` under `cargo lambda watch` with one SQS message; its answer.
async fn invoke(stack: &Stack, function: &str, body: &str) -> Value {
    let base = std::env::var("LAMBDA_INVOKE_URL").expect("the stack sets LAMBDA_INVOKE_URL");
    let event = json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "r-1", "body": body, "attributes": {}, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:work", "awsRegion": "us-east-1",
    }]});
    let url = format!("{base}/2015-03-31/functions/{function}/invocations");
    let response = stack.http.post(url).json(&event).send().await.expect("cargo lambda watch reachable");
    assert!(response.status().is_success(), "{function}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_production_worker_honours_no_test_hook_and_the_test_worker_does() {
    let stack = Stack::from_env().await;
    for (function, fails) in [("test-worker", true), ("worker", false)] {
        let id = stack.registered().await;
        let body = payload(id, "succeeded", 3)
            .replace(r#""input":{"prompt":"hi"}"#, r#""input":{"prompt":"hi","test_hook":"fail_always"}"#);
        assert_eq!(stack.post(body.clone()).await.0, 200);
        // The receiver's own copy of the message, taken off the queue: this test hands
        // the same message to one function itself.
        assert_eq!(stack.messages_for(id).await.len(), 1);
        let message = WorkMessage::encode(id, &Status::Succeeded, &body);

        let answer = invoke(&stack, function, &message).await;
        let failures = answer["batchItemFailures"].as_array().map_or(0, Vec::len);
        assert_eq!(failures == 1, fails, "{function}: {answer}");
        let items = stack.items(id).await;
        let work = items["EVENT#succeeded"].get("work").and_then(|v| v.as_s().ok()).map(String::as_str);
        assert_eq!(work == Some("done"), !fails, "{function}: the work is done only where no hook ran");
    }
}
