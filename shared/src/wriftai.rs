//! The WriftAI API client: create, get, list, cancel. Retries as the official client
//! does: on 429 (until `x-ratelimit-reset`) and on 5xx (exponential backoff from 0.5 s,
//! capped at 8 s, up to 25% jitter), twice by default.

use std::future::Future;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ConfigError, Env};
use crate::ports::PredictionSource;
use crate::prediction::{Prediction, PredictionId, Status};

/// WriftAI's API, as its official clients default to (`WRIFTAI_API_BASE_URL` changes it).
pub const DEFAULT_BASE_URL: &str = "https://api.wrift.ai/v1";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(8);

/// Why a call to WriftAI failed, after the client's own retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// WriftAI answered with an error status.
    #[error("WriftAI answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of its body (512 bytes at most).
        body: String,
    },
    /// WriftAI's rate limit held for longer than the client waits (`max_rate_limit_wait`).
    #[error("WriftAI's rate limit holds until unix time {reset:?}")]
    RateLimited {
        /// When it ends, as `x-ratelimit-reset` said (unix seconds).
        reset: Option<i64>,
    },
    /// The request did not get an answer: no connection, a timeout, a cut.
    #[error("WriftAI request failed")]
    Transport(#[source] reqwest::Error),
    /// The answer is not what the API documents.
    #[error("WriftAI's answer is not what the API documents")]
    Decode(#[source] serde_json::Error),
}

impl ApiError {
    /// Whether the same call may succeed later: a 5xx, a rate limit, a transport failure.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500,
            Self::RateLimited { .. } => true,
            Self::Transport(e) => e.is_timeout() || e.is_connect() || e.is_request(),
            Self::Decode(_) => false,
        }
    }

    /// Whether WriftAI surely did nothing with the request: it refused it (a 4xx, a rate
    /// limit) or never got it (no connection). After anything else a create may have
    /// happened.
    pub fn did_nothing(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status < 500,
            Self::RateLimited { .. } => true,
            Self::Transport(e) => e.is_connect() || e.is_builder(),
            Self::Decode(_) => false,
        }
    }
}

/// A prediction as the API returned it, with its exact JSON text.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Fetched {
    /// The prediction.
    pub prediction: Prediction,
    /// Its JSON text, exactly as WriftAI sent it.
    pub raw: String,
}

impl Fetched {
    pub(crate) fn parse(raw: String) -> Result<Self, ApiError> {
        let prediction = Prediction::from_json(raw.as_bytes()).map_err(ApiError::Decode)?;
        Ok(Self { prediction, raw })
    }
}

/// Where WriftAI posts a prediction's status changes, and the secret it signs them with.
#[derive(Clone, Debug, Serialize)]
pub struct Webhook {
    /// The receiver's URL.
    pub url: String,
    /// The secret WriftAI signs each delivery with; none: unsigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A prediction to create (`POST /v1/predictions`).
#[derive(Clone, Debug, Serialize)]
pub struct CreatePrediction {
    /// `owner/name` or `owner/name:version-number`.
    pub model: String,
    /// Its input.
    pub input: Value,
    /// Where its status changes are posted: give [`Context::webhook`](crate::Context::webhook),
    /// so its work runs here in turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// Hold the answer until the prediction finishes, at most this long (`Prefer: wait`).
    #[serde(skip)]
    pub wait: Option<Duration>,
}

/// One page of a list of predictions (`GET /v1/predictions`).
#[derive(Debug, Deserialize)]
#[non_exhaustive]
pub struct Page {
    /// The predictions of this page.
    pub items: Vec<Prediction>,
    /// The next page's cursor; none on the last page.
    pub next_cursor: Option<String>,
    /// The previous page's cursor; none on the first page.
    pub previous_cursor: Option<String>,
}

/// How the client reaches WriftAI: [`ApiConfig::new`] gives the official client's
/// defaults, whose fields can then be changed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ApiConfig {
    /// The API's base URL, without a trailing slash.
    pub base_url: String,
    /// The token. (The functions read `WRIFTAI_ACCESS_TOKEN`, which on AWS is the ARN of
    /// the Secrets Manager secret holding it, and resolve it at cold start.)
    pub token: String,
    /// Whole-request timeout; a `Prefer: wait` create may hold the answer this long.
    pub timeout: Duration,
    /// Tries after the first of a call that got a 429 or a 5xx (a create is never sent
    /// again after a 5xx: WriftAI may have made it).
    pub max_retries: u32,
    /// Longest a 429 is waited out before giving up with `RateLimited`.
    pub max_rate_limit_wait: Duration,
}

impl ApiConfig {
    /// The API at `base_url` with `token`, and the official client's defaults: 70 s a
    /// request, two retries, a rate limit waited out for at most 60 s.
    pub fn new(base_url: &str, token: impl Into<String>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.into(),
            timeout: Duration::from_secs(70),
            max_retries: 2,
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }

    /// The configuration the functions read: `WRIFTAI_API_BASE_URL`,
    /// `WRIFTAI_ACCESS_TOKEN`, `WRIFTAI_TIMEOUT_SECS`, `WRIFTAI_MAX_RETRIES`,
    /// `WRIFTAI_MAX_RATE_LIMIT_WAIT_SECS`.
    #[doc(hidden)]
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let base_url = env.optional("WRIFTAI_API_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into());
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: env.required("WRIFTAI_ACCESS_TOKEN")?,
            timeout: Duration::from_secs(env.parsed("WRIFTAI_TIMEOUT_SECS", 70)?),
            max_retries: env.parsed("WRIFTAI_MAX_RETRIES", 2)?,
            max_rate_limit_wait: Duration::from_secs(env.parsed("WRIFTAI_MAX_RATE_LIMIT_WAIT_SECS", 60)?),
        })
    }
}

/// The WriftAI API: over HTTPS to `WRIFTAI_API_BASE_URL`, or in memory in tests
/// (`WriftAi::in_memory`, feature `test-util`). Clones share one connection pool.
#[derive(Clone)]
pub struct WriftAi {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Http(Http),
    #[cfg(any(test, feature = "test-util"))]
    Memory(std::sync::Arc<crate::adapters::memory::MemoryWriftAi>),
}

/// The API over HTTP, with the official client's retries.
#[derive(Clone)]
struct Http {
    http: reqwest::Client,
    config: ApiConfig,
}

impl WriftAi {
    /// A client of the API `config` names. Fails only when the HTTP client cannot be
    /// built (no TLS roots).
    pub fn new(config: ApiConfig) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(config.timeout)
            .build()
            .map_err(ApiError::Transport)?;
        Ok(Self { backend: Backend::Http(Http { http, config }) })
    }

    /// A WriftAI in memory: it creates, lists and cancels predictions of its own, and
    /// answers for those a test set ([`crate::adapters::memory::MemoryWriftAi`]).
    #[cfg(any(test, feature = "test-util"))]
    pub fn in_memory() -> Self {
        Self { backend: Backend::Memory(Default::default()) }
    }

    /// A WriftAI on `api`, shared with whoever else holds it: this repository's
    /// simulation drives its predictions. Not part of the API's promise.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-util"))]
    pub fn on_memory(api: std::sync::Arc<crate::adapters::memory::MemoryWriftAi>) -> Self {
        Self { backend: Backend::Memory(api) }
    }

    /// The in-memory WriftAI this is, for a test to set what it answers or look at what
    /// it was asked.
    #[cfg(any(test, feature = "test-util"))]
    pub fn memory(&self) -> Option<&crate::adapters::memory::MemoryWriftAi> {
        match &self.backend {
            Backend::Memory(api) => Some(api),
            Backend::Http(_) => None,
        }
    }

    /// Creates a prediction. A create is never sent twice: after a 5xx or a lost answer
    /// WriftAI may have made it, so the error comes back instead (a step that creates
    /// should run as [`Steps::once_or_find`](crate::Steps::once_or_find), as
    /// [`examples::chain`](crate::examples::chain) does).
    pub async fn create(&self, request: &CreatePrediction) -> Result<Fetched, ApiError> {
        let http = match &self.backend {
            Backend::Http(http) => http,
            #[cfg(any(test, feature = "test-util"))]
            Backend::Memory(api) => return api.create(request),
        };
        let body = serde_json::to_vec(request).map_err(ApiError::Decode)?;
        let wait = request.wait.map(|w| format!("wait={}", w.as_secs()));
        let text = http
            .call(Method::POST, "/predictions", &[], Some(body), wait.as_deref())
            .await?
            .ok_or(ApiError::Status { status: 404, body: "model not found".into() })?;
        Fetched::parse(text)
    }

    /// `None` when WriftAI does not know the ID (never created, or its data expired).
    pub async fn get(&self, id: PredictionId) -> Result<Option<Fetched>, ApiError> {
        let http = match &self.backend {
            Backend::Http(http) => http,
            #[cfg(any(test, feature = "test-util"))]
            Backend::Memory(api) => return api.get(id).await,
        };
        match http.call(Method::GET, &format!("/predictions/{id}"), &[], None, None).await? {
            Some(text) => Fetched::parse(text).map(Some),
            None => Ok(None),
        }
    }

    /// One page of the account's predictions, newest first, of `statuses` (all when
    /// empty), from `cursor` (the first page when none).
    pub async fn list(&self, statuses: &[Status], cursor: Option<&str>, page_size: u32) -> Result<Page, ApiError> {
        let http = match &self.backend {
            Backend::Http(http) => http,
            #[cfg(any(test, feature = "test-util"))]
            Backend::Memory(api) => return api.list(statuses, cursor, page_size),
        };
        let mut query: Vec<(&str, String)> = statuses.iter().map(|s| ("statuses", s.to_string())).collect();
        query.push(("page_size", page_size.to_string()));
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let text = http.call(Method::GET, "/predictions", &query, None, None).await?.unwrap_or_default();
        serde_json::from_str(&text).map_err(ApiError::Decode)
    }

    /// Asks for cancellation; WriftAI cancels asynchronously.
    pub async fn cancel(&self, id: PredictionId) -> Result<Option<Fetched>, ApiError> {
        let http = match &self.backend {
            Backend::Http(http) => http,
            #[cfg(any(test, feature = "test-util"))]
            Backend::Memory(api) => return api.cancel(id),
        };
        match http.call(Method::POST, &format!("/predictions/{id}/cancel"), &[], None, None).await? {
            Some(text) => Fetched::parse(text).map(Some),
            None => Ok(None),
        }
    }
}

impl Http {
    /// One API call with the official client's retries, but for one: a POST that got a
    /// 5xx is not sent again, since WriftAI may have applied it before failing (a second
    /// create would start a second prediction). A 429 is waited out for any call: it was
    /// refused before anything was done. `Ok(None)` for a 404.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
        prefer: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let url = format!("{}{path}", self.config.base_url);
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), &url).bearer_auth(&self.config.token).query(query);
            if let Some(body) = &body {
                request = request.header("content-type", "application/json").body(body.clone());
            }
            if let Some(prefer) = prefer {
                request = request.header("prefer", prefer);
            }
            let response = request.send().await.map_err(ApiError::Transport)?;
            let status = response.status();
            let reset = header_i64(&response, "x-ratelimit-reset");
            if status.is_success() {
                return response.text().await.map(Some).map_err(ApiError::Transport);
            }
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let retry_in = match status {
                StatusCode::TOO_MANY_REQUESTS => {
                    rate_limit_wait(reset).filter(|w| *w <= self.config.max_rate_limit_wait)
                }
                s if s.is_server_error() && method != Method::POST => Some(backoff(attempt)),
                _ => None,
            };
            match retry_in {
                Some(wait) if attempt < self.config.max_retries => {
                    tracing::debug!(%status, attempt, wait_ms = wait.as_millis() as u64, "retrying WriftAI call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ if status == StatusCode::TOO_MANY_REQUESTS => return Err(ApiError::RateLimited { reset }),
                _ => {
                    let body = response.text().await.unwrap_or_default();
                    return Err(ApiError::Status { status: status.as_u16(), body: truncate(body) });
                }
            }
        }
    }
}

fn header_i64(response: &reqwest::Response, name: &str) -> Option<i64> {
    response.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Until the reset time (a unix timestamp); no header means "soon", as a backoff.
fn rate_limit_wait(reset: Option<i64>) -> Option<Duration> {
    let Some(reset) = reset else { return Some(BACKOFF_START) };
    let now = crate::clock::now().unix_timestamp();
    Some(Duration::from_secs(u64::try_from(reset - now).unwrap_or(0)).max(Duration::from_millis(100)))
}

/// 0.5 s, 1 s, 2 s, ... capped at 8 s, plus up to 25% jitter.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_START.saturating_mul(1 << attempt.min(5)).min(BACKOFF_CAP);
    let nanos = crate::clock::now().nanosecond();
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

fn truncate(mut body: String) -> String {
    if body.len() > 512 {
        let cut = (0..=512).rev().find(|i| body.is_char_boundary(*i)).unwrap_or(0);
        body.truncate(cut);
    }
    body
}

impl PredictionSource for WriftAi {
    fn get(&self, id: PredictionId) -> impl Future<Output = Result<Option<Fetched>, ApiError>> + Send {
        WriftAi::get(self, id)
    }

    async fn newest(&self, n: u32) -> Result<Vec<PredictionId>, ApiError> {
        #[cfg(any(test, feature = "test-util"))]
        if let Backend::Memory(api) = &self.backend {
            return api.newest(n);
        }
        Ok(self.list(&[], None, n).await?.items.into_iter().map(|p| p.id).collect())
    }
}

#[cfg(test)]
impl ApiConfig {
    /// The API at `base_url` (a simulator), with a token it takes.
    pub(crate) fn for_tests(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: "test".into(),
            timeout: Duration::from_secs(10),
            max_retries: 2,
            max_rate_limit_wait: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_half_a_second_and_stops_at_eight_with_at_most_a_quarter_jitter() {
        for (attempt, base) in [(0, 500), (1, 1000), (2, 2000), (3, 4000), (4, 8000), (9, 8000)] {
            let wait = backoff(attempt).as_millis();
            assert!((base..=base * 5 / 4).contains(&wait), "attempt {attempt}: {wait} ms");
        }
    }

    #[test]
    fn a_rate_limit_in_the_past_waits_briefly_and_one_ahead_waits_until_then() {
        assert_eq!(rate_limit_wait(Some(0)), Some(Duration::from_millis(100)));
        let ahead = crate::clock::now().unix_timestamp() + 5;
        assert!(rate_limit_wait(Some(ahead)).unwrap() >= Duration::from_secs(4));
    }

    /// A WriftAI that answers every request with a 500; how many requests it got.
    async fn failing_api() -> (WriftAi, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = socket.read(&mut [0; 16 * 1024]).await;
                let answer = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = socket.write_all(answer).await;
            }
        });
        let config = ApiConfig {
            base_url,
            token: "t".into(),
            timeout: Duration::from_secs(5),
            max_retries: 2,
            max_rate_limit_wait: Duration::from_secs(1),
        };
        (WriftAi::new(config).unwrap(), hits)
    }

    #[tokio::test]
    async fn a_create_that_got_a_server_error_is_not_sent_again_but_a_get_is() {
        use std::sync::atomic::Ordering;
        let (api, hits) = failing_api().await;
        let request =
            CreatePrediction { model: "acme/echo".into(), input: serde_json::json!({}), webhook: None, wait: None };
        assert!(matches!(api.create(&request).await, Err(ApiError::Status { status: 500, .. })));
        assert_eq!(hits.load(Ordering::SeqCst), 1, "one create: a second could start a second prediction");
        assert!(api.get(PredictionId::random()).await.is_err());
        assert_eq!(hits.load(Ordering::SeqCst), 1 + 3, "a get is tried again, max_retries times");
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(ApiError::Status { status: 503, body: String::new() }.is_retryable());
        assert!(ApiError::RateLimited { reset: None }.is_retryable());
        assert!(!ApiError::Status { status: 400, body: String::new() }.is_retryable());
    }
}
