//! Steps of the work that run at most once per (prediction, status, name), whatever
//! becomes of the run around them: a notification, a prediction created, a file copied.
//!
//! The claim around the work runs it to completion once, but a run that fails or
//! crashes halfway runs again from the start. A step run through [`Steps`] does not:
//! its intent is recorded before it runs and its outcome after, so a run done again
//! returns the recorded outcome instead of running the step again.
//!
//! One window is left, and no record can close it: a crash after the step had its
//! effect and before its outcome was recorded (the process dies, the invocation times
//! out, the table stays unreachable for the rest of the run). A run done again then
//! finds the intent without an outcome, and the step may or may not have happened.
//! [`Steps::once`] never repeats it then: the work fails as [`StepError::Unknown`] and
//! goes to the dead-letter queue, where an operator decides (`hooks inspect` shows the
//! step; `hooks replay --forget-step` runs it again). [`Steps::once_or_find`] first asks
//! what the world knows (the chain example lists WriftAI's recent predictions), and
//! [`Steps::once_repeatable`] is for steps that are safe to repeat, such as a copy that
//! writes a whole object: run again until an outcome is recorded, never after.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::error::BoxError;
use crate::ports::{Bucket, RecordTable, StepKey, StepState};
use crate::prediction::{Prediction, PredictionId, Status};
use crate::records::{NoBucket, Records, key_segment};

/// How a step that failed left its effect. `?` on any error in a step gives
/// [`Failure::Unknown`]: a failure is taken to have maybe happened unless the step says
/// otherwise.
#[derive(Debug)]
pub enum Failure {
    /// It had no effect (refused before anything was done, or never sent): the step's
    /// record is removed, and the work's retry runs it again.
    NotDone(BoxError),
    /// It may have had its effect (sent, and no answer came back): it is not run again.
    Unknown(BoxError),
}

impl Failure {
    pub fn not_done(err: impl Into<BoxError>) -> Self {
        Self::NotDone(err.into())
    }
}

impl<E: Into<BoxError>> From<E> for Failure {
    fn from(err: E) -> Self {
        Self::Unknown(err.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step failed, and runs again with the work's retry: it had no effect, or it
    /// is safe to repeat.
    #[error("step {name:?} failed; it runs again with the work's retry")]
    Failed {
        name: String,
        #[source]
        source: BoxError,
    },
    /// The step began and may have had its effect, but no outcome is recorded. It is not
    /// run again by itself.
    #[error(
        "step {name:?} began at {since} and may have had its effect, but no outcome was recorded: \
         it is not run again by itself (hooks inspect shows it; hooks replay --forget-step runs it again)"
    )]
    Unknown {
        name: String,
        since: OffsetDateTime,
        #[source]
        source: Option<BoxError>,
    },
    /// The recorded outcome does not read as what the step returns (the code changed).
    #[error("step {name:?}: its recorded outcome is not what the step returns")]
    Outcome {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// The steps of one unit of work: the prediction `id` at `status`.
pub struct Steps<'a, T, B = NoBucket> {
    records: Records<'a, T, B>,
    id: PredictionId,
    status: &'a Status,
}

/// What beginning a step found, its outcome read back.
enum Began<V> {
    Run,
    Finished(V),
    Started(OffsetDateTime),
}

impl<'a, T: RecordTable, B: Bucket> Steps<'a, T, B> {
    /// The steps of `prediction`'s work at its status, recorded in `records`.
    pub fn new(records: Records<'a, T, B>, prediction: &'a Prediction) -> Self {
        Self { records, id: prediction.id, status: &prediction.status }
    }

    /// Runs `step` at most once for this unit of work. A rerun returns the outcome
    /// recorded by the run that did it. A rerun that finds the step begun but never
    /// finished fails with [`StepError::Unknown`] and does not run it.
    pub async fn once<V, F, Fut>(&self, name: &str, step: F) -> Result<V, StepError>
    where
        V: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Failure>>,
    {
        match self.begin(name).await? {
            Began::Run => self.run(name, step, false).await,
            Began::Finished(outcome) => Ok(outcome),
            Began::Started(since) => Err(StepError::Unknown { name: name.into(), since, source: None }),
        }
    }

    /// As [`once`](Self::once), but a rerun that finds the step begun and never finished
    /// asks `find` (with when it began) what came of it: `Some` is recorded as its
    /// outcome, `None` fails as [`StepError::Unknown`].
    pub async fn once_or_find<V, F, Fut, G, GFut>(&self, name: &str, step: F, find: G) -> Result<V, StepError>
    where
        V: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Failure>>,
        G: FnOnce(OffsetDateTime) -> GFut,
        GFut: Future<Output = Result<Option<V>, BoxError>>,
    {
        let since = match self.begin(name).await? {
            Began::Run => return self.run(name, step, false).await,
            Began::Finished(outcome) => return Ok(outcome),
            Began::Started(since) => since,
        };
        match find(since).await {
            Ok(Some(found)) => {
                tracing::info!(step = name, "a step begun by an earlier run is found done; its outcome is recorded");
                self.finish(name, &found).await?;
                Ok(found)
            }
            Ok(None) => Err(StepError::Unknown { name: name.into(), since, source: None }),
            Err(err) => Err(StepError::Unknown { name: name.into(), since, source: Some(err) }),
        }
    }

    /// For a step that is safe to repeat (it writes a whole object, say): run until an
    /// outcome is recorded, and never after. A rerun that finds it begun runs it again.
    pub async fn once_repeatable<V, F, Fut>(&self, name: &str, step: F) -> Result<V, StepError>
    where
        V: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Failure>>,
    {
        match self.begin(name).await? {
            Began::Finished(outcome) => Ok(outcome),
            Began::Run | Began::Started(_) => self.run(name, step, true).await,
        }
    }

    fn key<'k>(&'k self, name: &'k str) -> StepKey<'k> {
        StepKey { id: self.id, status: self.status, name }
    }

    async fn begin<V: DeserializeOwned>(&self, name: &str) -> Result<Began<V>, StepError> {
        Ok(match self.records.table().begin_step(self.key(name), OffsetDateTime::now_utc()).await? {
            StepState::Begun => Began::Run,
            StepState::Started { since } => Began::Started(since),
            StepState::Finished(kept) => {
                let outcome = self.records.restore(&kept).await?;
                let outcome = serde_json::from_value(outcome)
                    .map_err(|source| StepError::Outcome { name: name.into(), source })?;
                Began::Finished(outcome)
            }
        })
    }

    /// Runs the step and records its outcome. A failure that may have had its effect is
    /// unknown, unless the step is `repeatable`.
    async fn run<V, F, Fut>(&self, name: &str, step: F, repeatable: bool) -> Result<V, StepError>
    where
        V: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Failure>>,
    {
        match step().await {
            Ok(outcome) => {
                self.finish(name, &outcome).await?;
                Ok(outcome)
            }
            Err(Failure::NotDone(source)) => {
                self.records.table().forget_step(self.key(name)).await?;
                Err(StepError::Failed { name: name.into(), source })
            }
            Err(Failure::Unknown(source)) if repeatable => Err(StepError::Failed { name: name.into(), source }),
            Err(Failure::Unknown(source)) => {
                let since = OffsetDateTime::now_utc();
                Err(StepError::Unknown { name: name.into(), since, source: Some(source) })
            }
        }
    }

    async fn finish<V: Serialize>(&self, name: &str, outcome: &V) -> Result<(), StepError> {
        let value = serde_json::to_value(outcome).map_err(|source| StepError::Outcome { name: name.into(), source })?;
        let path = format!("steps/{}/{}", self.status, key_segment(name));
        let kept = self.records.keep(self.id, &path, &value).await?;
        self.records.table().finish_step(self.key(name), &kept, OffsetDateTime::now_utc()).await?;
        Ok(())
    }
}
