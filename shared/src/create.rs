//! Creating a prediction: ask WriftAI, record the ID as ours, and feed the answer
//! through the record-and-enqueue path (with `Prefer: wait` it may already be
//! finished, and its webhooks may have been refused while the ID was unknown).

use crate::ingest::Ingest;
use crate::ports::{Ledger, WorkQueue};
use crate::prediction::{PredictionId, Status};
use crate::wriftai::{ApiError, CreatePrediction, Fetched, WriftAi};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// WriftAI created the prediction but we could not record it: its webhooks will be
    /// refused until `hooks register <id>` is run.
    #[error("prediction {id} was created but not recorded")]
    NotRecorded {
        id: PredictionId,
        #[source]
        source: crate::Error,
    },
}

impl CreateError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api(e) => e.is_retryable(),
            // Creating again would make a second prediction; registering again is safe.
            Self::NotRecorded { .. } => false,
        }
    }
}

pub async fn create<L: Ledger, Q: WorkQueue>(
    api: &WriftAi,
    ingest: &Ingest<L, Q>,
    request: &CreatePrediction,
) -> Result<Fetched, CreateError> {
    let fetched = api.create(request).await?;
    let id = fetched.prediction.id;
    let now = crate::clock::now();
    let recorded = async {
        ingest.ledger().register(id, now).await?;
        if answer_is_news(&fetched.prediction.status, ingest.acts_on(&Status::Pending)) {
            ingest.ingest(&fetched.prediction, &fetched.raw, now).await?;
        }
        Ok(())
    };
    match recorded.await {
        Ok(_) => Ok(fetched),
        Err(source) => Err(CreateError::NotRecorded { id, source }),
    }
}

/// Whether a create's answer must be recorded here. A `pending` answer the worker does
/// not act on says no more than the registration, and the record-and-enqueue path would
/// only read it back (`Ingest::ingest`); any other status, or work on `pending`, is
/// recorded here.
fn answer_is_news(status: &Status, acts_on_pending: bool) -> bool {
    *status != Status::Pending || acts_on_pending
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_answer_says_what_the_registration_does_unless_the_worker_acts_on_it() {
        assert!(!answer_is_news(&Status::Pending, false));
        assert!(answer_is_news(&Status::Pending, true), "its work must run");
        assert!(answer_is_news(&Status::Starting, false));
        assert!(answer_is_news(&Status::Succeeded, false), "a create that waited");
    }
}
