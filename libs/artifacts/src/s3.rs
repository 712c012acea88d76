//! Artifacts in an S3-compatible bucket, under an optional key prefix.
//!
//! Uploads up to [`PART_SIZE`] are one PutObject; larger ones are multipart uploads of
//! [`PART_SIZE`] parts, buffered one part at a time and aborted on any error (or when the
//! upload future is dropped), so a failed upload leaves nothing at the key.
//!
//! The SDK's automatic request and response checksums are set to "when required": they break
//! multipart uploads on several S3-compatible servers, and integrity is already covered by TLS
//! and the SHA-256 Steward computes while streaming.

mod client;
mod errors;
mod upload;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use bytes::BytesMut;
use futures::TryStreamExt;
use steward_common::{Error, ErrorKind, Result};

use crate::config::S3Config;
use crate::key::ObjectKey;
use crate::store::{
    ARTIFACT_NOT_FOUND, ByteStream, OBJECT_STORE_UNAVAILABLE, ObjectMeta, ObjectStore,
    READ_CHUNK_SIZE,
};
use crate::stream::{HashingReader, rechunk};

/// Uploads larger than this are multipart uploads with parts of this size.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// The longest object key S3 accepts, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// An [`ObjectStore`] on an S3-compatible bucket.
#[derive(Debug)]
pub(crate) struct S3ObjectStore {
    client: Client,
    bucket: String,
    /// Normalised prefix: empty, or segments without leading or trailing `/`.
    prefix: String,
}

impl S3ObjectStore {
    /// Validates the settings, builds the client and, if asked, creates the bucket.
    pub(crate) async fn open(cfg: &S3Config) -> Result<Self> {
        let settings = client::Settings::validate(cfg)?;
        let store = Self {
            client: client::build(cfg, settings.credentials).await,
            bucket: cfg.bucket.clone(),
            prefix: settings.prefix,
        };
        if cfg.create_bucket {
            client::ensure_bucket(&store.client, &cfg.bucket, &cfg.region).await?;
        }
        Ok(store)
    }

    /// The key inside the bucket: the prefix, then the object key.
    fn object_key(&self, key: &ObjectKey) -> Result<String> {
        let full = if self.prefix.is_empty() {
            key.as_str().to_owned()
        } else {
            format!("{}/{}", self.prefix, key.as_str())
        };
        if full.len() > MAX_KEY_BYTES {
            return Err(Error::limit(
                "path",
                format!(
                    "artifact path {} is too long for this store: its object key would be {} \
                     bytes and S3 allows {MAX_KEY_BYTES}",
                    key.artifact_path(),
                    full.len()
                ),
            ));
        }
        Ok(full)
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &ObjectKey, data: ByteStream) -> Result<ObjectMeta> {
        let object = self.object_key(key)?;
        let mut reader = HashingReader::new(data);
        let mut buf = BytesMut::new();
        let eof = reader.fill(&mut buf, PART_SIZE + 1).await?;
        if eof && buf.len() <= PART_SIZE {
            upload::put_single(&self.client, &self.bucket, &object, buf.freeze()).await?;
        } else {
            let upload = upload::Multipart::start(&self.client, &self.bucket, &object).await?;
            upload.run(&mut reader, buf, eof).await?;
        }
        let (size, sha256) = reader.finish();
        Ok(ObjectMeta {
            key: key.as_str().to_owned(),
            size,
            sha256,
        })
    }

    async fn get(&self, key: &ObjectKey) -> Result<(u64, ByteStream)> {
        let object = self.object_key(key)?;
        let call = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object)
            .send();
        let output = match traced("GetObject", &self.bucket, &object, call).await {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Err(Error::not_found(ARTIFACT_NOT_FOUND, key.artifact_path()));
            }
            Err(e) => return Err(errors::sdk_error("GetObject", &object, e)),
        };
        sized_body(output, object)
    }

    async fn get_external(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(u64, ByteStream)> {
        let object = key.to_string();
        let call = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send();
        let output = match traced("GetObject", bucket, key, call).await {
            Ok(output) => output,
            Err(e) => {
                let missing = e.as_service_error().is_some_and(|e| e.is_no_such_key())
                    || e.raw_response()
                        .is_some_and(|r| matches!(r.status().as_u16(), 400 | 403 | 404));
                if missing {
                    return Err(Error::not_found(
                        "EXTERNAL_OBJECT_NOT_FOUND",
                        format!(
                            "s3://{bucket}/{key}{}",
                            version_id
                                .map(|v| format!(" version {v}"))
                                .unwrap_or_default()
                        ),
                    ));
                }
                return Err(errors::sdk_error("GetObject", &object, e));
            }
        };
        sized_body(output, object)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let object = self.object_key(key)?;
        let call = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&object)
            .send();
        match traced("DeleteObject", &self.bucket, &object, call).await {
            Ok(_) => Ok(()),
            // Some S3-compatible servers answer 404 instead of 204 for a missing key.
            Err(e) if e.code() == Some("NoSuchKey") => Ok(()),
            Err(e) => Err(errors::sdk_error("DeleteObject", &object, e)),
        }
    }

    async fn presign_get(&self, key: &ObjectKey, expires_in: Duration) -> Result<Option<String>> {
        let object = self.object_key(key)?;
        let presigning = PresigningConfig::expires_in(expires_in).map_err(|e| {
            Error::invalid_field(
                "expires_in",
                format!("cannot presign for {expires_in:?}: {e}"),
            )
        })?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object)
            .presigned(presigning)
            .await
            .map_err(|e| errors::sdk_error("presign GetObject", &object, e))?;
        Ok(Some(request.uri().to_owned()))
    }

    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    async fn check(&self) -> Result<()> {
        let bucket = &self.bucket;
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let why = match errors::status(&e) {
                    Some(404) => format!("bucket {bucket} does not exist"),
                    Some(301) => format!("bucket {bucket} is in another region"),
                    Some(400) => format!("bucket {bucket} rejected the request (wrong region?)"),
                    Some(401 | 403) => {
                        format!("access to bucket {bucket} was denied; check the credentials")
                    }
                    _ => {
                        let err = errors::sdk_error("HeadBucket", bucket, e);
                        if err.kind == ErrorKind::Unavailable {
                            format!("the object store did not answer for bucket {bucket}")
                        } else {
                            format!("bucket {bucket} cannot be used; see the server log")
                        }
                    }
                };
                Err(Error::unavailable(
                    OBJECT_STORE_UNAVAILABLE,
                    format!("S3 check failed: {why}"),
                ))
            }
        }
    }
}

/// Awaits one S3 call and records it as a client span of the current span
/// ([`steward_telemetry::client_span`]).
pub(crate) async fn traced<T, E: std::fmt::Display>(
    operation: &'static str,
    bucket: &str,
    object: &str,
    call: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> std::result::Result<T, E> {
    use steward_telemetry::client_span::{Attribute, Call, CallTimer, Kind, record_in_current};
    let timer = CallTimer::start();
    let result = call.await;
    if steward_telemetry::client_span::enabled() {
        record_in_current(
            timer,
            Call {
                name: format!("S3 {operation}"),
                kind: Kind::Client,
                attributes: vec![
                    Attribute::new("rpc.system", "aws-api"),
                    Attribute::new("rpc.service", "S3"),
                    Attribute::new("rpc.method", operation),
                    Attribute::new("aws.s3.bucket", bucket.to_owned()),
                    Attribute::new("aws.s3.key", object.to_owned()),
                ],
                error: result.as_ref().err().map(ToString::to_string),
            },
        );
    }
    result
}

/// The size and byte stream of a GetObject answer for `object`; an interrupted download is
/// `UNAVAILABLE`.
fn sized_body(
    output: aws_sdk_s3::operation::get_object::GetObjectOutput,
    object: String,
) -> Result<(u64, ByteStream)> {
    let size = output
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            Error::internal(format!(
                "GetObject {object}: the response has no valid Content-Length"
            ))
        })?;
    let body = futures::stream::try_unfold(output.body, |mut body| async move {
        Ok(body.try_next().await?.map(|chunk| (chunk, body)))
    })
    .map_err(move |e: aws_sdk_s3::primitives::ByteStreamError| {
        tracing::warn!(object = %object, error = %e, "object store download failed");
        Error::unavailable(
            OBJECT_STORE_UNAVAILABLE,
            "the download from the object store was interrupted; retry later",
        )
    });
    Ok((size, rechunk(body, READ_CHUNK_SIZE)))
}
