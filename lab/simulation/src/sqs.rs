//! SQS's standard queue and the Lambda event source that drives the worker from it, as
//! a model. The behaviours it keeps, each tested below (and by `local-aws`'s own model,
//! docs/lab.md, "SQS and the event source"):
//!
//! 1. A message received is invisible for the visibility timeout (200 s), then visible
//!    again unless deleted.
//! 2. Each receive adds one to its receive count; a receive that would take it past
//!    `maxReceiveCount` (5) moves it to the dead-letter queue instead.
//! 3. A message is deleted after the retention period (14 days) from when it was first
//!    sent, in the queue or in its DLQ (a standard queue's DLQ keeps the first enqueue
//!    time); a message sent again (a redrive's copy) starts afresh.
//! 4. The event source receives batches of up to 10 visible messages, in no order the
//!    queue promises, and invokes the worker with up to `MaximumConcurrency` batches at
//!    once; the messages the worker reports as failed (`batchItemFailures`) stay, the
//!    rest are deleted; an invocation that crashed or timed out deletes none.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use time::OffsetDateTime;
use wriftai_hooks::internals::clock;

use crate::world::{World, crashing};

pub const VISIBILITY: Duration = Duration::from_secs(200);
pub const MAX_RECEIVES: u32 = 5;
pub const RETENTION: Duration = Duration::from_secs(14 * 86_400);
/// Batches in flight at once (the template's `WorkerMaxConcurrency`, scaled to the run).
const CONCURRENCY: usize = 4;
/// The worker's timeout.
const WORKER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
struct Message {
    body: String,
    sent_at: OffsetDateTime,
    visible_at: OffsetDateTime,
    receives: u32,
}

/// The work queue.
#[derive(Default)]
pub struct Sqs {
    next: u64,
    messages: BTreeMap<u64, Message>,
    /// Batches the event source has in flight.
    in_flight: usize,
}

/// What happened to the messages the queue received.
pub enum Received {
    /// To the worker, by ID and body, with their receive counts.
    Batch(Vec<(u64, String, u32)>),
    /// Nothing visible.
    Empty,
}

impl Sqs {
    /// Sends a message.
    pub fn send(&mut self, body: String, now: OffsetDateTime) {
        self.next += 1;
        self.messages.insert(self.next, Message { body, sent_at: now, visible_at: now, receives: 0 });
    }

    /// Receives up to `max` visible messages, `pick` choosing among them; those past the
    /// receive limit go to `dead` (their body, receives and first send) instead.
    pub fn receive(
        &mut self,
        max: usize,
        now: OffsetDateTime,
        mut pick: impl FnMut(usize) -> usize,
        mut dead: impl FnMut(String, u32, OffsetDateTime),
    ) -> Received {
        let mut visible: Vec<u64> =
            self.messages.iter().filter(|(_, m)| m.visible_at <= now).map(|(id, _)| *id).collect();
        let mut batch = Vec::new();
        while batch.len() < max && !visible.is_empty() {
            let id = visible.swap_remove(pick(visible.len()));
            let message = self.messages.get_mut(&id).expect("listed");
            if message.receives >= MAX_RECEIVES {
                let message = self.messages.remove(&id).expect("listed");
                dead(message.body, message.receives, message.sent_at);
                continue;
            }
            message.receives += 1;
            message.visible_at = now + VISIBILITY;
            batch.push((id, message.body.clone(), message.receives));
        }
        if batch.is_empty() { Received::Empty } else { Received::Batch(batch) }
    }

    pub fn delete(&mut self, id: u64) {
        self.messages.remove(&id);
    }

    /// Deletes what is past the retention period: how many.
    pub fn expire(&mut self, now: OffsetDateTime) -> usize {
        let before = self.messages.len();
        self.messages.retain(|_, m| m.sent_at + RETENTION > now);
        before - self.messages.len()
    }

    /// How long until a hidden message is visible again.
    fn next_visible(&self, now: OffsetDateTime) -> Option<Duration> {
        self.messages.values().map(|m| m.visible_at).min().map(|at| (at - now).unsigned_abs())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.messages.len()
    }
}

/// Moves what the stack sent into the queue.
pub fn intake(world: &World) {
    let sent = world.stack.queue.take_sent();
    if sent.is_empty() {
        return;
    }
    let now = clock::now();
    let mut sqs = world.sqs.borrow_mut();
    world.stats.borrow_mut().messages += sent.len() as u64;
    for body in sent {
        sqs.send(body, now);
    }
}

/// The event source: polls the queue, invokes the worker with batches.
pub async fn event_source(world: Rc<World>) {
    loop {
        intake(&world);
        loop {
            if world.sqs.borrow().in_flight >= CONCURRENCY {
                break;
            }
            let now = clock::now();
            let received = {
                let mut rng = world.rng.borrow_mut();
                let dead_letters = &world.stack.dead_letters;
                world.sqs.borrow_mut().receive(
                    crate::stack::BATCH,
                    now,
                    |n| rng.below(n as u64) as usize,
                    |body, receives, sent_at| dead_letters.push(body, receives, sent_at),
                )
            };
            let Received::Batch(batch) = received else { break };
            world.sqs.borrow_mut().in_flight += 1;
            crate::world::spawn(&world, invoke(world.clone(), batch));
        }
        if !world.creating.get() && world.stats.borrow().settled {
            return;
        }
        // A long poll: back at once when a message is sent, else when one becomes
        // visible again, or after 20 s.
        let wait = if world.sqs.borrow().in_flight > 0 {
            Duration::from_secs(1)
        } else {
            world
                .sqs
                .borrow()
                .next_visible(clock::now())
                .unwrap_or(Duration::from_secs(20))
                .clamp(Duration::from_millis(10), Duration::from_secs(20))
        };
        let _ = tokio::time::timeout(wait, world.sent.notified()).await;
    }
}

/// One invocation of the worker with `batch`; it may crash, at any await of its run.
async fn invoke(world: Rc<World>, batch: Vec<(u64, String, u32)>) {
    let now = clock::now();
    let mut event = SqsEvent::default();
    for (id, body, receives) in &batch {
        let mut message = SqsMessage::default();
        (message.message_id, message.body) = (Some(id.to_string()), Some(body.clone()));
        message.attributes.insert("ApproximateReceiveCount".into(), receives.to_string());
        let sent_ms = (now.unix_timestamp_nanos() / 1_000_000).to_string();
        message.attributes.insert("SentTimestamp".into(), sent_ms);
        event.records.push(message);
    }
    let mut context = lambda_runtime::Context::default();
    context.deadline =
        u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0) + WORKER_TIMEOUT.as_millis() as u64;
    let crash = world.chance(0.02).then(|| world.rng().below(40) as u32);
    let ran = crashing(crash, world.stack.worker.batch(lambda_runtime::LambdaEvent::new(event, context)));
    let ran = tokio::time::timeout(WORKER_TIMEOUT, ran).await.ok().flatten();
    if ran.is_none() {
        world.stats.borrow_mut().worker_crashes += 1;
    }
    intake(&world);
    crate::world::adopt(&world);
    let mut sqs = world.sqs.borrow_mut();
    sqs.in_flight -= 1;
    world.stats.borrow_mut().batches += 1;
    let Some((response, _metrics)) = ran else { return };
    let failed: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    for (id, _, _) in batch {
        if !failed.contains(&id.to_string()) {
            sqs.delete(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
    }

    fn receive(sqs: &mut Sqs, now: OffsetDateTime, dead: &mut Vec<(String, u32)>) -> Vec<u64> {
        match sqs.receive(10, now, |_| 0, |body, receives, _| dead.push((body, receives))) {
            Received::Batch(batch) => batch.into_iter().map(|(id, _, _)| id).collect(),
            Received::Empty => Vec::new(),
        }
    }

    #[test]
    fn a_received_message_is_hidden_for_the_visibility_timeout_then_comes_back_until_deleted() {
        let (mut sqs, mut dead) = (Sqs::default(), Vec::new());
        sqs.send("a".into(), at(0));
        assert_eq!(receive(&mut sqs, at(0), &mut dead), [1]);
        assert!(receive(&mut sqs, at(199), &mut dead).is_empty(), "hidden while the timeout runs");
        assert_eq!(receive(&mut sqs, at(200), &mut dead), [1], "back once it ran out");
        sqs.delete(1);
        assert!(receive(&mut sqs, at(1000), &mut dead).is_empty());
    }

    #[test]
    fn a_receive_past_the_limit_moves_the_message_to_the_dead_letter_queue() {
        let (mut sqs, mut dead) = (Sqs::default(), Vec::new());
        sqs.send("a".into(), at(0));
        for n in 0..5 {
            assert_eq!(receive(&mut sqs, at(n * 200), &mut dead), [1], "receive {}", n + 1);
        }
        assert!(receive(&mut sqs, at(1000), &mut dead).is_empty());
        assert_eq!(dead, [("a".to_owned(), 5)]);
        assert_eq!(sqs.len(), 0);
    }

    #[test]
    fn a_message_is_kept_fourteen_days_from_its_first_send_and_a_batch_takes_ten() {
        let mut sqs = Sqs::default();
        for _ in 0..12 {
            sqs.send("a".into(), at(0));
        }
        let mut dead = Vec::new();
        assert_eq!(receive(&mut sqs, at(0), &mut dead).len(), 10, "ten at most");
        assert_eq!(sqs.expire(at(14 * 86_400 - 1)), 0);
        assert_eq!(sqs.expire(at(14 * 86_400)), 12);
    }
}
