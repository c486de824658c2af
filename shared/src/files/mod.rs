//! The files a succeeded prediction's output points at: where they are in the output
//! ([`urls`]), the object key each is copied to ([`key`]), and what became of each
//! ([`File`]). The copying itself is `bucket.rs`.
//!
//! A key comes from the prediction and the URL's place in the output, one to one:
//! `predictions/<id>/output`, then each step of the place as a key segment
//! (`wriftai_hooks::records::key_segment`), then the URL's file extension: `{"images": [url]}`
//! gives `predictions/<id>/output/images/0.png`. Two places never share a key, and a run
//! done again writes the same keys.

mod bucket;
#[allow(missing_docs)] // internals: see `crate::internals`
pub(crate) mod fetch;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use bucket::{CopyError, FINISH_MARGIN, Files};

use crate::prediction::PredictionId;
use crate::records::key_segment;

/// A place longer than this is keyed by its pointer's SHA-256 instead, as `~p<hex>`:
/// S3 keys stop at 1,024 bytes. (A name over 200 bytes is `~h<hex>`, its own digest: the
/// two never meet, though a name may spell a place's pointer.)
const KEY_BYTES: usize = 900;

/// The most a URL, or a reason, keeps of itself in the result.
const URL_KEPT: usize = 200;
const REASON_KEPT: usize = 500;

/// How much of an output is copied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileLimits {
    /// The most one file may hold (`DOWNLOAD_MAX_BYTES`).
    pub per_file: u64,
    /// The most all of one prediction's files may hold together (`OUTPUT_MAX_BYTES`).
    pub per_prediction: u64,
    /// The most files copied from one output (`OUTPUT_MAX_FILES`); the rest are counted.
    pub files: usize,
}

/// What became of one URL of an output ([`examples::copy_files`](crate::examples::copy_files)).
/// Each variant's fields are what the result record shows; `pointer` is the URL's place
/// in `output`, as a JSON Pointer (`/images/0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
#[allow(missing_docs)] // the fields are named for what they hold
pub enum File {
    /// Copied: its object `key` in the bucket, and what arrived.
    Kept { pointer: String, key: String, bytes: u64, content_type: String, sha256: String },
    /// Not kept, for good, and never tried again: the URL checks refused it, the origin
    /// refused it (a 4xx) or could not be reached, or it is too large.
    Refused { pointer: String, url: String, refused: String },
    /// Tried `tries` times, each failing in a way a later try might not (a 5xx, a cut,
    /// a timeout), and given up on: the last failure.
    Failed { pointer: String, url: String, failed: String, tries: u32 },
    /// The URLs past `OUTPUT_MAX_FILES`, counted and never looked at.
    PastLimit { past_limit: usize, refused: String },
}

impl File {
    pub(crate) fn refused(found: &Found<'_>, why: impl ToString) -> Self {
        Self::Refused {
            pointer: found.pointer.clone(),
            url: cut(found.url, URL_KEPT),
            refused: cut(&why.to_string(), REASON_KEPT),
        }
    }

    pub(crate) fn failed(found: &Found<'_>, tries: u32, why: &(dyn std::error::Error + 'static)) -> Self {
        let failed = cut(&crate::error::chain(why), REASON_KEPT);
        Self::Failed { pointer: found.pointer.clone(), url: cut(found.url, URL_KEPT), failed, tries }
    }

    pub(crate) fn past_limit(count: usize, limit: usize) -> Self {
        Self::PastLimit {
            past_limit: count,
            refused: format!("more than {limit} files in one output (OUTPUT_MAX_FILES)"),
        }
    }

    /// The bytes copied: 0 unless it was kept.
    pub fn bytes(&self) -> u64 {
        match self {
            Self::Kept { bytes, .. } => *bytes,
            Self::Refused { .. } | Self::Failed { .. } | Self::PastLimit { .. } => 0,
        }
    }
}

/// `text` cut to at most `chars` characters.
fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// A URL in an output, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    /// Its place in `output`, as a JSON Pointer (RFC 6901): `""` for the whole output,
    /// `/images/0` for the first of `images`.
    pub pointer: String,
    /// The same place, as key segments.
    path: Vec<String>,
    /// The URL.
    pub url: &'a str,
}

/// The URLs of an output, up to a limit.
#[derive(Debug, Default)]
pub struct Urls<'a> {
    /// The first ones, in the output's order.
    pub found: Vec<Found<'a>>,
    /// How many more there are: counted, not kept.
    pub past_limit: usize,
}

/// Every URL in `output`: each string that starts with `https://` or `http://`, however
/// deep in arrays and objects. The first `at_most` are kept and the rest only counted, so
/// an output of a million short URLs costs a count, not a million places.
pub fn urls(output: &Value, at_most: usize) -> Urls<'_> {
    fn walk<'a>(value: &'a Value, pointer: &mut String, path: &mut Vec<String>, urls: &mut Urls<'a>, at_most: usize) {
        match value {
            Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => {
                if urls.found.len() < at_most {
                    urls.found.push(Found { pointer: pointer.clone(), path: path.clone(), url: s });
                } else {
                    urls.past_limit += 1;
                }
            }
            Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    let (at, segment) = (pointer.len(), n.to_string());
                    pointer.push('/');
                    pointer.push_str(&segment);
                    path.push(segment);
                    walk(item, pointer, path, urls, at_most);
                    path.pop();
                    pointer.truncate(at);
                }
            }
            Value::Object(fields) => {
                for (name, item) in fields {
                    let at = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                    path.push(key_segment(name));
                    walk(item, pointer, path, urls, at_most);
                    path.pop();
                    pointer.truncate(at);
                }
            }
            _ => {}
        }
    }
    let mut urls = Urls::default();
    walk(output, &mut String::new(), &mut Vec::new(), &mut urls, at_most);
    urls
}

/// The object key of a found URL's copy: `predictions/<id>/output`, its place as key
/// segments, and the URL's file extension when it has one (`.png`), so downloads keep
/// their type.
pub fn key(id: PredictionId, found: &Found<'_>) -> String {
    let path = found.url.split(['?', '#']).next().unwrap_or_default();
    let file = path.rsplit('/').next().unwrap_or_default();
    let extension = file
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| (1..=8).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|ext| format!(".{}", ext.to_ascii_lowercase()))
        .unwrap_or_default();
    let mut place = String::new();
    for segment in &found.path {
        place.push('/');
        place.push_str(segment);
    }
    if place.len() > KEY_BYTES {
        // `~p`, not the `~h` of a long name's digest: a name can spell a place's pointer.
        place = format!("/~p{}", hex::encode(Sha256::digest(found.pointer.as_bytes())));
    }
    format!("predictions/{id}/output{place}{extension}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn keys(id: PredictionId, output: &Value) -> Vec<String> {
        urls(output, usize::MAX).found.iter().map(|found| key(id, found)).collect()
    }

    #[test]
    fn every_url_in_an_output_is_found_with_its_place_as_a_json_pointer() {
        let output = json!({
            "images": ["https://x/a.png", "not a url", {"mask": "http://x/m"}],
            "caption": "hello", "n": 3, "weird key/~": "https://x/w",
        });
        let found: Vec<(String, &str)> = urls(&output, 10).found.into_iter().map(|f| (f.pointer, f.url)).collect();
        let expected =
            [("/images/0", "https://x/a.png"), ("/images/2/mask", "http://x/m"), ("/weird key~1~0", "https://x/w")];
        assert_eq!(found, expected.map(|(pointer, url)| (pointer.to_owned(), url)));
        assert_eq!(urls(&json!("https://x/file"), 10).found[0].pointer, "");
        assert!(urls(&json!("plain text"), 10).found.is_empty());
    }

    #[test]
    fn past_the_limit_urls_are_counted_not_kept() {
        let output = json!({"a": vec!["https://x/f"; 50_000], "b": {"c": "https://x/g"}});
        let urls = urls(&output, 100);
        assert_eq!((urls.found.len(), urls.past_limit), (100, 49_901));
        assert_eq!(urls.found[99].pointer, "/a/99");
    }

    #[test]
    fn a_key_is_the_prediction_and_place_with_the_files_extension() {
        let id = PredictionId::random();
        let key_of = |output: Value| keys(id, &output).remove(0);
        assert_eq!(key_of(json!(["https://x/out/a.PNG?sig=1"])), format!("predictions/{id}/output/0.png"));
        assert_eq!(key_of(json!("https://x/files/abc")), format!("predictions/{id}/output"));
        assert_eq!(key_of(json!("https://x/v1.2/file")), format!("predictions/{id}/output"));
        assert_eq!(key_of(json!({"images": ["https://x/a.tar.gz"]})), format!("predictions/{id}/output/images/0.gz"));
    }

    #[test]
    fn places_that_used_to_share_a_key_each_get_their_own() {
        let id = PredictionId::random();
        for output in [
            json!({"a b": "https://x/u1", "a_b": "https://x/u2"}),
            json!({"图": "https://x/u1", "像": "https://x/u2"}),
            json!({"a": "https://x/f.png", "a.png": "https://x/g"}),
            json!({"a/b": "https://x/u1", "a": {"b": "https://x/u2"}}),
            json!({"": "https://x/u1", "~": "https://x/u2", "~7E": "https://x/u3"}),
        ] {
            let keys = keys(id, &output);
            assert!(keys.len() >= 2 && keys.iter().collect::<HashSet<_>>().len() == keys.len(), "{output}: {keys:?}");
        }
    }

    #[test]
    fn a_place_too_deep_for_a_key_is_keyed_by_its_digest() {
        let id = PredictionId::random();
        let mut output = json!("https://x/deep.png");
        for _ in 0..400 {
            output = json!({"deeper": output});
        }
        let key = keys(id, &output).remove(0);
        assert!(key.len() < 1024 && key.contains("/output/~p") && key.ends_with(".png"), "{key}");
    }

    #[test]
    fn a_deep_place_and_a_name_that_spells_its_pointer_get_keys_of_their_own() {
        let id = PredictionId::random();
        // Five 200-byte names: a place of 1,005 bytes, digested; and the name "/A/B/C/D/E"
        // of 1,005 bytes at the top, digested too.
        let names: Vec<String> = ('A'..='E').map(|c| c.to_string().repeat(200)).collect();
        let mut output = json!("https://x/nested.png");
        for name in names.iter().rev() {
            output = json!({ name.clone(): output });
        }
        let spelled: String = names.iter().map(|n| format!("/{n}")).collect();
        output[spelled] = json!("https://x/spelled.png");
        let keys = keys(id, &output);
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1], "{keys:?}");
    }

    /// Any JSON value, with URLs among its strings and object names of every kind.
    fn outputs() -> impl Strategy<Value = Value> {
        let name = prop_oneof!["[a-z_ .~/-]{0,4}", "\\PC{0,3}", Just(String::new())];
        let leaf = prop_oneof![
            "https://x/[a-z.]{0,6}".prop_map(Value::String),
            "http://x/[a-zA-Z0-9.?#=]{0,8}".prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            "[a-z ]{0,5}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(name.clone(), inner, 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    /// An output built from places: paths of names, long ones (up to the 200 bytes a
    /// name keeps as itself, and past it) and deep ones (past the 900 bytes a place
    /// keeps), each holding a URL; and beside them, names that spell another place's
    /// JSON Pointer, so a digest of a name can meet a digest of a place.
    fn deep_outputs() -> impl Strategy<Value = Value> {
        let name = prop_oneof!["[ab]{1,3}", "[ab]{190,200}", "[ab/~]{190,200}", "[ab]{201,230}"];
        let path = prop::collection::vec(name, 1..8);
        (prop::collection::vec(path, 1..5), any::<bool>()).prop_map(|(paths, spell)| {
            let mut output = serde_json::Map::new();
            for (n, path) in paths.iter().enumerate() {
                insert(&mut output, path, json!(format!("https://x/{n}.png")));
                if spell {
                    // The place's pointer, as one name at the top.
                    let pointer: String = path.iter().map(|s| format!("/{s}")).collect();
                    output.insert(pointer, json!(format!("https://x/spelled-{n}.png")));
                }
            }
            Value::Object(output)
        })
    }

    /// Puts `value` at `path` in `object`, making the objects on the way.
    fn insert(object: &mut serde_json::Map<String, Value>, path: &[String], value: Value) {
        let (last, on_the_way) = path.split_last().unwrap();
        let mut here = object;
        for name in on_the_way {
            let next = here.entry(name.clone()).or_insert_with(|| json!({}));
            if !next.is_object() {
                *next = json!({});
            }
            here = next.as_object_mut().unwrap();
        }
        here.insert(last.clone(), value);
    }

    proptest! {
        #[test]
        fn long_names_and_deep_places_never_share_a_key(output in deep_outputs()) {
            let id = PredictionId::random();
            let keys = keys(id, &output);
            let unique: HashSet<&String> = keys.iter().collect();
            prop_assert_eq!(unique.len(), keys.len(), "{:?}", keys);
            prop_assert!(keys.iter().all(|k| k.len() <= 1024));
        }

        #[test]
        fn every_url_of_any_output_gets_a_key_of_its_own_and_the_same_one_each_run(output in outputs()) {
            let id = PredictionId::random();
            let first = keys(id, &output);
            let unique: HashSet<&String> = first.iter().collect();
            prop_assert_eq!(unique.len(), first.len(), "{:?}", first);
            let prefix = format!("predictions/{}/output", id);
            prop_assert!(first.iter().all(|k| k.len() <= 1024 && k.starts_with(&prefix)));
            // Parsed again from its text, as a rerun reads the payload: the same keys.
            let again: Value = serde_json::from_str(&output.to_string()).unwrap();
            prop_assert_eq!(keys(id, &again), first);
        }
    }
}
