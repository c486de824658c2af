//! Webhook signatures: the `wriftai-webhook-signature` header, scheme `v1`
//! (HMAC-SHA256 over `"<t>." + raw body`), checked against the current and previous
//! secrets within a time tolerance, in constant time.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const HEADER: &str = "wriftai-webhook-signature";
/// The official client's default window around now.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a signature was refused; the four cases the official client tells apart, plus
/// a missing header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {HEADER} header is missing")]
    Missing,
    #[error("the signature header has no timestamp")]
    NoTimestamp,
    #[error("the signature header has no v1 signature")]
    NoSignature,
    #[error("the signature timestamp is outside the tolerance window")]
    Stale,
    #[error("no signature matches the body")]
    Mismatch,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "signature_missing",
            Self::NoTimestamp => "signature_no_timestamp",
            Self::NoSignature => "signature_no_v1",
            Self::Stale => "signature_stale",
            Self::Mismatch => "signature_mismatch",
        }
    }
}

/// Verifies deliveries against one or more secrets (during a rotation, the new one
/// and the one it replaces).
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<Vec<u8>>,
    tolerance: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("secrets", &self.secrets.len()).field("tolerance", &self.tolerance).finish()
    }
}

impl Verifier {
    /// `None` when no secret is given: signatures are then not checked.
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>, tolerance: Duration) -> Option<Self> {
        let secrets: Vec<Vec<u8>> =
            secrets.into_iter().map(|s| s.as_ref().as_bytes().to_vec()).filter(|s| !s.is_empty()).collect();
        (!secrets.is_empty()).then_some(Self { secrets, tolerance })
    }

    /// Checks `header` against the raw `body` at unix time `now`.
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8], now: i64) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let parsed = Header::parse(header)?;
        if parsed.timestamp.abs_diff(now) > self.tolerance.as_secs() {
            return Err(SignatureError::Stale);
        }
        for secret in &self.secrets {
            let mac = signed(secret, parsed.timestamp, body);
            // verify_slice compares in constant time.
            if parsed.v1.iter().any(|candidate| mac.clone().verify_slice(candidate).is_ok()) {
                return Ok(());
            }
        }
        Err(SignatureError::Mismatch)
    }
}

fn signed(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Signs `body` as WriftAI does: the header value for `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = signed(secret.as_bytes(), timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// A parsed header: `t=<unix seconds>,v1=<hex>[,v1=<hex>...][,<other scheme>=...]`.
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    pub timestamp: i64,
    /// Decoded `v1` signatures. Entries that are not 64 lowercase hex digits can never
    /// match and are dropped; entries of other schemes are ignored, not refused.
    pub v1: Vec<[u8; 32]>,
}

impl Header {
    pub fn parse(header: &[u8]) -> Result<Self, SignatureError> {
        let text = std::str::from_utf8(header).map_err(|_| SignatureError::NoTimestamp)?;
        // No trimming: the official client splits exactly this way.
        let pairs = || text.split(',').filter_map(|item| item.split_once('='));
        let timestamp = pairs()
            .find(|(key, _)| *key == "t")
            .and_then(|(_, value)| parse_timestamp(value))
            .ok_or(SignatureError::NoTimestamp)?;
        let entries: Vec<&str> = pairs().filter(|(key, _)| *key == "v1").map(|(_, value)| value).collect();
        if entries.iter().all(|value| value.is_empty()) {
            return Err(SignatureError::NoSignature);
        }
        Ok(Self { timestamp, v1: entries.into_iter().filter_map(decode_lower_hex).collect() })
    }
}

fn parse_timestamp(value: &str) -> Option<i64> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn decode_lower_hex(value: &str) -> Option<[u8; 32]> {
    if value.len() != 64 || !value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(value, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"a1b2c3d4-5678-9abc-def0-1234567890ab","status":"succeeded"}"#;
    const NOW: i64 = 1_790_000_000;

    fn verifier() -> Verifier {
        Verifier::new(["whsec_current", "whsec_previous"], DEFAULT_TOLERANCE).unwrap()
    }

    fn check(header: &str) -> Result<(), SignatureError> {
        verifier().verify(Some(header.as_bytes()), BODY, NOW)
    }

    #[test]
    fn a_signature_by_the_current_or_previous_secret_passes() {
        assert_eq!(check(&sign("whsec_current", NOW, BODY)), Ok(()));
        assert_eq!(check(&sign("whsec_previous", NOW, BODY)), Ok(()));
        assert_eq!(check(&sign("whsec_other", NOW, BODY)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_matching_v1_among_several_passes_and_other_schemes_are_ignored() {
        let good = sign("whsec_current", NOW, BODY);
        let sig = good.split_once(",v1=").unwrap().1;
        let header = format!("t={NOW},v1={},v2=zzzz,v1={sig},v0=", "0".repeat(64));
        assert_eq!(check(&header), Ok(()));
    }

    #[test]
    fn the_four_failures_are_told_apart() {
        assert_eq!(verifier().verify(None, BODY, NOW), Err(SignatureError::Missing));
        assert_eq!(check("v1=abcd"), Err(SignatureError::NoTimestamp));
        assert_eq!(check("t=abc,v1=abcd"), Err(SignatureError::NoTimestamp));
        assert_eq!(check(&format!("t={NOW},v2=abcd")), Err(SignatureError::NoSignature));
        assert_eq!(check(&format!("t={NOW},v1=")), Err(SignatureError::NoSignature));
        assert_eq!(check(&sign("whsec_current", NOW - 301, BODY)), Err(SignatureError::Stale));
        assert_eq!(check(&sign("whsec_current", NOW + 301, BODY)), Err(SignatureError::Stale));
        assert_eq!(check(&sign("whsec_current", NOW - 300, BODY)), Ok(()));
    }

    #[test]
    fn known_pitfalls_are_refused() {
        let good = sign("whsec_current", NOW, BODY);
        assert_eq!(check(&good[..good.len() - 2]), Err(SignatureError::Mismatch), "truncated");
        assert_eq!(
            check(&good.to_uppercase().replace("T=", "t=").replace("V1=", "v1=")),
            Err(SignatureError::Mismatch),
            "uppercase hex"
        );
        let reserialised =
            serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(BODY).unwrap()).unwrap();
        assert_eq!(
            verifier().verify(Some(sign("whsec_current", NOW, &reserialised).as_bytes()), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(check(&sign("whsec_current", NOW, b"{}")), Err(SignatureError::Mismatch), "another body");
    }

    #[test]
    fn no_secret_means_no_verifier() {
        assert!(Verifier::new(Vec::<String>::new(), DEFAULT_TOLERANCE).is_none());
        assert!(Verifier::new([""], DEFAULT_TOLERANCE).is_none());
    }

    #[test]
    fn a_known_vector_matches() {
        // Computed with Python: hmac.new(b"secret", b"1700000000.{}", sha256).hexdigest()
        assert_eq!(
            sign("secret", 1_700_000_000, b"{}"),
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
