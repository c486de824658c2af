//! One unit of work from the queue, run to completion once: claim the (prediction,
//! status), fetch the prediction if it came by reference, run the job (a panic in it
//! caught here, the only place), then mark it done, or give the claim back so a retry
//! can run it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::adapters::OPERATION_TIMEOUT;
use crate::deadline::ANSWER_MARGIN;
use crate::error::BoxError;
use crate::message::WorkMessage;
use crate::ports::{Claim, Claims, PredictionSource};
use crate::prediction::{Prediction, PredictionId, Status};
use crate::wriftai::ApiError;

/// Time kept back from the invocation's deadline for what follows the job: marking it
/// done or giving the claim back (at least one whole DynamoDB call, which ends within
/// `OPERATION_TIMEOUT`, 5 s), and answering with the batch's failures (`ANSWER_MARGIN`,
/// 1 s): 6 s. A job still running then is stopped.
pub const REPORT_MARGIN: Duration = OPERATION_TIMEOUT.saturating_add(ANSWER_MARGIN);

/// What one message came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The job ran to completion on this attempt (1 for the first claim); `rerun` when
    /// a replay asked for this run, the work done before or not.
    Done { attempt: u32, rerun: bool },
    /// A run before this one completed it: nothing done now.
    AlreadyDone,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Can never succeed: the message is not ours or not readable. It goes to the DLQ
    /// after the queue's receive limit.
    #[error("poison message: {0}")]
    Poison(String),
    /// No event record for the unit: it never came from our receiver, or it was deleted
    /// (by TTL) before its work was done. Loud on purpose: the message goes to the DLQ,
    /// where it can be looked at and redriven.
    #[error("no event record for {id} {status}: never recorded here, or deleted before its work was done")]
    MissingEvent { id: PredictionId, status: Status },
    /// `hooks forget` erased the prediction and sealed this unit of work: the message is
    /// dropped, never run.
    #[error("prediction {0} was forgotten")]
    Forgotten(PredictionId),
    /// Another run holds a live claim; this message comes back later.
    #[error("another run is working on this prediction")]
    Busy,
    /// The payload came by reference and WriftAI no longer has the prediction.
    #[error("WriftAI no longer has prediction {0}")]
    Gone(PredictionId),
    #[error(transparent)]
    Store(#[from] crate::Error),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the work failed")]
    Failed(#[source] BoxError),
    #[error("the work panicked: {0}")]
    Panicked(String),
    /// The job was still running when the invocation had only [`REPORT_MARGIN`] left:
    /// stopped, so this message fails alone and the rest of the batch still reports.
    #[error("the work ran out of the invocation's time")]
    OutOfTime,
}

/// Runs `job` for `message` at most to completion once. `deadline` is when
/// this run will be stopped (the Lambda's); the claim expires then. The fetch and the
/// job, and so every call they make, end [`REPORT_MARGIN`] before it: that is the job's
/// deadline, which [`crate::deadline::current`] gives inside it.
pub async fn run<C, S, F, Fut>(
    claims: &C,
    source: &S,
    message: WorkMessage,
    deadline: OffsetDateTime,
    job: F,
) -> Result<Outcome, ClaimError>
where
    C: Claims,
    S: PredictionSource,
    F: FnOnce(Prediction, u32) -> Fut,
    Fut: Future<Output = Result<Value, BoxError>>,
{
    let (id, status) = (message.prediction_id, message.status);
    let (token, attempt, rerun, keep_body) = match claims.claim(id, &status, deadline, crate::clock::now()).await? {
        Claim::Acquired { token, attempt, rerun, keep_body } => (token, attempt, rerun, keep_body),
        Claim::Done => return Ok(Outcome::AlreadyDone),
        Claim::Busy => return Err(ClaimError::Busy),
        Claim::Missing => return Err(ClaimError::MissingEvent { id, status }),
        Claim::Forgotten => return Err(ClaimError::Forgotten(id)),
    };

    let budget = Duration::try_from(deadline - crate::clock::now() - REPORT_MARGIN).unwrap_or_default();
    let job_deadline = tokio::time::Instant::now() + budget;
    // The body of a prediction that came by reference, as WriftAI sent it.
    let mut fetched = None;
    let ran = async {
        let prediction = match &message.payload {
            Some(raw) => Prediction::from_json(raw.get().as_bytes()).map_err(|e| ClaimError::Poison(e.to_string()))?,
            None => {
                let got = source.get(id).await?.ok_or(ClaimError::Gone(id))?;
                fetched = Some(got.raw);
                got.prediction
            }
        };
        match AssertUnwindSafe(job(prediction, attempt)).catch_unwind().await {
            Ok(result) => result.map_err(ClaimError::Failed),
            Err(panic) => Err(ClaimError::Panicked(panic_text(panic.as_ref()))),
        }
    };
    // The job sees its own deadline (`deadline::current`): its calls, and what it
    // derives from it (a download's deadline), end by it.
    let ran = crate::deadline::within(job_deadline, tokio::time::timeout_at(job_deadline, ran));
    let (ran, finished) = crate::steps::noting_finished(ran).await;
    let ran = ran.unwrap_or(Err(ClaimError::OutOfTime));
    // The body the run worked on, when its event holds none: kept by this run, so that a
    // replay, a redrive or a resend never needs WriftAI's `GET`.
    let body = message.payload.as_deref().map(RawValue::get).or(fetched.as_deref());
    let body = keep_body.and(body).filter(|body| crate::records::body_fits_item(body));
    // The unit's own steps expire with it; a step of another unit is that unit's.
    let steps: Vec<String> =
        finished.into_iter().filter(|(of, at, _)| *of == id && *at == status).map(|(.., name)| name).collect();

    match ran {
        Ok(result) => {
            let now = crate::clock::now();
            // Kept apart, once, with the event's own expiry (the completion's `now`),
            // before the completion: while the claim is held, `hooks forget` waits, so
            // nothing is written back after an erasure. Within the job's time, which
            // leaves the completion its own: a body not kept goes by reference.
            if let (Some(keep), Some(body)) = (keep_body, body) {
                let kept = tokio::time::timeout_at(job_deadline, claims.keep_body(id, &status, body, now + keep));
                match kept.await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(error = %crate::error::chain(&err), "body not kept: a replay goes by reference");
                    }
                    Err(_) => tracing::warn!("no time left to keep the body: a replay goes by reference"),
                }
            }
            if !claims.complete(id, &status, &token, &result, &steps, now).await? {
                // Our claim expired mid-run and another run took it: both ran. Only a
                // run slower than the Lambda deadline can get here.
                tracing::warn!("work completed after its claim expired");
            }
            Ok(Outcome::Done { attempt, rerun })
        }
        Err(err) => {
            // Work left undone keeps its body with the event for as long as it waits.
            if let Err(release) = claims.release(id, &status, &token, &crate::error::chain(&err), body).await {
                tracing::warn!(error = %crate::error::chain(&release), "claim not released; it expires by itself");
            }
            Err(err)
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}
