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

use super::error::{OpsError as Error, Result};
use super::{Ops, Queues};

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
    let dlq = Dlq::of(ops)?;
    let mut seen = HashSet::new();
    let (mut lines, mut moved, mut deleted, mut stayed) = (Vec::new(), 0, 0, 0);
    // Messages left in the DLQ (all of them, in a dry run) stay hidden until the walk
    // ends, so it gets past them, and are shown again then.
    let mut left = Vec::new();
    while seen.len() < max {
        let letters = dlq.receive((max - seen.len()).min(10)).await?;
        if letters.is_empty() {
            break;
        }
        let mut fresh = false;
        for Letter { message_id, receipt, body, receives } in letters {
            if !seen.insert(message_id.clone()) {
                continue;
            }
            fresh = true;
            let (what, verdict) = judge(ops, &body).await?;
            if dry_run || matches!(verdict, Verdict::Stays(_)) {
                left.push(receipt.clone());
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
                    dlq.send_back(body).await?;
                    dlq.delete(&receipt).await?;
                    moved += 1;
                    "moved back to the work queue".to_owned()
                }
                (Verdict::Done, false) => {
                    dlq.delete(&receipt).await?;
                    deleted += 1;
                    "deleted: the work is done, nothing runs twice".to_owned()
                }
                (Verdict::Forgotten, false) => {
                    dlq.delete(&receipt).await?;
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
        dlq.show(receipt).await?;
    }
    let total = if dry_run {
        format!("{} message(s) in the DLQ looked at; nothing changed (dry run)", seen.len())
    } else {
        format!("moved {moved}, deleted {deleted} (work done or forgotten), left {stayed} (would fail again)")
    };
    lines.push(total);
    Ok(json!(lines.join("\n")))
}

/// One message received from the dead-letter queue.
struct Letter {
    message_id: String,
    /// What deletes it, or shows it again.
    receipt: String,
    body: String,
    /// How often it was received, as text (`?` when not known).
    receives: String,
}

/// The dead-letter queue, as a redrive reads it: SQS's, or one in memory.
enum Dlq<'a> {
    Sqs {
        client: &'a aws_sdk_sqs::Client,
        dlq: &'a str,
        queue_url: &'a str,
    },
    #[cfg(any(test, feature = "test-util"))]
    Memory {
        letters: &'a crate::adapters::memory::MemoryDeadLetters,
        queue: &'a crate::adapters::backend::Queue,
        hidden: std::sync::Mutex<HashSet<String>>,
    },
}

impl<'a> Dlq<'a> {
    fn of(ops: &'a Ops) -> Result<Self> {
        match &ops.queues {
            Queues::Sqs { client, queue_url, dlq_url } => {
                let unset = Error::Unset { var: "DLQ_URL", what: "the stack's DeadLetterQueueUrl output" };
                Ok(Self::Sqs { client, dlq: dlq_url.as_deref().ok_or(unset)?, queue_url })
            }
            #[cfg(any(test, feature = "test-util"))]
            Queues::Memory(letters) => {
                Ok(Self::Memory { letters, queue: ops.ingest.queue(), hidden: Default::default() })
            }
        }
    }

    /// Up to `want` messages, each hidden from the next receive for [`HOLD_SECS`].
    async fn receive(&self, want: usize) -> Result<Vec<Letter>> {
        match self {
            Self::Sqs { client, dlq, .. } => {
                let received = client
                    .receive_message()
                    .queue_url(*dlq)
                    .max_number_of_messages(want as i32)
                    .wait_time_seconds(1)
                    .visibility_timeout(HOLD_SECS)
                    .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                    .send()
                    .await
                    .map_err(|e| Error::aws("receiving from the DLQ", e))?;
                Ok(received
                    .messages()
                    .iter()
                    .filter_map(|message| {
                        let receives = message
                            .attributes()
                            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                            .map_or("?", String::as_str);
                        Some(Letter {
                            message_id: message.message_id()?.to_owned(),
                            receipt: message.receipt_handle()?.to_owned(),
                            body: message.body().unwrap_or_default().to_owned(),
                            receives: receives.to_owned(),
                        })
                    })
                    .collect())
            }
            #[cfg(any(test, feature = "test-util"))]
            Self::Memory { letters, hidden, .. } => {
                let mut hidden = hidden.lock().unwrap_or_else(|p| p.into_inner());
                let letters: Vec<Letter> = letters
                    .peek(usize::MAX)
                    .into_iter()
                    .map(|(id, body, receives)| Letter {
                        message_id: id.to_string(),
                        receipt: id.to_string(),
                        body,
                        receives: receives.to_string(),
                    })
                    .filter(|letter| !hidden.contains(&letter.receipt))
                    .take(want)
                    .collect();
                hidden.extend(letters.iter().map(|letter| letter.receipt.clone()));
                Ok(letters)
            }
        }
    }

    /// Sends a copy of `body` to the work queue.
    async fn send_back(&self, body: String) -> Result<()> {
        match self {
            Self::Sqs { client, queue_url, .. } => {
                let sent = client.send_message().queue_url(*queue_url).message_body(body).send().await;
                sent.map(drop).map_err(|e| Error::aws("sending to the work queue", e))
            }
            #[cfg(any(test, feature = "test-util"))]
            Self::Memory { queue, .. } => {
                use crate::ports::WorkQueue;
                queue.send(body, None).await.map_err(|e| Error::aws("sending to the work queue", e))
            }
        }
    }

    /// Makes a message visible again at once, where it is.
    async fn show(&self, receipt: &str) -> Result<()> {
        match self {
            Self::Sqs { client, dlq, .. } => {
                let shown = client.change_message_visibility().queue_url(*dlq).receipt_handle(receipt);
                let shown = shown.visibility_timeout(0).send().await;
                shown.map(drop).map_err(|e| Error::aws("releasing a DLQ message", e))
            }
            #[cfg(any(test, feature = "test-util"))]
            Self::Memory { hidden, .. } => {
                hidden.lock().unwrap_or_else(|p| p.into_inner()).remove(receipt);
                Ok(())
            }
        }
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        match self {
            Self::Sqs { client, dlq, .. } => {
                let delete = client.delete_message().queue_url(*dlq).receipt_handle(receipt).send().await;
                delete.map(drop).map_err(|e| Error::aws("deleting from the DLQ", e))
            }
            #[cfg(any(test, feature = "test-util"))]
            Self::Memory { letters, .. } => {
                letters.delete(receipt.parse().unwrap_or(u64::MAX));
                Ok(())
            }
        }
    }
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
    let Some(event) = ops.ledger().event_item(id, &status).await? else {
        if ops.ledger().forgotten(id).await? {
            return Ok((what, Verdict::Forgotten));
        }
        return Ok((what, Verdict::Stays("no event record: not from our receiver, or expired".into())));
    };
    if event.get("forgotten_at").is_some_and(|at| !at.is_null()) {
        return Ok((what, Verdict::Forgotten));
    }
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
        Lookup::Registered | Lookup::Open => Verdict::Move,
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
        assert_eq!(check_verdict(Lookup::Registered), Verdict::Move);
        assert_eq!(check_verdict(Lookup::Finished), Verdict::Done);
        assert!(matches!(check_verdict(Lookup::Unknown), Verdict::Stays(_)));
    }
}
