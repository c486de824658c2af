//! `hooks redrive`: moves messages from the dead-letter queue back to the work queue,
//! after saying what each one is. Safe to run twice, and beside a running worker:
//! - work since done (the reconciler or a replay ran it): the message is deleted, and
//!   nothing runs twice;
//! - work not done: the message goes back to the work queue (a copy, then the
//!   delete: a crash between the two leaves a second message, which the claim absorbs);
//! - a check (an unsigned delivery's): back to the work queue while its prediction is
//!   unfinished, deleted once it is finished;
//! - work or a check of a prediction erased by `hooks forget`: deleted, it must not run;
//! - a body that is not a message of this stack, or work without its event record: it
//!   would fail again, so it stays in the dead-letter queue and is said to.

use std::collections::HashSet;

use crate::message::Message;
use crate::ports::{Ledger, Lookup};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{Value, json};

use super::Ops;
use super::error::{OpsError as Error, Result};

/// How long a message being looked at is hidden from another redrive.
const HOLD_SECS: i32 = 60;

/// What to do with one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Work not done: back to the work queue.
    Move,
    /// Work done meanwhile: delete.
    Done,
    /// Its prediction was erased (`hooks forget`): delete, it must not run.
    Forgotten,
    /// It would fail again: leave it.
    Stays(String),
}

/// Moves up to `max` messages from the dead-letter queue back to the work queue
/// (`hooks redrive`), after saying what each is and why it failed; deletes those whose
/// work was done meanwhile or whose prediction was forgotten; leaves what would fail
/// again. `dry_run`: only says. Safe to run twice.
pub async fn redrive(ops: &Ops, max: usize, dry_run: bool) -> Result<Value> {
    let dlq = ops.dlq()?;
    let mut seen = HashSet::new();
    let (mut lines, mut moved, mut deleted, mut stayed) = (Vec::new(), 0, 0, 0);
    // Messages left in the DLQ (all of them, in a dry run) stay hidden until the walk
    // ends, so it gets past them, and are shown again then.
    let mut left = Vec::new();
    while seen.len() < max {
        let want = (max - seen.len()).min(10) as i32;
        let received = ops
            .sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(want)
            .wait_time_seconds(1)
            .visibility_timeout(HOLD_SECS)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| Error::aws("receiving from the DLQ", e))?;
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        let mut fresh = false;
        for message in messages {
            let (Some(message_id), Some(receipt)) = (message.message_id(), message.receipt_handle()) else { continue };
            if !seen.insert(message_id.to_owned()) {
                continue;
            }
            fresh = true;
            let body = message.body().unwrap_or_default();
            let receives = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .map_or("?", String::as_str);
            let (what, verdict) = judge(ops, body).await?;
            if dry_run || matches!(verdict, Verdict::Stays(_)) {
                left.push(receipt.to_owned());
            }
            let done = match (&verdict, dry_run) {
                (Verdict::Move, true) => "would move it back".to_owned(),
                (Verdict::Done, true) => "would delete it: the work is done".to_owned(),
                (Verdict::Forgotten, true) => "would delete it: the prediction was forgotten".to_owned(),
                (Verdict::Stays(why), _) => {
                    stayed += 1;
                    format!("left in the DLQ: it fails again ({why})")
                }
                (Verdict::Move, false) => {
                    let sent = ops.sqs.send_message().queue_url(&ops.queue_url).message_body(body).send().await;
                    sent.map_err(|e| Error::aws("sending to the work queue", e))?;
                    delete(ops, dlq, receipt).await?;
                    moved += 1;
                    "moved back to the work queue".to_owned()
                }
                (Verdict::Done, false) => {
                    delete(ops, dlq, receipt).await?;
                    deleted += 1;
                    "deleted: the work is done, nothing runs twice".to_owned()
                }
                (Verdict::Forgotten, false) => {
                    delete(ops, dlq, receipt).await?;
                    deleted += 1;
                    "deleted: the prediction was forgotten (hooks forget), nothing of it runs".to_owned()
                }
            };
            lines.push(format!("{message_id}: {what}, received {receives} times: {done}"));
        }
        if !fresh {
            break;
        }
    }
    for receipt in &left {
        show(ops, dlq, receipt).await?;
    }
    let total = if dry_run {
        format!("{} message(s) in the DLQ looked at; nothing changed (dry run)", seen.len())
    } else {
        format!("moved {moved}, deleted {deleted} (work done or forgotten), left {stayed} (would fail again)")
    };
    lines.push(total);
    Ok(json!(lines.join("\n")))
}

/// Makes a message visible again at once, where it is.
async fn show(ops: &Ops, dlq: &str, receipt: &str) -> Result<()> {
    let shown = ops.sqs.change_message_visibility().queue_url(dlq).receipt_handle(receipt).visibility_timeout(0);
    shown.send().await.map(drop).map_err(|e| Error::aws("releasing a DLQ message", e))
}

async fn delete(ops: &Ops, dlq: &str, receipt: &str) -> Result<()> {
    let delete = ops.sqs.delete_message().queue_url(dlq).receipt_handle(receipt);
    delete.send().await.map(drop).map_err(|e| Error::aws("deleting from the DLQ", e))
}

/// What a message is, and what to do with it, from its body and its event record (or,
/// for a check, its prediction's).
async fn judge(ops: &Ops, body: &str) -> Result<(String, Verdict)> {
    let message = match Message::decode(body) {
        Ok(message) => message,
        Err(_) => {
            let start: String = body.chars().take(60).collect();
            return Ok((format!("{start:?}"), Verdict::Stays("not a message of this stack".into())));
        }
    };
    let (id, status) = match message {
        Message::Check { check } => {
            let verdict = match ops.ledger().lookup(check).await? {
                Lookup::Unknown if ops.ledger().forgotten(check).await? => Verdict::Forgotten,
                lookup => check_verdict(lookup),
            };
            return Ok((format!("{check} check"), verdict));
        }
        Message::Work(work) => (work.prediction_id, work.status),
    };
    let what = format!("{id} {status}");
    let Some(event) = ops.ledger().event(id, &status).await? else {
        if ops.ledger().forgotten(id).await? {
            return Ok((what, Verdict::Forgotten));
        }
        return Ok((what, Verdict::Stays("no event record: not from our receiver, or expired".into())));
    };
    // Done work with a replay asked for still has a run to make.
    Ok(match event["work"].as_str() {
        Some("done") if event.get("replay").is_none() => (what, Verdict::Done),
        _ => {
            let why = event["last_error"].as_str().unwrap_or("no failure recorded: it timed out or was never claimed");
            let attempts = event.get("work_attempts").and_then(Value::as_u64).unwrap_or(0);
            (format!("{what} ({attempts} attempts, last failure: {why})"), Verdict::Move)
        }
    })
}

/// An unsigned delivery's check, by what the table knows of its prediction: safe to make
/// again while the prediction is unfinished; nothing left to learn once it is finished.
fn check_verdict(lookup: Lookup) -> Verdict {
    match lookup {
        Lookup::Open => Verdict::Move,
        Lookup::Finished => Verdict::Done,
        Lookup::Unknown => Verdict::Stays("a check of a prediction the table does not hold".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_goes_back_while_its_prediction_is_unfinished_and_is_deleted_once_it_is_finished() {
        assert_eq!(check_verdict(Lookup::Open), Verdict::Move);
        assert_eq!(check_verdict(Lookup::Finished), Verdict::Done);
        assert!(matches!(check_verdict(Lookup::Unknown), Verdict::Stays(_)));
    }
}
