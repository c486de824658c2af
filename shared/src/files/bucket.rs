//! The stack's bucket (`OUTPUT_BUCKET`): copies of the files a succeeded prediction's
//! output points at, made before WriftAI's URLs stop working, and the records too large
//! for an item (it is the worker's [`Bucket`]).
//!
//! A file is fetched only as `fetch.rs` allows, and streamed to its object a part at a
//! time: memory holds one part ([`PART_BYTES`]) whatever the file's size. A file of one
//! part is one `PutObject`; a larger one a multipart upload, aborted if anything fails.
//! Either way the object appears whole or not at all.
//!
//! What the origin does decides what becomes of a copy ([`Files::copy`]): a file that
//! cannot be had (a 4xx, a host that does not resolve or refuses the connection, a file
//! too large) is a [`File::Refused`], for good; what a later try may mend (a 5xx, 408 or
//! 429, a cut, a stall, the run's time running out) is a [`CopyError::Origin`]; a failure
//! of the bucket itself, nothing the file did, is a [`CopyError::Bucket`].

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use sha2::{Digest, Sha256};
use tokio::time::{Instant, timeout_at};

use super::fetch::{FetchError, Fetcher, UrlPolicy};
use super::{File, FileLimits, Found, key};
use crate::adapters::backend::Objects;
use crate::error::BoxError;
use crate::prediction::PredictionId;

/// The size of each uploaded part, and so the memory a copy holds: S3 takes parts of
/// 5 MiB and more (the last one excepted), up to 10,000 of them (80 GB here).
pub(crate) const PART_BYTES: usize = 8 * 1024 * 1024;

/// Time kept back from a copy's deadline for what follows its download: completing the
/// upload and recording the copy, a call each.
pub const FINISH_MARGIN: Duration = crate::adapters::OPERATION_TIMEOUT;

/// The longest `Content-Type` kept: an object's headers are limited, and a value from an
/// origin is written by whoever controls it.
const CONTENT_TYPE_BYTES: usize = 200;

/// Why a copy did not end: worth another try, unlike a [`File::Refused`].
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The origin failed in a way a later try may not. `late`: it had not finished when
    /// the copy's deadline came.
    #[error("{}", if *late { "the file had not arrived by the copy's deadline" } else { "the origin failed" })]
    Origin {
        /// It had not finished when the copy's deadline came.
        late: bool,
        /// How it failed, when it did.
        #[source]
        source: Option<BoxError>,
    },
    /// The bucket failed: nothing the file did.
    #[error(transparent)]
    Bucket(BoxError),
}

impl CopyError {
    fn origin(source: impl Into<BoxError>) -> Self {
        Self::Origin { late: false, source: Some(source.into()) }
    }
}

/// The stack's bucket (`OUTPUT_BUCKET`), and the client that fetches output files
/// under the URL checks (`OUTPUT_URL_ALLOW_HTTP`, `OUTPUT_URL_HOSTS`). Get it from
/// [`Context::files`](crate::Context::files).
#[derive(Clone)]
pub struct Files {
    pub(crate) objects: Objects,
    fetch: Fetcher,
    pub(crate) limits: FileLimits,
}

impl Files {
    /// Files kept in `objects`, fetched under `policy`, a download waiting at most
    /// `timeout` to connect or for its next byte.
    pub(crate) fn new(
        objects: Objects,
        policy: UrlPolicy,
        timeout: Duration,
        limits: FileLimits,
    ) -> reqwest::Result<Self> {
        Ok(Self { objects, fetch: Fetcher::new(policy, timeout)?, limits })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        self.objects.name()
    }

    /// How much of an output is copied.
    pub fn limits(&self) -> &FileLimits {
        &self.limits
    }

    /// Copies the file `found` points at to its key, if the URL policy allows it and it
    /// holds at most `limit` bytes, all of it downloaded by `deadline` (then the upload is
    /// completed, within [`FINISH_MARGIN`]). Whatever stops it, no object is left part
    /// written.
    pub(crate) async fn copy(
        &self,
        id: PredictionId,
        found: &Found<'_>,
        limit: u64,
        deadline: Option<Instant>,
    ) -> Result<File, CopyError> {
        let late = || CopyError::Origin { late: true, source: None };
        let too_large = || format!("larger than {limit} bytes (DOWNLOAD_MAX_BYTES, OUTPUT_MAX_BYTES)");
        let mut response = match by(deadline, self.fetch.get(found.url)).await.ok_or_else(late)? {
            Ok(response) => response,
            Err(FetchError::Refused(refused)) => return Ok(File::refused(found, refused)),
            // The host refuses the connection: not there to have. (One that does not
            // resolve is refused by the fetch; any other failure to connect may pass.)
            Err(FetchError::Failed(err)) if refused_connection(&err) => {
                return Ok(File::refused(found, format!("could not connect: {}", crate::error::chain(&err))));
            }
            Err(FetchError::Failed(err)) => return Err(CopyError::origin(err)),
        };
        let status = response.status();
        if status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429) {
            return Err(CopyError::origin(format!("the origin answered {status}")));
        }
        if !status.is_success() {
            return Ok(File::refused(found, format!("the origin answered {status}")));
        }
        if response.content_length().is_some_and(|len| len > limit) {
            return Ok(File::refused(found, too_large()));
        }
        let content_type = content_type(response.headers());
        let key = key(id, found);
        let mut upload = Upload { to: self, key: &key, content_type: &content_type, id: None, parts: Vec::new() };
        let (mut bytes, mut digest, mut part) = (0u64, Sha256::new(), BytesMut::with_capacity(PART_BYTES));
        // Why a stream stopped short.
        enum Stop {
            TooLarge,
            Failed(CopyError),
        }
        let streamed: Result<(), Stop> = async {
            loop {
                let next = by(deadline, response.chunk()).await.ok_or_else(|| Stop::Failed(late()))?;
                let Some(mut chunk) = next.map_err(|e| Stop::Failed(CopyError::origin(e)))? else { break };
                bytes += chunk.len() as u64;
                if bytes > limit {
                    return Err(Stop::TooLarge);
                }
                digest.update(&chunk);
                while !chunk.is_empty() {
                    let take = chunk.len().min(PART_BYTES - part.len());
                    part.extend_from_slice(&chunk.split_to(take));
                    if part.len() == PART_BYTES {
                        let sent = by(deadline, upload.part(part.split().freeze())).await;
                        sent.ok_or_else(|| Stop::Failed(late()))?.map_err(|e| Stop::Failed(CopyError::Bucket(e)))?;
                        // The part is sent and dropped: this takes its memory back
                        // rather than holding a second part's.
                        part.reserve(PART_BYTES);
                    }
                }
            }
            upload.finish(part.freeze()).await.map_err(|e| Stop::Failed(CopyError::Bucket(e)))
        }
        .await;
        if let Err(stop) = streamed {
            // Not waited for: the try is counted now, whatever S3 does with the abort (the
            // bucket's lifecycle rule removes an upload an abort missed).
            upload.abort_later();
            return match stop {
                Stop::TooLarge => Ok(File::refused(found, too_large())),
                Stop::Failed(err) => Err(err),
            };
        }
        let sha256 = hex::encode(digest.finalize());
        Ok(File::Kept { pointer: found.pointer.clone(), key, bytes, content_type, sha256 })
    }
}

/// Whether the origin refused the connection itself (nothing listens there).
fn refused_connection(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        if err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        source = err.source();
    }
    false
}

/// `future`'s output, or `None` if `deadline` came first.
async fn by<T>(deadline: Option<Instant>, future: impl std::future::Future<Output = T>) -> Option<T> {
    match deadline {
        Some(deadline) => timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}

/// The origin's `Content-Type` when it reads as one (`type/subtype`, parameters allowed,
/// printable ASCII, at most [`CONTENT_TYPE_BYTES`]); else `application/octet-stream`.
pub(crate) fn content_type(headers: &HeaderMap) -> String {
    let given = headers.get(CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default();
    let readable = given.len() <= CONTENT_TYPE_BYTES
        && given.contains(&b'/')
        && given.iter().all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\t');
    match std::str::from_utf8(given) {
        Ok(text) if readable => text.to_owned(),
        _ => "application/octet-stream".to_owned(),
    }
}

/// One object being written: a single put, or a multipart upload once a second part
/// is needed.
struct Upload<'a> {
    to: &'a Files,
    key: &'a str,
    content_type: &'a str,
    /// The multipart upload, once started.
    id: Option<String>,
    /// The ETag of each part uploaded, in order.
    parts: Vec<String>,
}

impl Upload<'_> {
    /// Uploads a full part, starting the multipart upload on the first.
    async fn part(&mut self, body: Bytes) -> Result<(), BoxError> {
        let objects = &self.to.objects;
        let id = match &self.id {
            Some(id) => id.clone(),
            None => self.id.insert(objects.start_upload(self.key, self.content_type).await?).clone(),
        };
        let number = i32::try_from(self.parts.len() + 1)?;
        self.parts.push(objects.upload_part(self.key, &id, number, body).await?);
        Ok(())
    }

    /// Writes the rest: the whole file in one put, or the last part and the completion.
    async fn finish(&mut self, rest: Bytes) -> Result<(), BoxError> {
        let Some(id) = self.id.clone() else {
            return Ok(self.to.objects.put_typed(self.key, rest, self.content_type).await?);
        };
        if !rest.is_empty() {
            self.part(rest).await?;
        }
        self.to.objects.complete_upload(self.key, &id, std::mem::take(&mut self.parts)).await?;
        self.id = None;
        Ok(())
    }

    /// Drops a started multipart upload, so no part of it lingers, in the background: the
    /// copy's caller does not wait for it. Best effort: the bucket's lifecycle rule
    /// removes what an abort could not.
    fn abort_later(&self) {
        let Some(id) = self.id.clone() else { return };
        let (objects, key) = (self.to.objects.clone(), self.key.to_owned());
        tokio::spawn(async move {
            if let Err(err) = objects.abort_upload(&key, &id).await {
                tracing::warn!(key, error = %crate::error::chain(&err), "could not abort an upload");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::adapters::memory::MemoryBucket;
    use crate::files::urls;

    /// Files whose bucket is nowhere: what these tests look at is decided before any
    /// write to it. The URL checks allow `127.0.0.1:<port>`; reads wait 1 s at most.
    fn files(port: u16) -> Files {
        let policy = UrlPolicy::new(true, Some(&format!("127.0.0.1:{port}"))).unwrap();
        let limits = FileLimits { per_file: 1 << 20, per_prediction: 1 << 20, files: 10 };
        Files::new(Objects::from(MemoryBucket::default()), policy, Duration::from_secs(1), limits).unwrap()
    }

    /// An origin on 127.0.0.1 that answers each connection with `answer`; its port.
    async fn origin<F, Fut>(answer: F) -> u16
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.read(&mut [0; 4096]).await;
                tokio::spawn(answer(socket));
            }
        });
        port
    }

    /// An origin that answers `status` with an empty body.
    async fn answering(status: &'static str) -> u16 {
        origin(move |mut socket| async move {
            let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = socket.write_all(answer.as_bytes()).await;
        })
        .await
    }

    /// Headers for a 100-byte body, then `body` does what it does with the socket.
    fn head() -> &'static [u8] {
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\nconnection: close\r\n\r\n"
    }

    async fn copy(port: u16, deadline: Option<Instant>) -> Result<File, CopyError> {
        let output = json!(format!("http://127.0.0.1:{port}/file"));
        let found = urls(&output, 1).found.remove(0);
        files(port).copy(PredictionId::random(), &found, 1 << 20, deadline).await
    }

    fn refusal(copied: Result<File, CopyError>) -> String {
        match copied {
            Ok(File::Refused { refused, .. }) => refused,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_had_is_refused_for_good() {
        for (status, said) in [("404 Not Found", "404"), ("410 Gone", "410"), ("403 Forbidden", "403")] {
            let refused = refusal(copy(answering(status).await, None).await);
            assert!(refused.contains(said), "{status}: {refused}");
        }
        // A port nothing listens on: the connection is refused.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let refused = refusal(copy(closed, None).await);
        assert!(refused.starts_with("could not connect"), "{refused}");
    }

    #[tokio::test]
    async fn what_a_later_try_may_mend_is_an_error_of_the_origin() {
        for status in
            ["503 Service Unavailable", "500 Internal Server Error", "429 Too Many Requests", "408 Request Timeout"]
        {
            let copied = copy(answering(status).await, None).await;
            assert!(matches!(copied, Err(CopyError::Origin { late: false, .. })), "{status}: {copied:?}");
        }
        // Cut off halfway.
        let cut = origin(|mut socket| async move {
            let _ = socket.write_all(head()).await;
            let _ = socket.write_all(&[b'x'; 50]).await;
        })
        .await;
        assert!(matches!(copy(cut, None).await, Err(CopyError::Origin { late: false, .. })));
        // Stalled: ten bytes, then nothing for longer than a read may wait.
        let stalled = origin(|mut socket| async move {
            let _ = socket.write_all(head()).await;
            let _ = socket.write_all(&[b'x'; 10]).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        assert!(matches!(copy(stalled, None).await, Err(CopyError::Origin { late: false, .. })));
    }

    #[tokio::test]
    async fn a_file_that_drips_in_is_stopped_at_the_copys_deadline() {
        // A byte every 300 ms: never quiet long enough for the read timeout (1 s).
        let dripping = origin(|mut socket| async move {
            let _ = socket.write_all(head()).await;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if socket.write_all(b"x").await.is_err() {
                    return;
                }
            }
        })
        .await;
        let started = Instant::now();
        let copied = copy(dripping, Some(started + Duration::from_secs(2))).await;
        assert!(matches!(copied, Err(CopyError::Origin { late: true, .. })), "{copied:?}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "stopped at its deadline, not after {took:?}");
    }

    /// Issue 33, defect 5: once the copy's deadline had passed, each later file failed
    /// "late" at once and was charged a try without a byte fetched, so healthy files
    /// behind a slow one were recorded failed for good.
    #[tokio::test]
    async fn a_run_out_of_time_charges_only_the_file_it_was_fetching() {
        use crate::examples::{FILE_TRIES, copy_files};
        use crate::worker::Context;

        let dripping = origin(|mut socket| async move {
            let _ = socket.write_all(head()).await;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if socket.write_all(b"x").await.is_err() {
                    return;
                }
            }
        })
        .await;
        let urls: Vec<String> = (0..5).map(|n| format!("http://127.0.0.1:{dripping}/{n}")).collect();
        let body = json!({"id": PredictionId::random().to_string(), "status": "succeeded", "output": urls});
        let prediction = crate::prediction::Prediction::from_json(body.to_string().as_bytes()).unwrap();
        let ctx = Context::in_memory(()).fetching_from(&format!("127.0.0.1:{dripping}"));
        // Each run of the work has a second for its downloads: the link in flight takes it
        // all and is charged; the others are not begun, and not charged.
        let attempt = std::sync::atomic::AtomicU32::new(0);
        let run = || async {
            let deadline = Instant::now() + FINISH_MARGIN + Duration::from_secs(1);
            let nth = attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let copying = crate::deadline::within(deadline, copy_files(&prediction, &ctx));
            crate::worker::batch::tests::as_attempt(nth, Box::pin(copying)).await
        };
        let tries = |n: usize| {
            let step = ctx.memory_table().step(prediction.id, "succeeded", &format!("file output/{n}"));
            step.map(|step| (step.tries.len(), step.outcome.is_some()))
        };
        for runs in 1..FILE_TRIES {
            assert!(run().await.is_err(), "files left to try again");
            let charged = usize::try_from(runs).unwrap();
            assert_eq!(tries(0), Some((charged, false)), "the file in flight is charged each run");
            assert!((1..5).all(|n| tries(n).is_none()), "the files after it are never begun");
        }
        // From the third run on, a file not begun is charged as a try cut short, so the
        // output's files end within five runs, under the queue's five receives.
        assert!(run().await.is_err(), "the third run");
        assert_eq!(tries(0).map(|(_, recorded)| recorded), Some(true), "recorded failed after its last try");
        assert!((1..5).all(|n| tries(n) == Some((1, false))), "charged once each");
        assert!(run().await.is_err(), "the fourth run");
        let copied = run().await.expect("the fifth run ends the work");
        assert_eq!(copied.len(), 5);
        assert!(copied.iter().all(|f| matches!(f, File::Failed { tries: 3, .. })), "{copied:?}");
    }

    #[test]
    fn a_content_type_is_kept_only_when_it_reads_as_one() {
        let of = |value: &[u8]| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, reqwest::header::HeaderValue::from_bytes(value).unwrap());
            content_type(&headers)
        };
        assert_eq!(of(b"image/png"), "image/png");
        assert_eq!(of(b"text/plain; charset=utf-8"), "text/plain; charset=utf-8");
        assert_eq!(of(format!("image/{}", "x".repeat(300)).as_bytes()), "application/octet-stream");
        assert_eq!(of(b"png"), "application/octet-stream");
        assert_eq!(of("image/pn\u{e9}".as_bytes()), "application/octet-stream");
        assert_eq!(content_type(&HeaderMap::new()), "application/octet-stream");
    }
}
