//! The `wriftai-webhook-signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::chaos::SplitMix64;

pub const HEADER: &str = "wriftai-webhook-signature";

/// Lowercase hex HMAC-SHA256 keyed by the secret's UTF-8 bytes over `"<t>." + body`:
/// the `v1` scheme of WRIFTAI.md, over the exact bytes that go on the wire.
pub fn v1(secret: &str, timestamp: u64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps it total.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The header value. With `noise`, an unknown-scheme `v2=` entry is appended, which a
/// correct receiver ignores.
pub fn header(secret: &str, timestamp: u64, body: &[u8], noise: Option<&mut SplitMix64>) -> String {
    let mut value = format!("t={timestamp},v1={}", v1(secret, timestamp, body));
    if let Some(rng) = noise {
        let random: Vec<u8> = (0..4).flat_map(|_| rng.next_u64().to_be_bytes()).collect();
        value.push_str(",v2=");
        value.push_str(&hex::encode(random));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_a_reference_hmac() {
        // Reference: python3 -c 'import hmac,hashlib;
        //   print(hmac.new(b"whsec", b"1700000000.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            v1("whsec", 1_700_000_000, b"{}"),
            "7d44587dddbaf4c7f70fef20f48cd594834ffea1641e3ac227b84408298738af"
        );
    }

    #[test]
    fn the_header_carries_the_timestamp_and_a_v1_entry() {
        let value = header("s", 42, b"body", None);
        assert_eq!(value, format!("t=42,v1={}", v1("s", 42, b"body")));
        assert_eq!(v1("s", 42, b"body").len(), 64);
    }

    #[test]
    fn extra_signatures_append_an_unknown_scheme_after_v1() {
        let mut rng = SplitMix64::new(1);
        let value = header("s", 42, b"body", Some(&mut rng));
        let parts: Vec<&str> = value.split(',').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[2].starts_with("v2=") && parts[2].len() == 3 + 64);
    }
}
