//! Steps of the work that run at most once per (prediction, status, name), whatever
//! becomes of the run around them: a notification, a prediction created, a file copied.
//!
//! The claim around the work runs it to completion once, but a run that fails or
//! crashes halfway runs again from the start. A step run through [`Steps`] does not:
//! its intent is recorded before it runs and its outcome after, so a run done again
//! returns the recorded outcome instead of running the step again. An outcome is kept
//! as a record is (`wriftai_hooks::records`); one too large to be read back (over an item, with
//! no bucket) is refused when the step ends, never recorded.
//!
//! One window is left, and no record can close it: a crash after the step had its
//! effect and before its outcome was recorded (the process dies, the invocation times
//! out, the table stays unreachable for the rest of the run). A run done again then
//! finds the intent without an outcome, and the step may or may not have happened.
//! [`Steps::once`] never repeats it then: the work fails as [`StepError::Unknown`] and
//! goes to the dead-letter queue, where an operator decides (`hooks inspect` shows the
//! step; `hooks replay --forget-step` runs it again). An intent whose own write went
//! unconfirmed is taken back by the run that wrote it, when the table answers in time.
//! [`Steps::once_or_find`] first asks what the world knows, by a mark the step left on
//! what it made (the chain example marks the prediction it creates), and
//! [`Steps::once_repeatable`] is for steps that are safe to repeat, such as a copy that
//! writes a whole object: run again until an outcome is recorded, never after, and told
//! how many of its tries failed so it can stop trying.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::error::BoxError;
use crate::ports::{Kept, RecordTable, StepKey, StepState};
use crate::prediction::{Prediction, PredictionId, Status};
use crate::records::{ITEM_BYTES, Records, key_segment};

/// How a step that failed left its effect. `?` on any error in a step gives
/// [`Failure::Unknown`]: a failure is taken to have maybe happened unless the step says
/// otherwise. An HTTP call says it for you: [`SendStep::send_step`].
#[derive(Debug)]
pub enum Failure {
    /// It had no effect (refused before anything was done, or never sent): the step's
    /// record is removed, and the work's retry runs it again.
    NotDone(BoxError),
    /// It may have had its effect (sent, and no answer came back): it is not run again.
    Unknown(BoxError),
    /// A try of a repeatable step failed in a way a later try may not (a server error, a
    /// timeout): the try is counted on the step's record, and the work's retry tries it
    /// again, told how many tries failed before ([`Steps::once_repeatable`]). In
    /// [`Steps::once`] it is [`Failure::NotDone`].
    Tried(BoxError),
}

impl Failure {
    /// It had no effect: [`Failure::NotDone`].
    pub fn not_done(err: impl Into<BoxError>) -> Self {
        Self::NotDone(err.into())
    }

    /// A try of a repeatable step failed: [`Failure::Tried`].
    pub fn tried(err: impl Into<BoxError>) -> Self {
        Self::Tried(err.into())
    }
}

impl<E: Into<BoxError>> From<E> for Failure {
    fn from(err: E) -> Self {
        Self::Unknown(err.into())
    }
}

/// An HTTP request sent from inside a step, its failure told the way the step needs it:
/// whether the request may have had its effect. `send().await?` alone cannot tell, and
/// takes every failure as [`Failure::Unknown`] (the work goes to the DLQ); this does:
///
/// | what happened | the step's error | what follows |
/// |---|---|---|
/// | never sent (no connection, a request that could not be built) | [`Failure::NotDone`] | the work's retry sends it again |
/// | refused by the server: a 4xx, or a 503 with `Retry-After` | [`Failure::NotDone`] | the same |
/// | sent, no answer (a timeout, a connection cut), another 5xx, or a redirect | [`Failure::Unknown`] | not sent again; the work fails to the DLQ saying so |
/// | a 2xx | `Ok(response)` | the step records its outcome |
///
/// A redirect is never taken for done: the first server may have acted before it
/// redirected (a 303 after a POST), or the next may be a login page answering 200.
/// [`Context::http`](crate::Context::http) does not follow redirects; with a client of
/// your own that does, one followed is told as [`Failure::Unknown`] too, but a
/// connection refused at the next hop reads as one refused at the first (the error
/// names the first URL): give a step a client that does not follow. A 503 alone may
/// come from a proxy after the request went through, so only one that says when to come
/// back (`Retry-After`) is taken as refused.
///
/// ```no_run
/// # async fn example(ctx: &wriftai_hooks::Context, prediction: &wriftai_hooks::Prediction) -> Result<(), wriftai_hooks::BoxError> {
/// use wriftai_hooks::SendStep;
///
/// let url = "https://hooks.example.com/finished";
/// let steps = ctx.steps(prediction);
/// steps
///     .once("tell-the-shop", || async {
///         let answer = ctx.http().post(url).json(&prediction.id).send_step().await?;
///         Ok(answer.status().as_u16())
///     })
///     .await?;
/// # Ok(()) }
/// ```
pub trait SendStep: sealed::Sealed {
    /// Sends the request, and tells a failure as a step's [`Failure`].
    fn send_step(self) -> impl Future<Output = Result<reqwest::Response, Failure>> + Send;
}

impl SendStep for reqwest::RequestBuilder {
    async fn send_step(self) -> Result<reqwest::Response, Failure> {
        let (client, request) = self.build_split();
        // Never built: nothing was sent.
        let request = request.map_err(Failure::not_done)?;
        let sent_to = request.url().clone();
        let answer = match client.execute(request).await {
            Ok(answer) => answer,
            // Never sent: nothing can have happened.
            Err(err) if err.is_connect() => return Err(Failure::not_done(err)),
            // Sent, and no answer came: it may have arrived.
            Err(err) => return Err(Failure::Unknown(err.into())),
        };
        let status = answer.status();
        let host = sent_to.host_str().unwrap_or("the server");
        if *answer.url() != sent_to {
            return Err(Failure::Unknown(format!("{host} redirected the request to {}", answer.url()).into()));
        }
        if status.is_success() {
            return Ok(answer);
        }
        let said = format!("{host} answered {status}");
        let refused = status.is_client_error()
            || (status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                && answer.headers().contains_key(reqwest::header::RETRY_AFTER));
        if refused { Err(Failure::not_done(said)) } else { Err(Failure::Unknown(said.into())) }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for reqwest::RequestBuilder {}
}

/// Why a step did not give an outcome. Returned from your `handle` (with `?`), each
/// fails the work's run: [`StepError::Failed`] runs the step again with the work's
/// retry; the others do not get better by themselves, and send the work to the
/// dead-letter queue after its tries, each saying why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The step failed, and runs again with the work's retry: it had no effect, or it
    /// is safe to repeat.
    #[error("step {name:?} failed; it runs again with the work's retry")]
    Failed {
        /// The step.
        name: String,
        /// How it failed.
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
        /// The step.
        name: String,
        /// When it began.
        since: OffsetDateTime,
        /// How it failed, when this run saw it fail.
        #[source]
        source: Option<BoxError>,
    },
    /// The recorded outcome does not read as what the step returns (the code changed).
    #[error("step {name:?}: its recorded outcome is not what the step returns")]
    Outcome {
        /// The step.
        name: String,
        /// Why it does not read.
        #[source]
        source: serde_json::Error,
    },
    /// The step ran, but its outcome is too large for an item and there is no bucket to
    /// keep it: it is not recorded, since a rerun could not read it back.
    #[error(
        "step {name:?} ran, but its outcome ({bytes} bytes of JSON) is larger than an item keeps \
         ({ITEM_BYTES}) and there is no bucket (OUTPUT_BUCKET) to keep it: return less from the step \
         (a key, an ID), or give the work a bucket. Its effect happened: a rerun fails it as unknown, \
         and hooks replay --forget-step runs it again"
    )]
    Unkeepable {
        /// The step.
        name: String,
        /// The size of its outcome's JSON.
        bytes: u64,
    },
    /// The table or the bucket failed: the work's retry runs the step again if it had
    /// not begun.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

tokio::task_local! {
    /// The steps the work now running found or left finished: (prediction, status, name).
    static FINISHED: std::sync::Mutex<Vec<(PredictionId, Status, String)>>;
}

/// Runs `work`, and says which steps it found or left finished: when the work is done,
/// they are given their event's expiry (`Claims::complete`).
pub(crate) async fn noting_finished<F: Future>(work: F) -> (F::Output, Vec<(PredictionId, Status, String)>) {
    FINISHED
        .scope(std::sync::Mutex::default(), async move {
            let out = work.await;
            let finished = FINISHED.with(|f| std::mem::take(&mut *f.lock().unwrap_or_else(|p| p.into_inner())));
            (out, finished)
        })
        .await
}

/// The steps of one unit of work: the prediction `id` at `status`. Get them from
/// [`Context::steps`](crate::Context::steps).
pub struct Steps<'a> {
    records: Records<'a>,
    id: PredictionId,
    status: &'a Status,
}

/// What beginning a step found, its outcome read back.
enum Began<V> {
    /// Ours to run, under this token.
    Run(String),
    Finished(V),
    /// Begun at this time under this token, never finished, with this many failed tries.
    Started(OffsetDateTime, String, u32),
}

impl<'a> Steps<'a> {
    /// The steps of `prediction`'s work at its status, recorded in `records`.
    #[doc(hidden)]
    pub fn new(records: Records<'a>, prediction: &'a Prediction) -> Self {
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
            Began::Run(_) => self.run(name, step(), Kind::Once).await,
            Began::Finished(outcome) => Ok(outcome),
            Began::Started(since, ..) => Err(StepError::Unknown { name: name.into(), since, source: None }),
        }
    }

    /// As [`once`](Self::once), but the step is given a mark (`step(mark)`), unique to
    /// this beginning of it, to leave on what it makes (a field of a prediction it
    /// creates); and a rerun that finds the step begun and never finished asks `find`
    /// (with when it began, and the mark) what came of it: `Some` is recorded as its
    /// outcome, `None` fails as [`StepError::Unknown`]. Match on the mark, never on equal
    /// content: another unit of work may have made the same thing.
    pub async fn once_or_find<V, F, Fut, G, GFut>(&self, name: &str, step: F, find: G) -> Result<V, StepError>
    where
        V: Serialize + DeserializeOwned,
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<V, Failure>>,
        G: FnOnce(OffsetDateTime, String) -> GFut,
        GFut: Future<Output = Result<Option<V>, BoxError>>,
    {
        let (since, mark) = match self.begin(name).await? {
            Began::Run(mark) => return self.run(name, step(mark), Kind::Once).await,
            Began::Finished(outcome) => return Ok(outcome),
            Began::Started(since, mark, _) => (since, mark),
        };
        match find(since, mark).await {
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
    /// `step(tries)` is told how many of its tries failed before ([`Failure::Tried`]), so
    /// it can record an outcome after the last it allows rather than fail again.
    pub async fn once_repeatable<V, F, Fut>(&self, name: &str, step: F) -> Result<V, StepError>
    where
        V: Serialize + DeserializeOwned,
        F: FnOnce(u32) -> Fut,
        Fut: Future<Output = Result<V, Failure>>,
    {
        match self.begin(name).await? {
            Began::Finished(outcome) => Ok(outcome),
            Began::Run(_) => self.run(name, step(0), Kind::Repeatable).await,
            Began::Started(_, _, tries) => self.run(name, step(tries), Kind::Repeatable).await,
        }
    }

    fn key<'k>(&'k self, name: &'k str) -> StepKey<'k> {
        StepKey { id: self.id, status: self.status, name }
    }

    /// Notes, for the run around it, that step `name` is finished.
    fn finished(&self, name: &str) {
        let _outside_a_run = FINISHED.try_with(|f| {
            let mut finished = f.lock().unwrap_or_else(|p| p.into_inner());
            if !finished.iter().any(|(id, status, n)| *id == self.id && status == self.status && n == name) {
                finished.push((self.id, self.status.clone(), name.to_owned()));
            }
        });
    }

    async fn begin<V: DeserializeOwned>(&self, name: &str) -> Result<Began<V>, StepError> {
        Ok(match self.records.table().begin_step(self.key(name), crate::clock::now()).await? {
            StepState::Begun { token } => Began::Run(token),
            StepState::Started { since, token, tries } => Began::Started(since, token, tries),
            StepState::Finished(kept) => {
                self.finished(name);
                let outcome = self.records.restore(&kept).await?;
                let outcome = serde_json::from_value(outcome)
                    .map_err(|source| StepError::Outcome { name: name.into(), source })?;
                Began::Finished(outcome)
            }
        })
    }

    /// Runs the step and records its outcome. A failure that may have had its effect is
    /// unknown, unless the step is repeatable.
    async fn run<V: Serialize>(
        &self,
        name: &str,
        step: impl Future<Output = Result<V, Failure>>,
        kind: Kind,
    ) -> Result<V, StepError> {
        let failed = |source| StepError::Failed { name: name.into(), source };
        match (step.await, kind) {
            (Ok(outcome), _) => {
                self.finish(name, &outcome).await?;
                Ok(outcome)
            }
            (Err(Failure::NotDone(source) | Failure::Tried(source)), Kind::Once) => {
                self.records.table().forget_step(self.key(name)).await?;
                Err(failed(source))
            }
            (Err(Failure::Unknown(source)), Kind::Once) => {
                let since = crate::clock::now();
                Err(StepError::Unknown { name: name.into(), since, source: Some(source) })
            }
            (Err(Failure::Tried(source)), Kind::Repeatable) => {
                let try_id = uuid::Uuid::new_v4().to_string();
                self.records.table().note_try(self.key(name), &try_id).await?;
                Err(failed(source))
            }
            (Err(Failure::NotDone(source) | Failure::Unknown(source)), Kind::Repeatable) => Err(failed(source)),
        }
    }

    async fn finish<V: Serialize>(&self, name: &str, outcome: &V) -> Result<(), StepError> {
        let value = serde_json::to_value(outcome).map_err(|source| StepError::Outcome { name: name.into(), source })?;
        // Under `steps/`, which no lifecycle rule expires: the outcome lives as long as
        // its step item, with its event, never cut short by the records' retention.
        let path = format!("{}/{}", self.status, key_segment(name));
        let kept = self.records.keep("steps", self.id, &path, &value, ITEM_BYTES).await?;
        // A cut outcome could never be read back: every rerun would fail on it.
        if let Kept::Cut { bytes, .. } = kept {
            return Err(StepError::Unkeepable { name: name.into(), bytes });
        }
        self.records.table().finish_step(self.key(name), &kept, crate::clock::now()).await?;
        self.finished(name);
        Ok(())
    }
}

/// How a step's failures are taken.
#[derive(Clone, Copy)]
enum Kind {
    /// [`Steps::once`], [`Steps::once_or_find`].
    Once,
    /// [`Steps::once_repeatable`].
    Repeatable,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server on 127.0.0.1 that answers every request with `status` and `headers` (or,
    /// for `None`, reads it and never answers); its URL.
    async fn answering_with(status: Option<&'static str>, headers: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = socket.read(&mut [0; 4096]).await;
                    match status {
                        Some(status) => {
                            let answer =
                                format!("HTTP/1.1 {status}\r\n{headers}content-length: 0\r\nconnection: close\r\n\r\n");
                            let _ = socket.write_all(answer.as_bytes()).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        url
    }

    async fn answering(status: Option<&'static str>) -> String {
        answering_with(status, "").await
    }

    /// A POST sent as a context's client sends it (no redirect followed).
    async fn sent(url: &str) -> Result<reqwest::Response, Failure> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        http.post(url).body("{}").send_step().await
    }

    #[tokio::test]
    async fn a_request_that_surely_had_no_effect_is_not_done_and_one_that_may_have_is_unknown() {
        // Nothing listens here: never sent.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        assert!(matches!(sent(&format!("http://{closed}/hook")).await, Err(Failure::NotDone(_))));
        for refused in
            ["400 Bad Request", "404 Not Found", "408 Request Timeout", "409 Conflict", "429 Too Many Requests"]
        {
            let failure = sent(&answering(Some(refused)).await).await;
            assert!(matches!(failure, Err(Failure::NotDone(_))), "{refused}: {failure:?}");
        }
        let later = answering_with(Some("503 Service Unavailable"), "retry-after: 30\r\n").await;
        assert!(matches!(sent(&later).await, Err(Failure::NotDone(_))), "a 503 that says when to come back");
        for unknown in
            ["500 Internal Server Error", "502 Bad Gateway", "503 Service Unavailable", "504 Gateway Timeout"]
        {
            let failure = sent(&answering(Some(unknown)).await).await;
            assert!(matches!(failure, Err(Failure::Unknown(_))), "{unknown}: {failure:?}");
        }
        // Sent, and no answer came.
        assert!(matches!(sent(&answering(None).await).await, Err(Failure::Unknown(_))));
        let ok = sent(&answering(Some("204 No Content")).await).await.unwrap();
        assert_eq!(ok.status().as_u16(), 204);
    }

    #[tokio::test]
    async fn a_redirect_is_never_taken_for_done_nor_for_not_done() {
        let elsewhere = answering(Some("200 OK")).await;
        // A POST answered with a redirect may have acted where it arrived.
        for status in ["303 See Other", "307 Temporary Redirect"] {
            let redirecting = Box::leak(format!("location: {elsewhere}\r\n").into_boxed_str());
            let failure = sent(&answering_with(Some(status), redirecting).await).await;
            assert!(matches!(failure, Err(Failure::Unknown(_))), "{status}: {failure:?}");
        }
        // A client of one's own that follows it: the 200 of the next hop (a login page,
        // say) is no proof the request was done.
        let follows = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
        let redirecting = Box::leak(format!("location: {elsewhere}\r\n").into_boxed_str());
        let url = answering_with(Some("302 Found"), redirecting).await;
        assert!(matches!(follows.post(&url).body("{}").send_step().await, Err(Failure::Unknown(_))));
    }
}
