//! Single and multipart uploads.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream as Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use steward_common::{Error, ErrorKind, Result};

use super::{PART_SIZE, errors, traced};
use crate::stream::HashingReader;

/// S3 accepts at most this many parts in one multipart upload.
const MAX_PARTS: usize = 10_000;

/// Uploads `data` with one PutObject.
pub(super) async fn put_single(
    client: &Client,
    bucket: &str,
    object: &str,
    data: Bytes,
) -> Result<()> {
    let len = i64::try_from(data.len()).map_err(Error::internal)?;
    let call = client
        .put_object()
        .bucket(bucket)
        .key(object)
        .content_length(len)
        .body(Body::from(data))
        .send();
    traced("PutObject", bucket, object, call)
        .await
        .map_err(|e| errors::sdk_error("PutObject", object, e))?;
    Ok(())
}

/// A multipart upload in progress. Dropping it before it completes aborts it in the
/// background, so that an upload whose caller went away leaves no parts behind.
pub(super) struct Multipart {
    client: Client,
    bucket: String,
    object: String,
    /// `None` once completed or aborted.
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
}

impl Multipart {
    /// Starts a multipart upload of `object`.
    pub(super) async fn start(client: &Client, bucket: &str, object: &str) -> Result<Self> {
        let call = client
            .create_multipart_upload()
            .bucket(bucket)
            .key(object)
            .send();
        let created = traced("CreateMultipartUpload", bucket, object, call)
            .await
            .map_err(|e| errors::sdk_error("CreateMultipartUpload", object, e))?;
        let upload_id = created.upload_id().ok_or_else(|| {
            Error::internal(format!(
                "CreateMultipartUpload {object} returned no upload id"
            ))
        })?;
        Ok(Self {
            client: client.clone(),
            bucket: bucket.to_owned(),
            object: object.to_owned(),
            upload_id: Some(upload_id.to_owned()),
            parts: Vec::new(),
        })
    }

    /// Uploads what is in `buf`, then the rest of `reader`, one part at a time, and completes
    /// the upload; on any error (including one from `reader`) aborts it and returns the error.
    /// `eof` says whether `reader` already ended.
    pub(super) async fn run(
        mut self,
        reader: &mut HashingReader,
        buf: BytesMut,
        eof: bool,
    ) -> Result<()> {
        let result = self.upload_all(reader, buf, eof).await;
        match result {
            Ok(()) => self.complete().await,
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn upload_all(
        &mut self,
        reader: &mut HashingReader,
        mut buf: BytesMut,
        mut eof: bool,
    ) -> Result<()> {
        loop {
            while buf.len() >= PART_SIZE {
                self.upload_part(buf.split_to(PART_SIZE).freeze()).await?;
            }
            if eof {
                if !buf.is_empty() || self.parts.is_empty() {
                    self.upload_part(buf.split().freeze()).await?;
                }
                return Ok(());
            }
            eof = reader.fill(&mut buf, PART_SIZE).await?;
        }
    }

    async fn upload_part(&mut self, data: Bytes) -> Result<()> {
        if self.parts.len() == MAX_PARTS {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                "ARTIFACT_TOO_LARGE",
                format!(
                    "artifacts larger than {} MiB cannot be stored in S3",
                    MAX_PARTS * PART_SIZE / (1024 * 1024)
                ),
            ));
        }
        let number = i32::try_from(self.parts.len() + 1).map_err(Error::internal)?;
        let len = i64::try_from(data.len()).map_err(Error::internal)?;
        let call = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.object)
            .upload_id(self.upload_id.as_deref().unwrap_or_default())
            .part_number(number)
            .content_length(len)
            .body(Body::from(data))
            .send();
        let uploaded = traced("UploadPart", &self.bucket, &self.object, call)
            .await
            .map_err(|e| errors::sdk_error("UploadPart", &self.object, e))?;
        let e_tag = uploaded.e_tag().ok_or_else(|| {
            Error::internal(format!(
                "UploadPart {} part {number} returned no ETag",
                self.object
            ))
        })?;
        self.parts.push(
            CompletedPart::builder()
                .e_tag(e_tag)
                .part_number(number)
                .build(),
        );
        Ok(())
    }

    async fn complete(mut self) -> Result<()> {
        let parts =
            CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts)));
        let call = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.object)
            .upload_id(self.upload_id.as_deref().unwrap_or_default())
            .multipart_upload(parts.build())
            .send();
        let result = traced("CompleteMultipartUpload", &self.bucket, &self.object, call).await;
        match result {
            Ok(_) => {
                self.upload_id = None;
                Ok(())
            }
            Err(e) => {
                let err = errors::sdk_error("CompleteMultipartUpload", &self.object, e);
                self.abort().await;
                Err(err)
            }
        }
    }

    async fn abort(&mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            abort(
                self.client.clone(),
                self.bucket.clone(),
                self.object.clone(),
                upload_id,
            )
            .await;
        }
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let (client, bucket, object) = (
            self.client.clone(),
            self.bucket.clone(),
            self.object.clone(),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(abort(client, bucket, object, upload_id));
            }
            Err(_) => tracing::warn!(
                object,
                "multipart upload dropped outside a runtime; it was not aborted (a bucket \
                 lifecycle rule for incomplete multipart uploads will clean it up)"
            ),
        }
    }
}

/// Aborts a multipart upload, logging (not returning) a failure: the caller is already
/// reporting the error that caused the abort.
async fn abort(client: Client, bucket: String, object: String, upload_id: String) {
    let result = client
        .abort_multipart_upload()
        .bucket(&bucket)
        .key(&object)
        .upload_id(&upload_id)
        .send()
        .await;
    if let Err(e) = result {
        tracing::warn!(
            object,
            error = %aws_sdk_s3::error::DisplayErrorContext(&e),
            "could not abort a multipart upload; a bucket lifecycle rule for incomplete \
             multipart uploads will clean it up"
        );
    }
}
