//! The verifier against vectors made with the official WriftAI client
//! (`infra/tests/signature_vectors.py`): the same outcome for each, except where
//! WRIFTAI.md asks for more (any matching v1 passes, for key rotation).

use std::time::Duration;

use serde::Deserialize;
use wriftai_hooks::internals::signature::{SignatureError, Verifier};

#[derive(Deserialize)]
struct Vector {
    name: String,
    secret: String,
    now: i64,
    header: String,
    body: String,
    expect: String,
}

fn outcome(result: Result<(), SignatureError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(SignatureError::Missing) => "missing",
        Err(SignatureError::NoTimestamp) => "no_timestamp",
        Err(SignatureError::NoSignature) => "no_signature",
        Err(SignatureError::Stale) => "stale",
        Err(SignatureError::Mismatch) => "mismatch",
    }
}

#[test]
fn every_official_vector_gets_the_expected_outcome() {
    let vectors: Vec<Vector> = serde_json::from_str(include_str!("vectors/signatures.json")).unwrap();
    assert!(vectors.len() >= 15);
    for v in vectors {
        let verifier = Verifier::new([&v.secret], Duration::from_secs(300)).unwrap();
        let got = outcome(verifier.verify(Some(v.header.as_bytes()), v.body.as_bytes(), v.now));
        assert_eq!(got, v.expect, "vector {:?}", v.name);
    }
}
