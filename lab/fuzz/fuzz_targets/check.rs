//! Fuzz target: the receiver's request handling before anything is written (method,
//! path, content type, size, signature, parse, decide), `wriftai_hooks::internals::webhook::check` with a
//! verifier, on arbitrary requests. Half the inputs are signed correctly so the fuzzer
//! gets past the signature into the JSON parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wriftai_hooks::internals::prediction::Prediction;
use wriftai_hooks::internals::signature::{DEFAULT_TOLERANCE, Header, Verifier, sign};
use wriftai_hooks::internals::webhook::{Checks, Limits, Request, check};

const NOW: i64 = 1_790_000_000;
const SECRET: &str = "whsec_fuzz";
const METHODS: [&str; 4] = ["POST", "GET", "post", "PUT"];
const PATHS: [&str; 4] = ["/", "", "/admin", "//"];
const CONTENT_TYPES: [&[u8]; 4] = [b"application/json", b"Application/JSON; charset=utf-8", b"text/plain", b""];

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    // The control byte picks the request's shape; after it, `<signature>\0<body>`.
    let (raw_signature, body) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&[][..], rest),
    };
    let _ = Header::parse(raw_signature);
    let signed;
    let signature = match control >> 6 {
        0 | 1 => {
            signed = sign(SECRET, NOW - i64::from(control & 0x3f), body);
            Some(signed.as_bytes())
        }
        2 => Some(raw_signature),
        _ => None,
    };
    let common = control & 0x20 == 0;
    let request = Request {
        method: if common { "POST" } else { METHODS[usize::from(control & 3)] },
        path: if common { "/" } else { PATHS[usize::from((control >> 2) & 3)] },
        content_type: Some(if common { CONTENT_TYPES[0] } else { CONTENT_TYPES[usize::from((control >> 4) & 1) * 2] }),
        signature,
        body: body.to_vec(),
    };
    let checks = Checks {
        limits: Limits { max_body_bytes: 4096, path: "/".into() },
        verifier: Verifier::new([SECRET], DEFAULT_TOLERANCE),
    };
    match check(request, &checks, NOW) {
        Ok(delivery) => {
            // Accepted: the exact bytes are kept, and what was parsed parses again the
            // same (ID and status; floats need not round-trip bit for bit in serde_json).
            assert_eq!(delivery.raw.as_bytes(), body);
            let again = serde_json::to_vec(&delivery.prediction).expect("a parsed prediction serialises");
            let again = Prediction::from_json(&again).expect("and parses again");
            assert_eq!((again.id, again.status), (delivery.prediction.id, delivery.prediction.status));
        }
        Err(rejection) => assert!((400..500).contains(&rejection.status()), "{rejection:?}"),
    }
});
