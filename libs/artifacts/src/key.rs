//! Object keys: where an artifact lives inside a store, relative to its root or bucket prefix.

use std::fmt;

use steward_common::{Error, Result};

use crate::path::ArtifactPath;

/// The full key of an object inside a store: a fixed prefix of validated segments followed by
/// an [`ArtifactPath`], e.g. `experiments/{e}/runs/{r}/artifacts/model/model.onnx`.
///
/// Keys are relative to the store's root directory or bucket prefix, and every segment is known
/// to be safe, so a key can be joined under that root without escaping it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    key: String,
    /// Byte offset of the artifact path inside `key`.
    path_start: usize,
}

impl ObjectKey {
    /// The key of a run's artifact: `experiments/{experiment_id}/runs/{run_id}/artifacts/{path}`.
    ///
    /// The ids must be 32 lowercase hex characters (Steward ids); otherwise the error names the
    /// field `experiment_id` or `run_id`.
    pub fn for_run_artifact(
        experiment_id: &str,
        run_id: &str,
        path: &ArtifactPath,
    ) -> Result<Self> {
        let mut key = Self::run_prefix(experiment_id, run_id)?;
        let path_start = key.len();
        key.push_str(path.as_str());
        Ok(Self { key, path_start })
    }

    /// The prefix under which all of a run's artifacts live, ending with `/`:
    /// `experiments/{experiment_id}/runs/{run_id}/artifacts/`. Append an
    /// [`ArtifactPrefix`](crate::ArtifactPrefix) to list one directory.
    pub fn run_prefix(experiment_id: &str, run_id: &str) -> Result<String> {
        check_id(experiment_id, "experiment_id")?;
        check_id(run_id, "run_id")?;
        Ok(format!(
            "experiments/{experiment_id}/runs/{run_id}/artifacts/"
        ))
    }

    /// The key of a content-addressed chunk: `cas/sha256/{first two hex}/{sha256 hex}`. The
    /// digest must be 64 lowercase hex characters (field `digest`).
    pub fn for_chunk(sha256_hex: &str) -> Result<Self> {
        let valid = sha256_hex.len() == 64
            && sha256_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(Error::invalid_field(
                "digest",
                format!("{sha256_hex:?} is not a SHA-256 (64 lowercase hex characters)"),
            ));
        }
        let key = format!("cas/sha256/{}/{sha256_hex}", &sha256_hex[..2]);
        let path_start = key.len() - sha256_hex.len();
        Ok(Self { key, path_start })
    }

    /// The key as text, segments separated by `/`.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The artifact path part of the key (what users see, e.g. in not-found errors).
    pub fn artifact_path(&self) -> &str {
        &self.key[self.path_start..]
    }

    /// The segments of the key.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.key.split('/')
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

fn check_id(id: &str, field: &str) -> Result<()> {
    let valid = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_field(
            field,
            format!("{id:?} is not a valid id (32 lowercase hex characters)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const E: &str = "0190a1b2c3d4e5f60718293a4b5c6d7e";
    const R: &str = "0190a1b2c3d4e5f60718293a4b5c6d7f";

    #[test]
    fn run_artifact_key() {
        let path = ArtifactPath::parse("model/model.onnx", "path").unwrap();
        let key = ObjectKey::for_run_artifact(E, R, &path).unwrap();
        assert_eq!(
            key.as_str(),
            format!("experiments/{E}/runs/{R}/artifacts/model/model.onnx")
        );
        assert_eq!(key.artifact_path(), "model/model.onnx");
        assert!(
            key.as_str()
                .starts_with(&ObjectKey::run_prefix(E, R).unwrap())
        );
        assert_eq!(key.to_string(), key.as_str());
    }

    #[test]
    fn chunk_keys() {
        let d = "ab".repeat(32);
        let key = ObjectKey::for_chunk(&d).unwrap();
        assert_eq!(key.as_str(), format!("cas/sha256/ab/{d}"));
        for bad in [
            "",
            "..",
            &"AB".repeat(32),
            &"a".repeat(63),
            "../../etc/passwd",
        ] {
            let err = ObjectKey::for_chunk(bad).unwrap_err();
            assert_eq!(err.violations[0].field, "digest", "{bad:?}");
        }
    }

    #[test]
    fn rejects_bad_ids() {
        let path = ArtifactPath::parse("x", "path").unwrap();
        let too_long = format!("{E}0");
        let bad_ids = [
            "",
            "..",
            "0190A1B2C3D4E5F60718293A4B5C6D7E",
            &E[..31],
            &too_long,
            "../../../../../../../../../../..",
            "0190a1b2c3d4e5f60718293a4b5c6d7g",
        ];
        for bad in bad_ids {
            let err = ObjectKey::for_run_artifact(bad, R, &path).unwrap_err();
            assert_eq!(err.violations[0].field, "experiment_id", "{bad:?}");
            let err = ObjectKey::for_run_artifact(E, bad, &path).unwrap_err();
            assert_eq!(err.violations[0].field, "run_id", "{bad:?}");
            assert!(ObjectKey::run_prefix(bad, R).is_err());
        }
    }

    proptest! {
        #[test]
        fn keys_of_accepted_paths_have_only_safe_segments(raw in "[a-z./%\\\\ ]{1,30}") {
            if let Ok(path) = ArtifactPath::parse(&raw, "path") {
                let key = ObjectKey::for_run_artifact(E, R, &path).unwrap();
                prop_assert!(key.segments().all(|s| !s.is_empty() && s != "." && s != ".."));
                prop_assert!(!key.as_str().starts_with('/'));
                prop_assert_eq!(key.artifact_path(), raw.as_str());
            }
        }
    }
}
