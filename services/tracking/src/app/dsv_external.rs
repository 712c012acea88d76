//! Verifying external dataset references: the service reads the referenced object through its
//! S3 client and checks the claimed digests and the kind's own identity before it records a
//! version.

use futures::StreamExt;
use md5::Digest as _;
use steward_artifacts::ObjectStore;
use steward_common::Error;

use crate::domain::datasets::{ExternalKind, ExternalRef};

/// Largest Iceberg metadata file read.
const MAX_ICEBERG_METADATA: u64 = 64 << 20;

fn bad(field: &str, why: impl Into<String>) -> Error {
    Error::invalid_field(format!("version.external.{field}"), why)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `s3://bucket/key` -> (bucket, key).
pub fn parse_s3_uri(uri: &str) -> Result<(String, String), Error> {
    let rest = uri.strip_prefix("s3://").ok_or_else(|| {
        bad(
            "uri",
            format!("{uri:?} is not an s3:// URI; external data is read through S3"),
        )
    })?;
    let (bucket, key) = rest
        .split_once('/')
        .ok_or_else(|| bad("uri", "expected s3://bucket/key"))?;
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !bucket_ok {
        return Err(bad("uri", format!("{bucket:?} is not an S3 bucket name")));
    }
    if key.is_empty() || key.len() > 1024 || key.ends_with('/') || key.chars().any(char::is_control)
    {
        return Err(bad(
            "uri",
            "the object key must be 1-1024 characters, not a directory, without control characters",
        ));
    }
    Ok((bucket.to_string(), key.to_string()))
}

/// Checks the reference's fields, reads the object, and returns it with its size; refused with
/// the field that does not match.
pub async fn verify(objects: &dyn ObjectStore, e: &ExternalRef) -> Result<ExternalRef, Error> {
    let (bucket, key) = parse_s3_uri(&e.uri)?;
    if !is_hex(&e.sha256, 64) {
        return Err(bad(
            "sha256",
            "required: the object's SHA-256, 64 lowercase hex characters",
        ));
    }
    let mut version_id = None;
    match e.kind {
        ExternalKind::S3ObjectVersion => {
            if e.version_id.is_empty()
                || e.version_id.len() > 1024
                || e.version_id.chars().any(char::is_control)
            {
                return Err(bad(
                    "version_id",
                    "required: an S3 object version id pins the bytes",
                ));
            }
            version_id = Some(e.version_id.as_str());
        }
        ExternalKind::Dvc => {
            if !is_hex(&e.md5, 32) {
                return Err(bad(
                    "md5",
                    "required: the md5 of the .dvc entry, 32 lowercase hex characters",
                ));
            }
            let tail = format!("{}/{}", &e.md5[..2], &e.md5[2..]);
            if !key.ends_with(&tail) {
                return Err(bad(
                    "uri",
                    format!("a DVC remote stores this file under .../{tail}, not {key:?}"),
                ));
            }
        }
        ExternalKind::LakeFs => {
            let commit = key.split('/').next().unwrap_or("");
            if !is_hex(commit, 64) || !key.contains('/') {
                return Err(bad(
                    "uri",
                    "expected s3://REPOSITORY/COMMIT_ID/path with a commit id (64 hex); a branch moves",
                ));
            }
        }
        ExternalKind::IcebergSnapshot => {
            if e.snapshot_id == 0 {
                return Err(bad("snapshot_id", "required for an Iceberg snapshot"));
            }
            if !key.ends_with(".metadata.json") {
                return Err(bad(
                    "uri",
                    "expected the table's metadata file (*.metadata.json)",
                ));
            }
        }
    }
    let (size, mut body) = objects.get_external(&bucket, &key, version_id).await?;
    if e.kind == ExternalKind::IcebergSnapshot && size > MAX_ICEBERG_METADATA {
        return Err(bad("uri", "the metadata file is larger than 64 MiB"));
    }
    let mut sha = <sha2::Sha256 as sha2::Digest>::new();
    let mut md5 = md5::Md5::new();
    let mut kept = Vec::new();
    let mut read = 0u64;
    while let Some(b) = body.next().await {
        let b = b?;
        read += b.len() as u64;
        sha2::Digest::update(&mut sha, &b);
        if e.kind == ExternalKind::Dvc {
            md5.update(&b);
        }
        if e.kind == ExternalKind::IcebergSnapshot {
            kept.extend_from_slice(&b);
        }
    }
    let got = hex::encode(sha2::Digest::finalize(sha));
    if got != e.sha256 {
        return Err(bad(
            "sha256",
            format!("the object's SHA-256 is {got}; nothing was recorded"),
        ));
    }
    if e.kind == ExternalKind::Dvc {
        let got = hex::encode(md5.finalize());
        if got != e.md5 {
            return Err(bad(
                "md5",
                format!("the object's MD5 is {got}; nothing was recorded"),
            ));
        }
    }
    if e.kind == ExternalKind::IcebergSnapshot {
        let meta: serde_json::Value = serde_json::from_slice(&kept)
            .map_err(|_| bad("uri", "the metadata file is not JSON"))?;
        let found = meta
            .get("snapshots")
            .and_then(|s| s.as_array())
            .is_some_and(|s| {
                s.iter()
                    .any(|x| x.get("snapshot-id").and_then(|v| v.as_i64()) == Some(e.snapshot_id))
            });
        if !found {
            return Err(bad(
                "snapshot_id",
                format!("snapshot {} is not in the metadata file", e.snapshot_id),
            ));
        }
    }
    Ok(ExternalRef {
        size_bytes: read.max(size) as i64,
        ..e.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris() {
        assert_eq!(
            parse_s3_uri("s3://my-bucket/a/b.csv").unwrap(),
            ("my-bucket".into(), "a/b.csv".into())
        );
        for bad in [
            "file:///etc/passwd",
            "http://x/y",
            "s3://",
            "s3://b",
            "s3://ab/x",
            "s3://Bucket/x",
            "s3://bucket/",
            "s3://bucket/a\u{0}b",
        ] {
            let e = parse_s3_uri(bad).unwrap_err();
            assert_eq!(e.violations[0].field, "version.external.uri", "{bad:?}");
        }
    }
}
