//! The [`ObjectStore`] trait every artifact backend implements.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use steward_common::Result;

use crate::key::ObjectKey;

/// A stream of object bytes. Uploads read one; downloads return one.
///
/// An error item aborts an upload: nothing is stored at the key.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// Size of the chunks a download yields (the last one may be shorter).
pub const READ_CHUNK_SIZE: usize = 1024 * 1024;

/// Reason of the not-found error returned for a missing object.
pub const ARTIFACT_NOT_FOUND: &str = "ARTIFACT_NOT_FOUND";

/// Reason of the errors returned when the backend cannot be reached or refuses to work.
pub const OBJECT_STORE_UNAVAILABLE: &str = "OBJECT_STORE_UNAVAILABLE";

/// What a successful upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object key ([`ObjectKey::as_str`]), relative to the store's root or bucket prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// Where artifacts are stored: the local filesystem or an S3-compatible bucket.
///
/// Every implementation streams in constant memory, never reads or writes outside its root
/// (keys are validated [`ObjectKey`]s), and maps backend failures to
/// `UNAVAILABLE`/[`OBJECT_STORE_UNAVAILABLE`] (retry may help) or `INTERNAL` (logged, details
/// hidden from the caller). Error messages never contain credentials.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Stores `data` at `key`, replacing any object there, and returns its size and SHA-256
    /// (computed while streaming).
    ///
    /// Atomic: readers see the old object or the new one, never a part. If `data` yields an
    /// error, or the future is dropped, nothing new is stored (the old object, if any, stays)
    /// and the stream's error is returned as is. Once `put` returns `Ok`, the object is durable.
    async fn put(&self, key: &ObjectKey, data: ByteStream) -> Result<ObjectMeta>;

    /// Stores several already-hashed objects; all are durable when this returns `Ok`. On error
    /// some may be stored and others not (each one is still whole or absent). The local store
    /// writes them all and then syncs the filesystem once, instead of once per object.
    async fn put_known_many(&self, items: Vec<(ObjectKey, Bytes)>) -> Result<()> {
        futures::future::try_join_all(items.into_iter().map(|(key, data)| async move {
            self.put(&key, Box::pin(futures::stream::once(async { Ok(data) })))
                .await
        }))
        .await
        .map(|_| ())
    }

    /// Reads a whole (small) object into memory: its bytes, or `NOT_FOUND` as
    /// [`ObjectStore::get`].
    async fn get_bytes(&self, key: &ObjectKey) -> Result<Bytes> {
        use futures::StreamExt as _;
        let (size, mut body) = self.get(key).await?;
        let mut buf = bytes::BytesMut::with_capacity(size.min(64 << 20) as usize);
        while let Some(b) = body.next().await {
            buf.extend_from_slice(&b?);
        }
        Ok(buf.freeze())
    }

    /// Reads the object at `key`: its size and a stream of its bytes in chunks of about
    /// [`READ_CHUNK_SIZE`]. A missing object is `NOT_FOUND` / [`ARTIFACT_NOT_FOUND`] naming the
    /// artifact path.
    async fn get(&self, key: &ObjectKey) -> Result<(u64, ByteStream)>;

    /// Reads an object outside Steward's own root, with the same endpoint and credentials:
    /// `bucket`/`key`, at `version_id` if given. Used to verify external dataset references
    /// (their keys are not Steward keys and are only ever read). A missing object is
    /// `NOT_FOUND`. Stores without S3 answer `FAILED_PRECONDITION`.
    async fn get_external(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(u64, ByteStream)> {
        let _ = (key, version_id);
        Err(steward_common::Error::failed_precondition(
            "EXTERNAL_REFERENCES_NEED_S3",
            format!(
                "external references are read through the S3 artifact store; this server stores artifacts in {} and cannot read s3://{bucket}",
                self.describe()
            ),
        ))
    }

    /// Deletes the object at `key`. Deleting a missing object succeeds.
    async fn delete(&self, key: &ObjectKey) -> Result<()>;

    /// A URL from which anyone holding it can download the object with a plain HTTP GET during
    /// `expires_in` (at most 7 days), or `None` if the backend cannot presign (local files: the
    /// caller streams through [`ObjectStore::get`] instead). Does not check that the object
    /// exists.
    async fn presign_get(&self, key: &ObjectKey, expires_in: Duration) -> Result<Option<String>>;

    /// Where the objects live, for the `artifact_uri` shown to users: `file:///abs/root` or
    /// `s3://bucket/prefix`. Holds no credentials.
    fn describe(&self) -> String;

    /// Verifies that the backend is reachable and usable (S3: the bucket answers HeadBucket;
    /// local: the root directory is writable). Used at start-up.
    async fn check(&self) -> Result<()>;
}
