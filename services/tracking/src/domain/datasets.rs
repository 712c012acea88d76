//! Dataset versions: resource names, states and the rows the store keeps. No IO.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use steward_common::Error;

/// Longest dataset id.
pub const MAX_DATASET_ID: usize = 128;

/// A dataset id: 1-128 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.
pub fn parse_dataset_id(s: &str, field: &str) -> Result<String, Error> {
    let ok = !s.is_empty()
        && s.len() <= MAX_DATASET_ID
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::invalid_field(
            field,
            format!(
                "{s:?} is not a dataset id: 1-{MAX_DATASET_ID} characters of letters, digits, '.', '_' and '-', starting with a letter or digit"
            ),
        ))
    }
}

/// `datasets/{d}` -> the id.
pub fn parse_dataset_name(s: &str, field: &str) -> Result<String, Error> {
    match s.strip_prefix("datasets/") {
        Some(id) if !id.contains('/') => parse_dataset_id(id, field),
        _ => Err(Error::invalid_field(
            field,
            format!("{s:?} is not a dataset name; expected datasets/{{dataset}}"),
        )),
    }
}

/// Which version a name points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRef {
    /// A number.
    Number(i64),
    /// The newest committed version.
    Latest,
}

/// `datasets/{d}/versions/{v}` (v a number from 1, or `latest`) -> (dataset, version).
pub fn parse_version_name(s: &str, field: &str) -> Result<(String, VersionRef), Error> {
    let bad = || {
        Error::invalid_field(
            field,
            format!(
                "{s:?} is not a dataset version name; expected datasets/{{dataset}}/versions/{{number|latest}}"
            ),
        )
    };
    let rest = s.strip_prefix("datasets/").ok_or_else(bad)?;
    let (id, v) = rest.split_once("/versions/").ok_or_else(bad)?;
    let id = parse_dataset_id(id, field)?;
    let v = if v == "latest" {
        VersionRef::Latest
    } else {
        match v.parse::<i64>() {
            Ok(n) if n >= 1 && !v.starts_with('+') && !v.starts_with('0') => VersionRef::Number(n),
            _ => return Err(bad()),
        }
    };
    Ok((id, v))
}

/// `datasets/{d}/versions/{v}`.
pub fn version_name(dataset: &str, version: i64) -> String {
    format!("datasets/{dataset}/versions/{version}")
}

/// Lifecycle of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionState {
    /// Files are being uploaded.
    Pending,
    /// Immutable.
    Committed,
}

impl VersionState {
    /// Stored code.
    pub fn code(self) -> i16 {
        match self {
            VersionState::Pending => 1,
            VersionState::Committed => 2,
        }
    }

    /// From the stored code.
    pub fn from_code(c: i16) -> Option<Self> {
        match c {
            1 => Some(VersionState::Pending),
            2 => Some(VersionState::Committed),
            _ => None,
        }
    }
}

/// Kinds of external references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExternalKind {
    /// An S3 object version.
    S3ObjectVersion,
    /// A file in a DVC remote.
    Dvc,
    /// A file at a lakeFS commit.
    LakeFs,
    /// An Iceberg metadata file and snapshot.
    IcebergSnapshot,
}

/// An external reference, as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalRef {
    /// Kind.
    pub kind: ExternalKind,
    /// `s3://bucket/key`.
    pub uri: String,
    /// S3 version id.
    #[serde(default)]
    pub version_id: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// Hex MD5 (DVC).
    #[serde(default)]
    pub md5: String,
    /// Iceberg snapshot id.
    #[serde(default)]
    pub snapshot_id: i64,
    /// Size read.
    #[serde(default)]
    pub size_bytes: i64,
}

/// A dataset version row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetVersion {
    /// Dataset id.
    pub dataset: String,
    /// Number.
    pub version: i64,
    /// State.
    pub state: VersionState,
    /// `sha256:<hex>` once committed.
    pub digest: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Creator.
    pub creator: String,
    /// Created, ms.
    pub create_time: i64,
    /// Committed, ms.
    pub commit_time: Option<i64>,
    /// Files.
    pub file_count: i64,
    /// Sum of file sizes.
    pub size_bytes: i64,
    /// New content bytes its uploads stored.
    pub new_bytes: i64,
    /// Shared schema of the tabular files (JSON) or empty.
    pub schema_json: String,
    /// Encoded `DatasetProfile` or empty.
    #[serde(skip)]
    pub profile: Vec<u8>,
    /// External reference.
    pub external: Option<ExternalRef>,
}

impl DatasetVersion {
    /// `datasets/{d}/versions/{v}`.
    pub fn name(&self) -> String {
        version_name(&self.dataset, self.version)
    }
}

/// A file of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetFile {
    /// Path.
    pub path: String,
    /// Size.
    pub size_bytes: i64,
    /// Hex SHA-256; empty while uploading.
    pub sha256: String,
    /// Encoded chunk list ([`steward_cas::encode_chunks`]).
    #[serde(skip)]
    pub chunks: Vec<u8>,
    /// New bytes its upload stored.
    pub new_bytes: i64,
    /// Schema JSON or empty.
    pub schema_json: String,
    /// Encoded `DatasetProfile` or empty.
    #[serde(skip)]
    pub profile: Vec<u8>,
    /// Upload start, ms.
    pub create_time: i64,
}

impl DatasetFile {
    /// A file with no content recorded yet (an upload's reservation), created at `create_time`.
    pub fn empty(path: &str, create_time: i64) -> Self {
        DatasetFile {
            path: path.to_string(),
            size_bytes: 0,
            sha256: String::new(),
            chunks: Vec::new(),
            new_bytes: 0,
            schema_json: String::new(),
            profile: Vec::new(),
            create_time,
        }
    }

    /// Number of content chunks.
    pub fn chunk_count(&self) -> i64 {
        (self.chunks.len() / 40) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_dataset_name("datasets/fraud-v2.1_x", "f").unwrap(),
            "fraud-v2.1_x"
        );
        for bad in [
            "",
            "datasets/",
            "datasets/-a",
            "datasets/a/b",
            "datasets/..",
            "datasets/a b",
            "fraud",
            "datasets/é",
        ] {
            let e = parse_dataset_name(bad, "parent").unwrap_err();
            assert_eq!(e.violations[0].field, "parent", "{bad:?}");
        }
        assert!(parse_dataset_name(&format!("datasets/{}", "a".repeat(129)), "f").is_err());
        assert_eq!(
            parse_version_name("datasets/d/versions/12", "f").unwrap(),
            ("d".to_string(), VersionRef::Number(12))
        );
        assert_eq!(
            parse_version_name("datasets/d/versions/latest", "f")
                .unwrap()
                .1,
            VersionRef::Latest
        );
        for bad in [
            "datasets/d/versions/0",
            "datasets/d/versions/-1",
            "datasets/d/versions/01",
            "datasets/d/versions/+1",
            "datasets/d/versions/",
            "datasets/d",
            "datasets/d/versions/1/x",
            "datasets/../versions/1",
        ] {
            assert!(parse_version_name(bad, "f").is_err(), "{bad:?}");
        }
        assert_eq!(version_name("d", 3), "datasets/d/versions/3");
    }
}
