//! Calls a function through the Lambda invoke API that `cargo lambda watch` serves.

use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, InvokeError};

/// Lambda's longest function timeout. `cargo lambda watch` compiles a function on its
/// first invocation, which can take minutes, so anything shorter would fail batches that
/// are only waiting for the compiler.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(900);

/// One function behind the invoke API.
#[derive(Clone, Debug)]
pub struct Invoker {
    client: reqwest::Client,
    url: String,
    function: String,
    /// `host:port` of the endpoint, for the reachability probe.
    authority: Option<(String, u16)>,
}

impl Invoker {
    /// `base` is the invoke API's root, e.g. `http://127.0.0.1:9000`.
    pub fn new(base: &str, function: &str) -> Result<Self, Error> {
        let client = reqwest::Client::builder().timeout(INVOKE_TIMEOUT).build().map_err(Error::HttpClient)?;
        let url = format!("{}/2015-03-31/functions/{function}/invocations", base.trim_end_matches('/'));
        let authority = reqwest::Url::parse(base)
            .ok()
            .and_then(|u| Some((u.host_str()?.trim_matches(['[', ']']).to_owned(), u.port_or_known_default()?)));
        Ok(Self { client, url, function: function.to_owned(), authority })
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// Invokes synchronously and returns the function's JSON result (`null` for an empty
    /// body). Every way the invocation can fail as a whole is an `InvokeError`.
    pub async fn invoke(&self, event: &Value) -> Result<Value, InvokeError> {
        let response = self.client.post(&self.url).json(event).send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        // AWS's Invoke answers 200 and flags a function error with this header;
        // cargo-lambda 1.9.2 answers 500 with the same JSON body and no header.
        let flagged = response.headers().contains_key("x-amz-function-error");
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() || flagged {
            return Err(failure(status.as_u16(), &body));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(InvokeError::NotJson)
    }

    /// Whether something accepts connections at the endpoint. Checked before taking
    /// messages off the queue: a batch received while `cargo lambda watch` is down would
    /// only sit invisible for the visibility timeout and use up one of its receives.
    pub async fn reachable(&self) -> bool {
        let Some((host, port)) = &self.authority else { return true };
        let connect = tokio::net::TcpStream::connect((host.as_str(), *port));
        matches!(tokio::time::timeout(Duration::from_secs(2), connect).await, Ok(Ok(_)))
    }

    fn transport(&self, err: reqwest::Error) -> InvokeError {
        if err.is_timeout() {
            InvokeError::Timeout(INVOKE_TIMEOUT)
        } else if err.is_connect() {
            InvokeError::Unreachable { url: self.url.clone(), source: err }
        } else {
            InvokeError::Transport(err)
        }
    }
}

/// A failed answer: the function's own `errorType`/`errorMessage` when the body has
/// them, else the status and the start of the body (cargo-lambda's 404 for an unknown
/// function, its empty 408 on `--timeout`).
fn failure(status: u16, body: &[u8]) -> InvokeError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str).map(str::to_owned);
    match (field("errorType"), field("errorMessage")) {
        (None, None) => {
            let text = String::from_utf8_lossy(body);
            let body = text.chars().take(300).collect::<String>();
            InvokeError::Status { status, body }
        }
        (error_type, message) => InvokeError::Function {
            status,
            error_type: error_type.unwrap_or_default(),
            message: message.unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invocation_url_is_lambdas_invoke_path() {
        let invoker = Invoker::new("http://127.0.0.1:9000/", "worker").ok();
        assert_eq!(
            invoker.as_ref().map(|i| i.url.as_str()),
            Some("http://127.0.0.1:9000/2015-03-31/functions/worker/invocations")
        );
        assert_eq!(invoker.and_then(|i| i.authority), Some(("127.0.0.1".to_owned(), 9000)));
    }

    #[test]
    fn a_function_error_body_becomes_a_function_error() {
        let body = br#"{"errorType":"&alloc::boxed::Box<dyn core::error::Error>","errorMessage":"told to fail"}"#;
        match failure(500, body) {
            InvokeError::Function { status, message, .. } => {
                assert_eq!((status, message.as_str()), (500, "told to fail"))
            }
            other => panic!("not a function error: {other:?}"),
        }
    }

    #[test]
    fn any_other_failed_answer_keeps_its_status_and_body() {
        let body = br#"{"detail":"that function doesn't exist","title":"Missing function"}"#;
        match failure(404, body) {
            InvokeError::Status { status, body } => {
                assert_eq!(status, 404);
                assert!(body.contains("Missing function"));
            }
            other => panic!("not a status error: {other:?}"),
        }
        assert!(matches!(failure(408, b""), InvokeError::Status { status: 408, .. }));
    }
}
