//! Keeps a prediction's output files in the stack's S3 bucket: WriftAI's output URLs
//! stop working a little after the prediction completes.
//!
//! Each file is streamed from its URL to its object, a part at a time: memory holds one
//! part ([`PART_BYTES`]) whatever the file's size. A file of one part is one
//! `PutObject`; a larger one a multipart upload, aborted if anything fails. Either way
//! the object appears whole or not at all. Keys come from the prediction ID and the
//! output's position, so a run done again overwrites what the first wrote.

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::error::BoxError;
use shared::prediction::PredictionId;

/// The size of each uploaded part, and so the memory a copy holds: S3 takes parts of
/// 5 MiB and more (the last one excepted), up to 10,000 of them (80 GB here).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// What was kept of one output: where, and what arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kept {
    /// The output's place in `output` (`output`, `output/0`, `output/image`).
    pub position: String,
    pub key: String,
    pub bytes: u64,
    pub content_type: String,
    pub sha256: String,
}

/// The bucket, and the HTTP client that downloads outputs.
#[derive(Clone, Debug)]
pub struct OutputBucket {
    s3: aws_sdk_s3::Client,
    bucket: String,
    http: reqwest::Client,
    /// The most a file may hold (`DOWNLOAD_MAX_BYTES`).
    limit: u64,
}

impl OutputBucket {
    /// `path_style`: address the bucket in the path (an S3 emulator on 127.0.0.1),
    /// not the host name.
    pub fn new(aws: &SdkConfig, bucket: String, path_style: bool, http: reqwest::Client, limit: u64) -> Self {
        let config = aws_sdk_s3::config::Builder::from(aws).force_path_style(path_style).build();
        Self { s3: aws_sdk_s3::Client::from_conf(config), bucket, http, limit }
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// Copies the file at `url` to `key`.
    pub async fn copy(&self, url: &str, key: &str, position: &str) -> Result<Kept, BoxError> {
        let too_large = || format!("{url} is larger than {} bytes", self.limit);
        let mut response = self.http.get(url).send().await?.error_for_status()?;
        if response.content_length().is_some_and(|len| len > self.limit) {
            return Err(too_large().into());
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let mut upload = Upload { to: self, key, content_type: &content_type, id: None, parts: Vec::new() };
        let (mut bytes, mut digest, mut part) = (0u64, Sha256::new(), BytesMut::with_capacity(PART_BYTES));
        let streamed: Result<(), BoxError> = async {
            while let Some(mut chunk) = response.chunk().await? {
                bytes += chunk.len() as u64;
                if bytes > self.limit {
                    return Err(too_large().into());
                }
                digest.update(&chunk);
                while !chunk.is_empty() {
                    let take = chunk.len().min(PART_BYTES - part.len());
                    part.extend_from_slice(&chunk.split_to(take));
                    if part.len() == PART_BYTES {
                        upload.part(part.split().freeze()).await?;
                        // The part is sent and dropped: this takes its memory back
                        // rather than holding a second part's.
                        part.reserve(PART_BYTES);
                    }
                }
            }
            upload.finish(part.freeze()).await
        }
        .await;
        if let Err(err) = streamed {
            upload.abort().await;
            return Err(err);
        }
        let sha256 = hex::encode(digest.finalize());
        Ok(Kept { position: position.into(), key: key.into(), bytes, content_type, sha256 })
    }

    /// Keeps `value` as one JSON object at `key`.
    pub async fn put_json(&self, key: &str, position: &str, value: &Value) -> Result<Kept, BoxError> {
        let body = Bytes::from(serde_json::to_vec(value)?);
        let kept = Kept {
            position: position.into(),
            key: key.into(),
            bytes: body.len() as u64,
            content_type: "application/json".into(),
            sha256: hex::encode(Sha256::digest(&body)),
        };
        let put = self.s3.put_object().bucket(&self.bucket).key(key).content_type(&kept.content_type);
        put.body(ByteStream::from(body)).send().await?;
        Ok(kept)
    }
}

/// One object being written: a single put, or a multipart upload once a second part
/// is needed.
struct Upload<'a> {
    to: &'a OutputBucket,
    key: &'a str,
    content_type: &'a str,
    /// The multipart upload, once started.
    id: Option<String>,
    parts: Vec<CompletedPart>,
}

impl Upload<'_> {
    /// Uploads a full part, starting the multipart upload on the first.
    async fn part(&mut self, body: Bytes) -> Result<(), BoxError> {
        let OutputBucket { s3, bucket, .. } = self.to;
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
        let OutputBucket { s3, bucket, .. } = self.to;
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
        let OutputBucket { s3, bucket, .. } = self.to;
        if let Some(id) = &self.id {
            let abort = s3.abort_multipart_upload().bucket(bucket).key(self.key).upload_id(id);
            if let Err(err) = abort.send().await {
                tracing::warn!(key = self.key, error = %shared::error::chain(&err), "could not abort an upload");
            }
        }
    }
}

/// Every URL in `output` with its position: `output` for a URL output, `output/0` for
/// the first of an array, `output/image` for an object's `image`, and so on down.
pub fn urls(output: &Value) -> Vec<(String, &str)> {
    fn walk<'a>(value: &'a Value, position: String, found: &mut Vec<(String, &'a str)>) {
        match value {
            Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => found.push((position, s)),
            Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    walk(item, format!("{position}/{n}"), found);
                }
            }
            Value::Object(fields) => {
                for (name, item) in fields {
                    walk(item, format!("{position}/{}", key_safe(name)), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(output, "output".into(), &mut found);
    found
}

/// The object key of the output at `position`: `predictions/<id>/<position>`, with the
/// URL's file extension when it has one (`.png`), so downloads keep their type.
pub fn key(id: PredictionId, position: &str, url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let file = path.rsplit('/').next().unwrap_or_default();
    let extension = file
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| (1..=8).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()));
    match extension {
        Some(ext) => format!("predictions/{id}/{position}.{}", ext.to_ascii_lowercase()),
        None => format!("predictions/{id}/{position}"),
    }
}

/// An object's field name as a key segment: what S3 keys hold well, the rest as `_`.
fn key_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_url_in_an_output_is_found_with_its_position() {
        let output = json!({
            "images": ["https://x/a.png", "not a url", {"mask": "http://x/m"}],
            "caption": "hello", "n": 3, "weird key/..": "https://x/w",
        });
        let found = urls(&output);
        let expected = [
            ("output/images/0", "https://x/a.png"),
            ("output/images/2/mask", "http://x/m"),
            ("output/weird_key_..", "https://x/w"),
        ];
        assert_eq!(found, expected.map(|(position, url)| (position.to_owned(), url)));
        assert_eq!(urls(&json!("https://x/file")), vec![("output".to_owned(), "https://x/file")]);
        assert!(urls(&json!("plain text")).is_empty());
    }

    #[test]
    fn a_key_is_the_prediction_and_position_with_the_files_extension() {
        let id = PredictionId::random();
        assert_eq!(key(id, "output/0", "https://x/out/a.PNG?sig=1"), format!("predictions/{id}/output/0.png"));
        assert_eq!(key(id, "output", "https://x/files/abc"), format!("predictions/{id}/output"));
        assert_eq!(key(id, "output", "https://x/v1.2/file"), format!("predictions/{id}/output"));
        assert_eq!(key(id, "output", "https://x/a.tar.gz"), format!("predictions/{id}/output.gz"));
    }
}
