//! The reproducibility manifest of a model version: what it takes to rebuild it, and what is
//! missing.

use std::collections::BTreeMap;

use super::{CodeVersion, DatasetRef, Lineage, ModelVersion};

/// A dataset of the manifest: the frozen reference and the stored version holding it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ReproDataset {
    /// From the lineage.
    pub dataset: DatasetRef,
    /// `datasets/{d}/versions/{v}` when that stored version holds exactly the digest.
    pub version: Option<String>,
}

/// The manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// `registeredModels/{m}/versions/{v}`.
    pub model_version: String,
    /// Artifact location.
    pub artifact_uri: String,
    /// Artifact digest.
    pub content_digest: String,
    /// Format.
    pub format: String,
    /// Code.
    pub code: CodeVersion,
    /// Source run.
    pub source_run: String,
    /// Datasets.
    pub datasets: Vec<ReproDataset>,
    /// Params.
    pub params: BTreeMap<String, String>,
    /// Environment lock files (path, size, sha256).
    pub environment_files: Vec<(String, i64, String)>,
    /// What is missing.
    pub missing: Vec<String>,
}

impl Manifest {
    /// Complete when nothing is missing.
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Assembles the manifest and lists what is missing: an artifact digest, a code commit and
/// repository without uncommitted changes, at least one dataset, every dataset a stored version,
/// and at least one environment lock file.
pub fn assess(
    v: &ModelVersion,
    l: &Lineage,
    datasets: Vec<ReproDataset>,
    environment_files: Vec<(String, i64, String)>,
) -> Manifest {
    let mut missing = Vec::new();
    if v.content_digest.is_empty() {
        missing.push("content_digest".to_string());
    }
    if l.code.git_commit.is_empty() {
        missing.push("code_version.git_commit".to_string());
    }
    if l.code.git_repo.is_empty() {
        missing.push("code_version.git_repo".to_string());
    }
    if l.code.git_dirty {
        missing.push("code_version: uncommitted changes (git_dirty)".to_string());
    }
    if datasets.is_empty() {
        missing.push("datasets: none recorded".to_string());
    }
    for d in &datasets {
        if d.version.is_none() {
            missing.push(format!(
                "datasets[{}]: {} is not a stored dataset version",
                d.dataset.name, d.dataset.digest
            ));
        }
    }
    if environment_files.is_empty() {
        missing.push("environment_files: the run logged no lock file".to_string());
    }
    Manifest {
        model_version: v.resource(),
        artifact_uri: v.artifact_uri.clone(),
        content_digest: v.content_digest.clone(),
        format: v.format.clone(),
        code: l.code.clone(),
        source_run: l.source_run.clone(),
        datasets,
        params: l.params.clone(),
        environment_files,
        missing,
    }
}
