//! Which messages of a batch to delete, given the function's answer (partial batch responses).

// Lambda's rules for `FunctionResponseTypes: [ReportBatchItemFailures]`, from the Lambda
// guide ("Handling errors for an SQS event source"):
// - complete success: a `null` answer, an empty object, or `batchItemFailures` that is
//   `null` or empty;
// - complete failure: invalid JSON, an `itemIdentifier` that is empty, `null`, missing
//   (a bad key name), or not a message ID of the batch; and any failed invocation.
// An answer that is JSON but not an object (a string, a number, a list) is not listed
// there; it cannot be a batch response, so it is a complete failure here too.

use serde_json::Value;

use crate::error::{BatchFailure, InvokeError};

/// What to do with a batch whose answer could be trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Message IDs to delete: every one not reported as failed.
    pub delete: Vec<String>,
    /// Message IDs to leave, in batch order: they come back after the visibility timeout.
    pub failed: Vec<String>,
}

/// Splits the batch `ids` by the invocation's outcome. An `Err` means the whole batch
/// failed: delete nothing.
pub fn settle(ids: &[String], answer: Result<Value, InvokeError>) -> Result<Settled, BatchFailure> {
    let reported = reported_failures(&answer?)?;
    if let Some(unknown) = reported.iter().find(|id| !ids.contains(id)) {
        return Err(BatchFailure::UnknownIdentifier(unknown.clone()));
    }
    let (failed, delete) = ids.iter().cloned().partition(|id| reported.contains(id));
    Ok(Settled { delete, failed })
}

/// The `itemIdentifier`s of `batchItemFailures`, or why the answer is not a response
/// that can be trusted.
fn reported_failures(answer: &Value) -> Result<Vec<String>, BatchFailure> {
    let object = match answer {
        Value::Null => return Ok(Vec::new()),
        Value::Object(object) => object,
        other => return Err(BatchFailure::NotABatchResponse(kind(other).to_owned())),
    };
    let entries = match object.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(other) => return Err(BatchFailure::NotABatchResponse(format!("batchItemFailures is {}", kind(other)))),
    };
    entries
        .iter()
        .map(|entry| match entry.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
            _ => Err(BatchFailure::EmptyIdentifier),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    fn settled(delete: &[&str], failed: &[&str]) -> Settled {
        let owned = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
        Settled { delete: owned(delete), failed: owned(failed) }
    }

    #[test]
    fn every_message_not_listed_as_failed_is_deleted() {
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "b"}]});
        assert_eq!(settle(&ids(), Ok(answer)).ok(), Some(settled(&["a", "c"], &["b"])));
    }

    #[test]
    fn a_message_listed_twice_is_left_once() {
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "c"}, {"itemIdentifier": "c"}]});
        assert_eq!(settle(&ids(), Ok(answer)).ok(), Some(settled(&["a", "b"], &["c"])));
    }

    #[test]
    fn empty_and_null_answers_are_complete_successes() {
        for answer in [
            json!(null),
            json!({}),
            json!({"batchItemFailures": null}),
            json!({"batchItemFailures": []}),
            json!({"processed": 3}),
        ] {
            assert_eq!(settle(&ids(), Ok(answer.clone())).ok(), Some(settled(&["a", "b", "c"], &[])), "{answer}");
        }
    }

    #[test]
    fn listing_every_message_deletes_none() {
        let answer =
            json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}, {"itemIdentifier": "c"}]});
        assert_eq!(settle(&ids(), Ok(answer)).ok(), Some(settled(&[], &["a", "b", "c"])));
    }

    #[test]
    fn an_invocation_that_failed_as_a_whole_deletes_nothing() {
        let error = InvokeError::Function { status: 500, error_type: "E".into(), message: "boom".into() };
        assert!(matches!(settle(&ids(), Err(error)), Err(BatchFailure::Invocation(_))));
    }

    #[test]
    fn an_identifier_not_in_the_batch_fails_the_whole_batch() {
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "zzz"}]});
        assert!(matches!(settle(&ids(), Ok(answer)), Err(BatchFailure::UnknownIdentifier(id)) if id == "zzz"));
    }

    #[test]
    fn an_empty_null_or_misnamed_identifier_fails_the_whole_batch() {
        for entry in [
            json!({"itemIdentifier": ""}),
            json!({"itemIdentifier": null}),
            json!({"itemIdentifer": "a"}),
            json!({"itemIdentifier": 7}),
            json!("a"),
        ] {
            let answer = json!({"batchItemFailures": [entry]});
            assert!(matches!(settle(&ids(), Ok(answer)), Err(BatchFailure::EmptyIdentifier)), "{entry}");
        }
    }

    #[test]
    fn an_answer_that_is_not_a_batch_response_fails_the_whole_batch() {
        for answer in [json!("ok"), json!([]), json!(true), json!({"batchItemFailures": "a"})] {
            assert!(matches!(settle(&ids(), Ok(answer.clone())), Err(BatchFailure::NotABatchResponse(_))), "{answer}");
        }
    }
}
