//! Artifact storage for Steward: validated artifact paths and object keys, and the
//! [`ObjectStore`] trait with two implementations, the local filesystem (embedded mode) and
//! S3-compatible buckets (distributed mode).
//!
//! Paths are parsed once, at the API boundary, into an [`ArtifactPath`]; stores only accept
//! [`ObjectKey`]s built from validated parts, so nothing is ever read or written outside the
//! store's root directory or bucket prefix.
//!
//! ```no_run
//! # async fn demo() -> steward_common::Result<()> {
//! use steward_artifacts::{ArtifactPath, ObjectKey, ObjectStoreConfig};
//!
//! let store = steward_artifacts::open(&ObjectStoreConfig::Local { root: "data".into() }).await?;
//! let path = ArtifactPath::parse("model/model.onnx", "path")?;
//! let key = ObjectKey::for_run_artifact(
//!     "0190a1b2c3d4e5f60718293a4b5c6d7e",
//!     "0190a1b2c3d4e5f60718293a4b5c6d7f",
//!     &path,
//! )?;
//! let data = futures::stream::iter([Ok(bytes::Bytes::from_static(b"onnx"))]);
//! let meta = store.put(&key, Box::pin(data)).await?;
//! assert_eq!(meta.size, 4);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod config;
mod key;
mod local;
mod path;
mod s3;
mod store;
mod stream;

pub use config::{ObjectStoreConfig, S3Config, open};
pub use key::ObjectKey;
pub use path::{ArtifactPath, ArtifactPrefix, MAX_PATH_BYTES, MAX_SEGMENT_BYTES};
pub use s3::PART_SIZE as S3_PART_SIZE;
pub use store::{
    ARTIFACT_NOT_FOUND, ByteStream, OBJECT_STORE_UNAVAILABLE, ObjectMeta, ObjectStore,
    READ_CHUNK_SIZE,
};
