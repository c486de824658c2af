//! A prediction's life: `pending -> starting -> started -> terminal` on its schedule,
//! cancellable at any step, each status change handed to its webhook delivery task.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::Instrument;

use crate::Shared;
use crate::behaviour::{Behaviour, Outcome};
use crate::delivery::Outgoing;
use crate::prediction::{Prediction, Status, TaskError, seconds};

/// Everything one prediction's lifecycle task needs.
pub struct Run {
    pub state: Shared,
    pub initial: Prediction,
    pub behaviour: Behaviour,
    pub cancel: Arc<Notify>,
    /// `None` when the prediction was created without a webhook.
    pub outbox: Option<mpsc::UnboundedSender<Outgoing>>,
}

/// How a prediction ends.
enum End {
    Succeeded,
    Failed(&'static str),
    Cancelled,
}

pub fn spawn(run: Run) {
    let span = tracing::info_span!("lifecycle", prediction_id = %run.initial.id);
    tokio::spawn(run.go().instrument(span));
}

impl Run {
    async fn go(self) {
        let created = Instant::now();
        self.publish(&self.initial);
        let step = self.behaviour.step;
        let mut started = created;
        for next in [Status::Starting, Status::Started] {
            if self.cancelled_during(step).await {
                return self.finish(End::Cancelled, started);
            }
            let setup = created.elapsed();
            self.transition(next, |p| {
                if next == Status::Started {
                    p.setup_time = Some(seconds(setup));
                }
            });
            started = Instant::now();
        }
        let end = match self.behaviour.outcome {
            Outcome::Never => {
                // WriftAI fails a prediction past its maximum run time; until then it
                // runs, unless cancelled.
                let max_run = self.state.config.max_run.saturating_sub(created.elapsed());
                tokio::select! {
                    _ = self.cancel.notified() => End::Cancelled,
                    _ = tokio::time::sleep(max_run) => End::Failed("prediction exceeded the maximum run time"),
                }
            }
            _ if self.cancelled_during(step).await => End::Cancelled,
            Outcome::Succeeded => End::Succeeded,
            Outcome::Failed => End::Failed("simulated failure"),
        };
        self.finish(end, started);
    }

    /// Sleeps one step; true when a cancellation was asked for meanwhile.
    async fn cancelled_during(&self, step: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.notified() => true,
            _ = tokio::time::sleep(step) => false,
        }
    }

    fn finish(&self, end: End, started: Instant) {
        let execution = Some(seconds(started.elapsed()));
        let file_url = format!("{}/_sim/files/{}", self.state.base_url, self.initial.id);
        match end {
            End::Succeeded => self.transition(Status::Succeeded, |p| {
                p.output = self.behaviour.output(&p.input, &file_url);
                p.execution_time = execution;
                p.metrics = Some(json!({ "predict_time": started.elapsed().as_secs_f64() }));
            }),
            End::Failed(message) => self.transition(Status::Failed, |p| {
                p.error = Some(TaskError { source: "internal", message: message.into(), detail: Value::Null });
                p.execution_time = execution;
            }),
            End::Cancelled => self.transition(Status::Cancelled, |_| {}),
        }
    }

    fn transition(&self, status: Status, change: impl FnOnce(&mut Prediction)) {
        let snapshot = self.state.store.update(&self.initial.id, |p| {
            p.status = status;
            change(p);
        });
        match snapshot {
            Some(snapshot) => self.publish(&snapshot),
            None => tracing::warn!(status = status.as_str(), "prediction vanished before its update"),
        }
    }

    /// Hands the prediction as it is now to the delivery task.
    fn publish(&self, snapshot: &Prediction) {
        tracing::info!(status = snapshot.status.as_str(), "status changed");
        let Some(outbox) = &self.outbox else { return };
        match serde_json::to_vec(snapshot) {
            Ok(body) => {
                // Counted before it is queued, so "nothing in flight" never hides a
                // delivery that is about to start.
                self.state.stats.queued(&snapshot.id);
                if outbox.send(Outgoing { status: snapshot.status, body: body.into() }).is_err() {
                    // The delivery task is gone; nothing will send it.
                    self.state.stats.handled(&snapshot.id);
                }
            }
            Err(error) => tracing::error!(%error, "cannot serialise the prediction"),
        }
    }
}
