//! The stack's bucket (`OUTPUT_BUCKET`): copies of the files a succeeded prediction's
//! output points at, made before WriftAI's URLs stop working, and the records too large
//! for an item (it is the worker's [`Bucket`]).
//!
//! A file is fetched only as `fetch.rs` allows, and streamed to its object a part at a
//! time: memory holds one part ([`PART_BYTES`]) whatever the file's size. A file of one
//! part is one `PutObject`; a larger one a multipart upload, aborted if anything fails.
//! Either way the object appears whole or not at all.
//!
//! Its key comes from the prediction and the URL's place in the output, one to one:
//! `predictions/<id>/output`, then each step of the place as a key segment
//! (`shared::records::key_segment`), then the URL's file extension: `{"images": [url]}`
//! gives `predictions/<id>/output/images/0.png`. Two places never share a key, and a run
//! done again writes the same keys.

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::error::{BoxError, Error};
use shared::ports::Bucket;
use shared::prediction::PredictionId;
use shared::records::key_segment;

use crate::fetch::{FetchError, Fetcher, UrlPolicy};

/// The size of each uploaded part, and so the memory a copy holds: S3 takes parts of
/// 5 MiB and more (the last one excepted), up to 10,000 of them (80 GB here).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// A place longer than this is keyed by its pointer's SHA-256 instead, as `~p<hex>`:
/// S3 keys stop at 1,024 bytes. (A name over 200 bytes is `~h<hex>`, its own digest: the
/// two never meet, though a name may spell a place's pointer.)
const KEY_BYTES: usize = 900;

/// The most a refused URL keeps of itself in the result.
const URL_KEPT: usize = 200;

/// How much of an output is copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLimits {
    /// The most one file may hold (`DOWNLOAD_MAX_BYTES`).
    pub per_file: u64,
    /// The most all of one prediction's files may hold together (`OUTPUT_MAX_BYTES`).
    pub per_prediction: u64,
    /// The most files copied from one output (`OUTPUT_MAX_FILES`); the rest are refused.
    pub files: usize,
}

/// What became of one URL of an output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum File {
    /// Copied: its object, and what arrived.
    Kept { pointer: String, key: String, bytes: u64, content_type: String, sha256: String },
    /// Never fetched, or not kept, for good: the reason.
    Refused { pointer: String, url: String, refused: String },
}

impl File {
    pub fn refused(found: &Found<'_>, why: impl ToString) -> Self {
        let url = found.url.chars().take(URL_KEPT).collect();
        Self::Refused { pointer: found.pointer.clone(), url, refused: why.to_string() }
    }

    pub fn bytes(&self) -> u64 {
        match self {
            Self::Kept { bytes, .. } => *bytes,
            Self::Refused { .. } => 0,
        }
    }
}

/// A URL in an output, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    /// Its place in `output`, as a JSON Pointer (RFC 6901): `""` for the whole output,
    /// `/images/0` for the first of `images`.
    pub pointer: String,
    /// The same place, as key segments.
    path: Vec<String>,
    pub url: &'a str,
}

/// Every URL in `output`: each string that starts with `https://` or `http://`, however
/// deep in arrays and objects.
pub fn urls(output: &Value) -> Vec<Found<'_>> {
    fn walk<'a>(value: &'a Value, pointer: String, path: &mut Vec<String>, found: &mut Vec<Found<'a>>) {
        match value {
            Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => {
                found.push(Found { pointer, path: path.clone(), url: s });
            }
            Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    path.push(n.to_string());
                    walk(item, format!("{pointer}/{n}"), path, found);
                    path.pop();
                }
            }
            Value::Object(fields) => {
                for (name, item) in fields {
                    path.push(key_segment(name));
                    walk(item, format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1")), path, found);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(output, String::new(), &mut Vec::new(), &mut found);
    found
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

/// The bucket, and the client that fetches output files under the URL policy.
#[derive(Clone, Debug)]
pub struct Files {
    s3: aws_sdk_s3::Client,
    bucket: String,
    fetch: Fetcher,
    pub limits: FileLimits,
}

impl Files {
    /// `path_style`: address the bucket in the path (an S3 emulator on 127.0.0.1), not
    /// the host name.
    pub fn new(
        aws: &SdkConfig,
        bucket: String,
        path_style: bool,
        policy: UrlPolicy,
        timeout: std::time::Duration,
        limits: FileLimits,
    ) -> reqwest::Result<Self> {
        let config = aws_sdk_s3::config::Builder::from(aws).force_path_style(path_style).build();
        Ok(Self { s3: aws_sdk_s3::Client::from_conf(config), bucket, fetch: Fetcher::new(policy, timeout)?, limits })
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// Copies the file `found` points at to its key, if the URL policy allows it and it
    /// holds at most `limit` bytes. A refused URL, or a file over `limit` (its upload
    /// aborted), is a [`File::Refused`]: for good, and never fetched again. Any other
    /// failure (the server, the connection, S3) is an error, and the copy can be tried
    /// again.
    pub async fn copy(&self, id: PredictionId, found: &Found<'_>, limit: u64) -> Result<File, BoxError> {
        let too_large = || format!("larger than {limit} bytes (DOWNLOAD_MAX_BYTES, OUTPUT_MAX_BYTES)");
        let mut response = match self.fetch.get(found.url).await {
            Ok(response) => response.error_for_status()?,
            Err(FetchError::Refused(refused)) => return Ok(File::refused(found, refused)),
            Err(FetchError::Failed(err)) => return Err(err.into()),
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Ok(File::refused(found, too_large()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let key = key(id, found);
        let mut upload = Upload { to: self, key: &key, content_type: &content_type, id: None, parts: Vec::new() };
        let (mut bytes, mut digest, mut part) = (0u64, Sha256::new(), BytesMut::with_capacity(PART_BYTES));
        // Why a stream stopped short: a file over its limit is refused, anything else
        // can be tried again.
        enum Stop {
            TooLarge,
            Failed(BoxError),
        }
        let streamed: Result<(), Stop> = async {
            while let Some(mut chunk) = response.chunk().await.map_err(|e| Stop::Failed(e.into()))? {
                bytes += chunk.len() as u64;
                if bytes > limit {
                    return Err(Stop::TooLarge);
                }
                digest.update(&chunk);
                while !chunk.is_empty() {
                    let take = chunk.len().min(PART_BYTES - part.len());
                    part.extend_from_slice(&chunk.split_to(take));
                    if part.len() == PART_BYTES {
                        upload.part(part.split().freeze()).await.map_err(Stop::Failed)?;
                        // The part is sent and dropped: this takes its memory back
                        // rather than holding a second part's.
                        part.reserve(PART_BYTES);
                    }
                }
            }
            upload.finish(part.freeze()).await.map_err(Stop::Failed)
        }
        .await;
        if let Err(stop) = streamed {
            upload.abort().await;
            return match stop {
                Stop::TooLarge => Ok(File::refused(found, too_large())),
                Stop::Failed(err) => Err(err),
            };
        }
        let sha256 = hex::encode(digest.finalize());
        Ok(File::Kept { pointer: found.pointer.clone(), key, bytes, content_type, sha256 })
    }
}

impl Bucket for Files {
    async fn put(&self, key: &str, body: Vec<u8>) -> shared::Result<()> {
        let put = self.s3.put_object().bucket(&self.bucket).key(key).content_type("application/json");
        put.body(ByteStream::from(body)).send().await.map(drop).map_err(|e| Error::bucket("PutObject", e))
    }

    async fn get(&self, key: &str) -> shared::Result<Option<Vec<u8>>> {
        let got = self.s3.get_object().bucket(&self.bucket).key(key).send().await;
        let object = match got {
            Ok(object) => object,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(err) => return Err(Error::bucket("GetObject", err)),
        };
        let body = object.body.collect().await.map_err(|e| Error::bucket("GetObject", e))?;
        Ok(Some(body.into_bytes().to_vec()))
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
    parts: Vec<CompletedPart>,
}

impl Upload<'_> {
    /// Uploads a full part, starting the multipart upload on the first.
    async fn part(&mut self, body: Bytes) -> Result<(), BoxError> {
        let Files { s3, bucket, .. } = self.to;
        let id = match &self.id {
            Some(id) => id.clone(),
            None => {
                let start = s3.create_multipart_upload().bucket(bucket).key(self.key).content_type(self.content_type);
                let id = start.send().await?.upload_id.ok_or("S3 started an upload without an ID")?;
                self.id.insert(id).clone()
            }
        };
        let number = i32::try_from(self.parts.len() + 1)?;
        let part = s3.upload_part().bucket(bucket).key(self.key).upload_id(id).part_number(number);
        let done = part.body(ByteStream::from(body)).send().await?;
        self.parts.push(CompletedPart::builder().set_e_tag(done.e_tag).part_number(number).build());
        Ok(())
    }

    /// Writes the rest: the whole file in one put, or the last part and the completion.
    async fn finish(&mut self, rest: Bytes) -> Result<(), BoxError> {
        let Files { s3, bucket, .. } = self.to;
        let Some(id) = self.id.clone() else {
            let put = s3.put_object().bucket(bucket).key(self.key).content_type(self.content_type);
            put.body(ByteStream::from(rest)).send().await?;
            return Ok(());
        };
        if !rest.is_empty() {
            self.part(rest).await?;
        }
        let parts = CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts))).build();
        let complete = s3.complete_multipart_upload().bucket(bucket).key(self.key).upload_id(id);
        complete.multipart_upload(parts).send().await?;
        self.id = None;
        Ok(())
    }

    /// Drops a started multipart upload, so no part of it lingers. Best effort: the
    /// bucket's lifecycle rule removes what an abort could not.
    async fn abort(&self) {
        let Files { s3, bucket, .. } = self.to;
        if let Some(id) = &self.id {
            let abort = s3.abort_multipart_upload().bucket(bucket).key(self.key).upload_id(id);
            if let Err(err) = abort.send().await {
                tracing::warn!(key = self.key, error = %shared::error::chain(&err), "could not abort an upload");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn keys(id: PredictionId, output: &Value) -> Vec<String> {
        urls(output).iter().map(|found| key(id, found)).collect()
    }

    #[test]
    fn every_url_in_an_output_is_found_with_its_place_as_a_json_pointer() {
        let output = json!({
            "images": ["https://x/a.png", "not a url", {"mask": "http://x/m"}],
            "caption": "hello", "n": 3, "weird key/~": "https://x/w",
        });
        let found: Vec<(String, &str)> = urls(&output).into_iter().map(|f| (f.pointer, f.url)).collect();
        let expected =
            [("/images/0", "https://x/a.png"), ("/images/2/mask", "http://x/m"), ("/weird key~1~0", "https://x/w")];
        assert_eq!(found, expected.map(|(pointer, url)| (pointer.to_owned(), url)));
        assert_eq!(urls(&json!("https://x/file"))[0].pointer, "");
        assert!(urls(&json!("plain text")).is_empty());
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
