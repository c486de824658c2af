//! The stack's bucket on S3: whole objects, and the multipart uploads a large output
//! file is streamed through.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use crate::error::{Error, Result};

/// One S3 bucket.
#[derive(Clone, Debug)]
pub struct S3Bucket {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Bucket {
    /// The bucket `bucket`. `path_style`: address it in the path (an S3 emulator on
    /// 127.0.0.1), not the host name.
    pub fn new(aws: &aws_config::SdkConfig, bucket: impl Into<String>, path_style: bool) -> Self {
        let config = aws_sdk_s3::config::Builder::from(aws).force_path_style(path_style).build();
        Self { s3: aws_sdk_s3::Client::from_conf(config), bucket: bucket.into() }
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    pub async fn put_typed(&self, key: &str, body: Bytes, content_type: &str) -> Result<()> {
        let put = self.s3.put_object().bucket(&self.bucket).key(key).content_type(content_type);
        put.body(ByteStream::from(body)).send().await.map(drop).map_err(|e| Error::bucket("PutObject", e))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let got = self.s3.get_object().bucket(&self.bucket).key(key).send().await;
        let object = match got {
            Ok(object) => object,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(err) => return Err(Error::bucket("GetObject", err)),
        };
        let body = object.body.collect().await.map_err(|e| Error::bucket("GetObject", e))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    pub async fn start_upload(&self, key: &str, content_type: &str) -> Result<String> {
        let start = self.s3.create_multipart_upload().bucket(&self.bucket).key(key).content_type(content_type);
        let started = start.send().await.map_err(|e| Error::bucket("CreateMultipartUpload", e))?;
        started.upload_id.ok_or_else(|| Error::bucket("CreateMultipartUpload", "S3 started an upload without an ID"))
    }

    pub async fn upload_part(&self, key: &str, upload: &str, number: i32, body: Bytes) -> Result<String> {
        let part = self.s3.upload_part().bucket(&self.bucket).key(key).upload_id(upload).part_number(number);
        let done = part.body(ByteStream::from(body)).send().await.map_err(|e| Error::bucket("UploadPart", e))?;
        done.e_tag.ok_or_else(|| Error::bucket("UploadPart", "S3 took a part without an ETag"))
    }

    pub async fn complete_upload(&self, key: &str, upload: &str, parts: Vec<String>) -> Result<()> {
        let parts = parts
            .into_iter()
            .zip(1..)
            .map(|(e_tag, number)| CompletedPart::builder().e_tag(e_tag).part_number(number).build());
        let parts = CompletedMultipartUpload::builder().set_parts(Some(parts.collect())).build();
        let complete = self.s3.complete_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload);
        complete.multipart_upload(parts).send().await.map(drop).map_err(|e| Error::bucket("CompleteMultipartUpload", e))
    }

    pub async fn abort_upload(&self, key: &str, upload: &str) -> Result<()> {
        let abort = self.s3.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload);
        abort.send().await.map(drop).map_err(|e| Error::bucket("AbortMultipartUpload", e))
    }
}
