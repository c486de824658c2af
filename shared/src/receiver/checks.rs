//! Checks one HTTP delivery before anything is written: method, path, content type,
//! size, signature (when a secret is set), and the body as a prediction. Pure, so it is tested (and fuzzed) without
//! Lambda.

use crate::prediction::Prediction;
use crate::receiver::signature::{SignatureError, Verifier};

/// The Function URL's own request limit (6 MB): the default, so this check refuses
/// nothing AWS would have carried.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// The only path deliveries are accepted on.
    pub path: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_body_bytes: DEFAULT_MAX_BODY_BYTES, path: "/".into() }
    }
}

/// Everything a delivery is checked against.
#[derive(Clone, Debug, Default)]
pub struct Checks {
    pub limits: Limits,
    /// `None` when no webhook secret is configured: signatures are not checked.
    pub verifier: Option<Verifier>,
}

/// The parts of a request the checks read.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub content_type: Option<&'a [u8]>,
    pub signature: Option<&'a [u8]>,
    pub body: Vec<u8>,
}

/// A delivery that passed the checks: the parsed prediction and its exact text.
#[derive(Debug)]
pub struct Delivery {
    pub prediction: Prediction,
    pub raw: String,
}

/// Why a request was refused. Every variant is a 4xx: WriftAI does not retry those,
/// which is right for a request that can never succeed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("only POST is accepted")]
    MethodNotAllowed,
    #[error("no webhook is served at this path")]
    NotFound,
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("signature check failed: {0}")]
    Unauthorized(SignatureError),
    #[error("body is empty")]
    Empty,
    #[error("body is not valid UTF-8")]
    NotUtf8,
    #[error("body is not a prediction: {0}")]
    Malformed(String),
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Self::MethodNotAllowed => 405,
            Self::NotFound => 404,
            Self::UnsupportedMediaType => 415,
            Self::TooLarge { .. } => 413,
            Self::Unauthorized(_) => 401,
            Self::Empty | Self::NotUtf8 | Self::Malformed(_) => 400,
        }
    }

    /// A stable, machine-readable name for the error body and the logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotFound => "not_found",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooLarge { .. } => "payload_too_large",
            Self::Unauthorized(reason) => reason.code(),
            Self::Empty => "empty_body",
            Self::NotUtf8 => "invalid_utf8",
            Self::Malformed(_) => "invalid_prediction",
        }
    }
}

/// Checks `request` at unix time `now` (for the signature's tolerance window).
pub fn check(request: Request<'_>, checks: &Checks, now: i64) -> Result<Delivery, Rejection> {
    let limits = &checks.limits;
    if request.method != "POST" {
        return Err(Rejection::MethodNotAllowed);
    }
    if !same_path(request.path, &limits.path) {
        return Err(Rejection::NotFound);
    }
    if !request.content_type.is_some_and(is_json) {
        return Err(Rejection::UnsupportedMediaType);
    }
    if request.body.len() > limits.max_body_bytes {
        return Err(Rejection::TooLarge { limit: limits.max_body_bytes });
    }
    // Over the raw bytes as received, before anything is parsed.
    if let Some(verifier) = &checks.verifier {
        verifier.verify(request.signature, &request.body, now).map_err(Rejection::Unauthorized)?;
    }
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::Empty);
    }
    let raw = String::from_utf8(request.body).map_err(|_| Rejection::NotUtf8)?;
    let prediction = Prediction::from_json(raw.as_bytes()).map_err(|e| Rejection::Malformed(e.to_string()))?;
    Ok(Delivery { prediction, raw })
}

/// `/hook` and `/hook/` are one path; an empty path is the root.
fn same_path(got: &str, want: &str) -> bool {
    let trim = |p: &str| p.trim_end_matches('/').to_owned();
    trim(got) == trim(want)
}

/// `application/json`, any case, parameters (`; charset=utf-8`) allowed.
fn is_json(header: &[u8]) -> bool {
    let essence = header.split(|&b| b == b';').next().unwrap_or_default();
    essence.trim_ascii().eq_ignore_ascii_case(b"application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"id":"a1b2c3d4-5678-9abc-def0-1234567890ab","status":"succeeded","output":"ok"}"#;

    fn request(method: &'static str, path: &'static str, ct: Option<&'static str>, body: &str) -> Request<'static> {
        Request { method, path, content_type: ct.map(str::as_bytes), signature: None, body: body.as_bytes().to_vec() }
    }

    fn with_limits(limits: Limits) -> Checks {
        Checks { limits, verifier: None }
    }

    fn rejection(r: Request<'_>) -> Rejection {
        check(r, &Checks::default(), 0).unwrap_err()
    }

    #[test]
    fn a_valid_delivery_keeps_its_exact_text() {
        let d = check(request("POST", "/", Some("application/json"), BODY), &Checks::default(), 0).unwrap();
        assert_eq!(d.raw, BODY);
        assert_eq!(d.prediction.status.as_str(), "succeeded");
    }

    #[test]
    fn content_type_parameters_and_case_are_accepted() {
        for ct in ["application/json; charset=utf-8", "Application/JSON", " application/json "] {
            assert!(check(request("POST", "", Some(ct), BODY), &Checks::default(), 0).is_ok(), "{ct}");
        }
    }

    #[test]
    fn other_content_types_are_415() {
        for ct in [None, Some("text/plain"), Some("application/jsonx"), Some("application/x-www-form-urlencoded")] {
            assert_eq!(rejection(request("POST", "/", ct, BODY)), Rejection::UnsupportedMediaType, "{ct:?}");
        }
    }

    #[test]
    fn methods_other_than_post_are_405() {
        for m in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "post"] {
            assert_eq!(rejection(request(m, "/", Some("application/json"), BODY)), Rejection::MethodNotAllowed);
        }
    }

    #[test]
    fn other_paths_are_404() {
        assert_eq!(rejection(request("POST", "/admin", Some("application/json"), BODY)), Rejection::NotFound);
        let limits = Limits { path: "/webhooks/wriftai".into(), ..Limits::default() };
        assert!(
            check(request("POST", "/webhooks/wriftai/", Some("application/json"), BODY), &with_limits(limits), 0)
                .is_ok()
        );
    }

    #[test]
    fn a_body_over_the_limit_is_413() {
        let limits = Limits { max_body_bytes: BODY.len() - 1, ..Limits::default() };
        let err = check(request("POST", "/", Some("application/json"), BODY), &with_limits(limits), 0).unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn empty_non_utf8_and_malformed_bodies_are_400() {
        assert_eq!(rejection(request("POST", "/", Some("application/json"), "  \n")), Rejection::Empty);
        let mut r = request("POST", "/", Some("application/json"), "");
        r.body = b"{\"id\":\"\xff\"}".to_vec();
        assert_eq!(rejection(r), Rejection::NotUtf8);
        for body in ["{", "[]", "null", r#"{"id":"x","status":"pending"}"#, &BODY[..BODY.len() - 1]] {
            let err = rejection(request("POST", "/", Some("application/json"), body));
            assert_eq!(err.status(), 400, "{body}");
            assert_eq!(err.code(), "invalid_prediction", "{body}");
        }
    }

    #[test]
    fn with_a_secret_an_unsigned_or_wrongly_signed_body_is_401_and_a_signed_one_passes() {
        let checks = Checks {
            limits: Limits::default(),
            verifier: Verifier::new(["s3cret"], crate::receiver::signature::DEFAULT_TOLERANCE),
        };
        let now = 1_790_000_000;
        let unsigned = check(request("POST", "/", Some("application/json"), BODY), &checks, now).unwrap_err();
        assert_eq!((unsigned.status(), unsigned.code()), (401, "signature_missing"));

        let header = crate::receiver::signature::sign("s3cret", now, BODY.as_bytes());
        let mut signed = request("POST", "/", Some("application/json"), BODY);
        signed.signature = Some(header.as_bytes());
        assert!(check(signed, &checks, now).is_ok());

        let other = crate::receiver::signature::sign("s3cret", now, b"{}");
        let mut forged = request("POST", "/", Some("application/json"), BODY);
        forged.signature = Some(other.as_bytes());
        assert_eq!(check(forged, &checks, now).unwrap_err().code(), "signature_mismatch");
    }
}
