//! Choosing and opening an object store.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use steward_common::Result;

use crate::local::LocalObjectStore;
use crate::s3::S3ObjectStore;
use crate::store::ObjectStore;

/// Which backend holds the artifacts.
#[derive(Debug, Clone)]
pub enum ObjectStoreConfig {
    /// Files under a local directory (embedded mode). Created if missing.
    Local {
        /// The root directory; relative paths are resolved against the working directory.
        root: PathBuf,
    },
    /// An S3-compatible bucket (AWS S3, MinIO, Ceph, R2, moto, ...).
    S3(S3Config),
}

/// Settings of an S3-compatible store. `Debug` redacts the credentials.
#[derive(Clone, Default)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket under which everything is stored (`a/b`; empty for none).
    /// Leading and trailing `/` are ignored; the rest follows the artifact path rules.
    pub prefix: String,
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// Custom endpoint URL for S3-compatible servers, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Address buckets as `endpoint/bucket` rather than `bucket.endpoint` (MinIO, Ceph, moto).
    pub path_style: bool,
    /// Static access key id; used only together with `secret_access_key`. When both are
    /// absent, the default AWS chain applies (`AWS_ACCESS_KEY_ID`, profiles, web identity, IMDS).
    pub access_key_id: Option<String>,
    /// Static secret access key.
    pub secret_access_key: Option<String>,
    /// Create the bucket at start-up if it does not exist (tests and the embedded quick start).
    pub create_bucket: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field("access_key_id", &redacted(&self.access_key_id))
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("create_bucket", &self.create_bucket)
            .finish()
    }
}

/// Opens the configured store. The local root is created if missing; an S3 bucket is created
/// only if `create_bucket` is set. Call [`ObjectStore::check`] to verify the backend works.
///
/// Invalid settings are `INVALID_ARGUMENT` naming the setting (e.g. `s3.bucket`).
pub async fn open(cfg: &ObjectStoreConfig) -> Result<Arc<dyn ObjectStore>> {
    Ok(match cfg {
        ObjectStoreConfig::Local { root } => Arc::new(LocalObjectStore::open(root).await?),
        ObjectStoreConfig::S3(s3) => Arc::new(S3ObjectStore::open(s3).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_credentials() {
        let cfg = S3Config {
            bucket: "b".into(),
            access_key_id: Some("AKIAEXAMPLEKEYID".into()),
            secret_access_key: Some("wJalrXUtnFEMI/K7MDENG".into()),
            ..S3Config::default()
        };
        let text = format!("{:?}", ObjectStoreConfig::S3(cfg));
        assert!(!text.contains("AKIAEXAMPLEKEYID"), "{text}");
        assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.contains("bucket: \"b\""), "{text}");
    }
}
