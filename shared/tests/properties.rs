//! Property tests of the three parsers a hostile sender reaches first: the payload
//! parser (with the whole request check), the signature header, and the status order.
//! Each property runs a few hundred generated cases per `cargo test`.

use proptest::prelude::*;
use serde_json::{Value, json};
use wriftai_hooks::internals::prediction::{Prediction, PredictionId, Status};
use wriftai_hooks::internals::signature::{DEFAULT_TOLERANCE, Header, SignatureError, Verifier, sign};
use wriftai_hooks::internals::webhook::{self, Checks, Request};

const NOW: i64 = 1_790_000_000;

/// Any JSON value, nested a few levels; no floats, which JSON does not round-trip exactly.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        prop::sample::select(Status::KNOWN.to_vec()),
        "[a-z0-9_-]{1,32}".prop_map(|s| Status::parse(&s).expect("a valid status string")),
    ]
}

/// A valid webhook body: a prediction object with any mix of the optional fields.
fn prediction() -> impl Strategy<Value = Value> {
    (any::<u128>(), status(), json_value(), json_value(), any::<Option<bool>>(), any::<bool>()).prop_map(
        |(id, status, input, output, stream, failed)| {
            let id = uuid::Uuid::from_u128(id).hyphenated().to_string();
            let error = failed.then(|| json!({"source": "internal", "message": "boom", "detail": null}));
            json!({
                "id": id, "status": status.as_str(), "input": input, "output": output, "stream": stream,
                "error": error, "model": {"owner": "acme", "name": "echo", "version_number": 1},
                "created_at": "2026-11-26T10:00:00Z", "brand_new_field": [1, 2],
            })
        },
    )
}

fn request<'a>(content_type: Option<&'a [u8]>, signature: Option<&'a [u8]>, body: Vec<u8>) -> Request<'a> {
    Request { method: "POST", path: "/", content_type, signature, body }
}

fn checks() -> Checks {
    Checks { verifier: Verifier::new(["whsec_prop"], DEFAULT_TOLERANCE), ..Checks::default() }
}

proptest! {
    #[test]
    fn the_payload_parser_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Prediction::from_json(&body);
    }

    #[test]
    fn the_payload_parser_never_panics_on_arbitrary_json(value in json_value()) {
        let _ = Prediction::from_json(value.to_string().as_bytes());
    }

    #[test]
    fn a_valid_prediction_round_trips_through_the_parser(value in prediction()) {
        let parsed = Prediction::from_json(value.to_string().as_bytes()).expect("a valid prediction parses");
        prop_assert_eq!(parsed.id.to_string(), value["id"].as_str().unwrap_or_default());
        prop_assert_eq!(parsed.status.as_str(), value["status"].as_str().unwrap_or_default());
        prop_assert_eq!(&parsed.input, &value["input"]);
        prop_assert_eq!(&parsed.output, &value["output"]);
        let again = Prediction::from_json(&serde_json::to_vec(&parsed).expect("serialises")).expect("parses again");
        prop_assert_eq!(again, parsed);
    }

    #[test]
    fn the_request_check_never_panics_and_refuses_only_with_a_4xx(
        content_type in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        signature in prop::option::of(prop::collection::vec(any::<u8>(), 0..120)),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let refused = webhook::check(request(content_type.as_deref(), signature.as_deref(), body), &checks(), NOW);
        if let Err(rejection) = refused {
            prop_assert!((400..500).contains(&rejection.status()));
        }
    }

    #[test]
    fn a_signed_valid_prediction_passes_the_whole_check(value in prediction(), t in (NOW - 299)..(NOW + 299)) {
        let body = value.to_string();
        let header = sign("whsec_prop", t, body.as_bytes());
        let delivery = webhook::check(request(Some(b"application/json"), Some(header.as_bytes()), body.clone().into_bytes()), &checks(), NOW);
        prop_assert_eq!(delivery.map(|d| d.raw), Ok(body));
    }

    #[test]
    fn the_signature_header_parser_never_panics_on_arbitrary_bytes(header in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Header::parse(&header);
    }

    #[test]
    fn the_signature_header_parser_never_panics_on_header_like_text(header in "(t|v1|v2|x)=[0-9a-f,=]{0,80}(,(t|v1|v2)=[0-9a-fA-F]{0,70}){0,4}") {
        let _ = Header::parse(header.as_bytes());
    }

    #[test]
    fn a_header_made_by_sign_always_verifies(
        secret in "[ -~]{1,40}",
        t in 0i64..100_000_000_000,
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let verifier = Verifier::new([&secret], DEFAULT_TOLERANCE).expect("a non-empty secret");
        let header = sign(&secret, t, &body);
        prop_assert_eq!(Header::parse(header.as_bytes()).map(|h| h.timestamp), Ok(t));
        prop_assert_eq!(verifier.verify(Some(header.as_bytes()), &body, t), Ok(()));
    }

    #[test]
    fn any_single_byte_change_to_the_body_fails_verification(
        body in prop::collection::vec(any::<u8>(), 1..300),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let verifier = Verifier::new(["whsec_prop"], DEFAULT_TOLERANCE).expect("a secret");
        let header = sign("whsec_prop", NOW, &body);
        let mut changed = body.clone();
        changed[at.index(body.len())] ^= flip;
        prop_assert_eq!(verifier.verify(Some(header.as_bytes()), &changed, NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_single_byte_change_to_the_signature_header_fails_verification(
        body in prop::collection::vec(any::<u8>(), 0..100),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let verifier = Verifier::new(["whsec_prop"], DEFAULT_TOLERANCE).expect("a secret");
        let mut header = sign("whsec_prop", NOW, &body).into_bytes();
        let i = at.index(header.len());
        header[i] ^= flip;
        prop_assert!(verifier.verify(Some(&header), &body, NOW).is_err(), "byte {} changed: {:?}", i, String::from_utf8_lossy(&header));
    }

    #[test]
    fn rank_is_a_total_order_in_which_the_first_terminal_status_absorbs_the_rest(
        seq in prop::collection::vec(prop::sample::select(Status::KNOWN.to_vec()), 1..12),
    ) {
        // The receiver's rule: the recorded status moves only to a higher rank.
        let mut current: Option<Status> = None;
        for next in &seq {
            let ahead = current.as_ref().is_none_or(|c| next.rank() > c.rank());
            if current.as_ref().is_some_and(Status::is_terminal) {
                prop_assert!(!ahead, "nothing moves a terminal status");
            }
            if ahead {
                current = Some(next.clone());
            }
        }
        let current = current.expect("at least one status");
        prop_assert_eq!(current.rank(), seq.iter().filter_map(Status::rank).max());
        if let Some(first_terminal) = seq.iter().find(|s| s.is_terminal()) {
            prop_assert_eq!(&current, first_terminal);
        }
        for a in &Status::KNOWN {
            for b in &Status::KNOWN {
                let (ra, rb) = (a.rank().expect("known"), b.rank().expect("known"));
                prop_assert_eq!([ra < rb, ra == rb, ra > rb].iter().filter(|x| **x).count(), 1);
                prop_assert_eq!(ra == rb && a.is_terminal(), a.is_terminal() && b.is_terminal());
            }
        }
    }

    #[test]
    fn an_unknown_status_never_ranks_and_never_is_terminal(raw in ".{0,40}") {
        if let Ok(status) = Status::parse(&raw) {
            prop_assert_eq!(status.as_str(), raw.as_str());
            let known = Status::KNOWN.iter().any(|k| k.as_str() == raw);
            prop_assert_eq!(status.rank().is_some(), known);
            prop_assert_eq!(status.is_terminal(), known && status.rank() == Some(3));
        }
    }

    #[test]
    fn prediction_ids_parse_only_hyphenated_uuids_and_print_canonically(raw in "[0-9a-fA-F-]{30,40}") {
        if let Ok(id) = PredictionId::parse(&raw) {
            prop_assert_eq!(id.to_string(), raw.to_lowercase());
        }
    }
}
