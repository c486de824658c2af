//! Webhook delivery: one task per prediction sends its status changes in order, each
//! signed, retried with capped exponential backoff, and shaped by the chaos plan.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::Shared;
use crate::behaviour::Behaviour;
use crate::chaos::Plan;
use crate::guard::unix_now;
use crate::log::{Attempt, AttemptOutcome, Stats};
use crate::prediction::{Status, now_rfc3339};
use crate::signing;

/// One status change to deliver: the prediction exactly as it was at that status.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub status: Status,
    pub body: Bytes,
}

/// Where a prediction's webhooks go, from the `webhook` given on create.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub secret: Option<String>,
}

/// How one delivery is labelled in the log.
#[derive(Clone, Copy, Default)]
struct Flags {
    duplicate: bool,
    reordered: bool,
}

struct Worker {
    state: Shared,
    id: String,
    target: Target,
    behaviour: Behaviour,
    plan: Plan,
}

/// Starts the delivery task of one prediction; its status changes go into the sender.
/// The task ends once the sender is dropped and everything queued has been handled.
pub fn spawn(
    state: Shared,
    id: String,
    target: Target,
    behaviour: Behaviour,
    plan: Plan,
) -> mpsc::UnboundedSender<Outgoing> {
    let (tx, rx) = mpsc::unbounded_channel();
    let span = tracing::info_span!("delivery", prediction_id = %id);
    let worker = Worker { state, id, target, behaviour, plan };
    tokio::spawn(worker.run(rx).instrument(span));
    tx
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
        let mut held: Option<Outgoing> = None;
        while let Some(out) = rx.recv().await {
            if self.plan.reorder && out.status == Status::Started {
                held = Some(out);
                continue;
            }
            self.deliver(&out, false).await;
            if out.status.is_terminal()
                && let Some(started) = held.take()
            {
                Stats::bump(&self.state.stats.reorders);
                self.deliver(&started, true).await;
            }
        }
        // The prediction never ended (or its lifecycle stopped): send what was held.
        if let Some(started) = held.take() {
            self.deliver(&started, false).await;
        }
    }

    /// Handles one delivery completely (drop, or send and any duplicate), then takes
    /// it off the in-flight gauge.
    async fn deliver(&mut self, out: &Outgoing, reordered: bool) {
        self.deliver_once(out, reordered).await;
        self.state.stats.handled(&self.id);
    }

    async fn deliver_once(&mut self, out: &Outgoing, reordered: bool) {
        let decision = self.plan.decide(&self.state.chaos.settings());
        let flags = Flags { duplicate: false, reordered };
        if decision.drop || self.behaviour.drops(out.status) {
            Stats::bump(&self.state.stats.drops);
            tracing::info!(status = out.status.as_str(), "delivery dropped");
            self.record(out, 0, AttemptOutcome::Dropped, flags);
            return;
        }
        tokio::time::sleep(decision.delay).await;
        self.send_with_retries(out, flags).await;
        if decision.duplicate {
            Stats::bump(&self.state.stats.duplicates);
            let copy = Flags { duplicate: true, ..flags };
            self.send_with_retries(out, copy).await;
        }
    }

    async fn send_with_retries(&mut self, out: &Outgoing, flags: Flags) {
        let state = self.state.clone();
        let stats = &state.stats;
        Stats::bump(&stats.deliveries_sent);
        let max_attempts = self.state.chaos.settings().max_attempts.max(1);
        for attempt in 1..=max_attempts {
            Stats::bump(&stats.attempts);
            if attempt > 1 {
                Stats::bump(&stats.retries);
            }
            let (outcome, retry_after) = self.attempt(out).await;
            tracing::info!(status = out.status.as_str(), attempt, outcome = ?outcome, "delivery attempt");
            let retry = match &outcome {
                AttemptOutcome::Http(code) => *code == 429 || *code >= 500,
                AttemptOutcome::Error(_) => true,
                AttemptOutcome::Dropped => false,
            };
            self.record(out, attempt, outcome, flags);
            if !retry {
                return;
            }
            if attempt < max_attempts {
                tokio::time::sleep(self.backoff(attempt, retry_after)).await;
            }
        }
        Stats::bump(&stats.exhausted);
        tracing::warn!(status = out.status.as_str(), "delivery retries exhausted");
    }

    /// One POST. Signed per attempt, so each carries a fresh timestamp.
    async fn attempt(&mut self, out: &Outgoing) -> (AttemptOutcome, Option<Duration>) {
        let mut request =
            self.state.http.post(&self.target.url).header(CONTENT_TYPE, "application/json").body(out.body.clone());
        if let Some(secret) = &self.target.secret {
            let noise = self.state.config.extra_signatures.then_some(&mut self.plan.noise);
            let value = signing::header(secret, unix_now(), &out.body, noise);
            request = request.header(signing::HEADER, value);
        }
        match request.send().await {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                (AttemptOutcome::Http(response.status().as_u16()), retry_after)
            }
            Err(error) => (AttemptOutcome::Error(describe(&error)), None),
        }
    }

    /// `base * 2^(attempt-1)`, capped, minus up to 25% jitter (as the official client
    /// does). A `Retry-After` is honoured up to the same cap.
    fn backoff(&mut self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let config = &self.state.config;
        let exponent = attempt.saturating_sub(1).min(30);
        let delay = config.retry_base.saturating_mul(1 << exponent).min(config.retry_cap);
        let jittered = delay.mul_f64(1.0 - 0.25 * self.plan.noise.next_f64());
        match retry_after {
            Some(asked) => jittered.max(asked.min(config.retry_cap)),
            None => jittered,
        }
    }

    fn record(&self, out: &Outgoing, attempt: u32, outcome: AttemptOutcome, flags: Flags) {
        self.state.log.push(Attempt {
            prediction_id: self.id.clone(),
            status: out.status,
            attempt,
            at: now_rfc3339(),
            outcome,
            duplicate: flags.duplicate,
            reordered: flags.reordered,
        });
    }
}

/// The error and its causes on one line: reqwest's top-level text alone ("error
/// sending request") hides whether it was a refusal or a timeout.
fn describe(error: &reqwest::Error) -> String {
    let text = devcli::chain(error);
    if error.is_timeout() { format!("timed out: {text}") } else { text }
}
