//! Registered models, versions, lineage, aliases and reviews.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Status of a model version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionStatus {
    /// Registered; files not yet confirmed.
    Creating,
    /// Usable.
    Ready,
    /// Registration failed (the number stays taken).
    Failed,
}

impl VersionStatus {
    /// Stored and filter name.
    pub fn name(self) -> &'static str {
        match self {
            VersionStatus::Creating => "CREATING",
            VersionStatus::Ready => "READY",
            VersionStatus::Failed => "FAILED",
        }
    }
    /// From the stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Creating, Self::Ready, Self::Failed]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// Approval state of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalState {
    /// Not reviewed, or a decision was withdrawn.
    Pending,
    /// Approved by a reviewer.
    Approved,
    /// Rejected by a reviewer.
    Rejected,
}

impl ApprovalState {
    /// Stored and filter name.
    pub fn name(self) -> &'static str {
        match self {
            ApprovalState::Pending => "PENDING",
            ApprovalState::Approved => "APPROVED",
            ApprovalState::Rejected => "REJECTED",
        }
    }
    /// From the stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// One tensor or column of a signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TensorSpec {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: String,
    /// Dimensions (-1 = dynamic).
    pub shape: Vec<i64>,
}

/// Input and output schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Signature {
    /// Inputs.
    pub inputs: Vec<TensorSpec>,
    /// Outputs.
    pub outputs: Vec<TensorSpec>,
}

/// A registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    /// Model id.
    pub name: String,
    /// Description.
    pub description: String,
    /// Creator.
    pub creator: String,
    /// Created, ms.
    pub create_time: i64,
    /// Updated, ms.
    pub update_time: i64,
    /// Highest version number handed out.
    pub last_version: i64,
    /// Etag.
    pub revision: i64,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Alias -> version.
    pub aliases: BTreeMap<String, i64>,
}

/// A review decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Decision.
    pub state: ApprovalState,
    /// Who decided.
    pub reviewer: String,
    /// Why.
    pub comment: String,
    /// When, ms.
    pub time: i64,
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Model id.
    pub model: String,
    /// Number, from 1.
    pub version: i64,
    /// `experiments/{e}/runs/{r}` or empty.
    pub source_run: String,
    /// Path under the run's artifacts.
    pub artifact_path: String,
    /// External URI or empty.
    pub source_uri: String,
    /// Where the files are.
    pub artifact_uri: String,
    /// `sha256:<hex>` or empty while CREATING.
    pub content_digest: String,
    /// Signature.
    pub signature: Signature,
    /// Format.
    pub format: String,
    /// Status.
    pub status: VersionStatus,
    /// Status detail.
    pub status_message: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Approval.
    pub approval: ApprovalState,
    /// Last review.
    pub last_review: Option<Review>,
    /// Aliases pointing here.
    pub aliases: Vec<String>,
    /// Creator.
    pub creator: String,
    /// Created, ms.
    pub create_time: i64,
    /// Updated, ms.
    pub update_time: i64,
    /// Etag.
    pub revision: i64,
}

impl ModelVersion {
    /// `registeredModels/{m}/versions/{v}`.
    pub fn resource(&self) -> String {
        steward_common::names::version_name(&self.model, self.version)
    }
}

/// A dataset a run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DatasetRef {
    /// Name.
    pub name: String,
    /// Digest.
    pub digest: String,
    /// Source URI.
    pub source_uri: String,
    /// Context (training, ...).
    pub context: String,
}

/// Code version from the well-known run tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CodeVersion {
    /// `steward.source.git_commit`.
    pub git_commit: String,
    /// `steward.source.git_repo`.
    pub git_repo: String,
    /// `steward.source.git_dirty`.
    pub git_dirty: bool,
}

/// Well-known run tag: git commit.
pub const TAG_GIT_COMMIT: &str = "steward.source.git_commit";
/// Well-known run tag: git repository.
pub const TAG_GIT_REPO: &str = "steward.source.git_repo";
/// Well-known run tag: uncommitted changes.
pub const TAG_GIT_DIRTY: &str = "steward.source.git_dirty";

impl CodeVersion {
    /// From run tags.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| tags.get(k).cloned().unwrap_or_default();
        CodeVersion {
            git_commit: get(TAG_GIT_COMMIT),
            git_repo: get(TAG_GIT_REPO),
            git_dirty: matches!(
                get(TAG_GIT_DIRTY).to_ascii_lowercase().as_str(),
                "true" | "1" | "yes"
            ),
        }
    }
}

/// The lineage snapshot, frozen when the version is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Lineage {
    /// Source run or empty.
    pub source_run: String,
    /// Run name.
    pub run_name: String,
    /// Params.
    pub params: BTreeMap<String, String>,
    /// Final metrics (NaN never stored: absent instead).
    pub metrics: BTreeMap<String, f64>,
    /// Datasets.
    pub datasets: Vec<DatasetRef>,
    /// Code version.
    pub code: CodeVersion,
    /// Parent chain, nearest first.
    pub parent_runs: Vec<String>,
    /// Run tags.
    pub run_tags: BTreeMap<String, String>,
}

/// One alias move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasMove {
    /// Model.
    pub model: String,
    /// Alias.
    pub alias: String,
    /// Target (0 = deleted).
    pub version: i64,
    /// Previous target (0 = new).
    pub previous_version: i64,
    /// Who.
    pub actor: String,
    /// When, ms.
    pub time: i64,
    /// Request id.
    pub request_id: String,
}

/// Model formats accepted in `format`.
pub const FORMATS: &[&str] = &[
    "onnx",
    "sklearn",
    "pytorch",
    "tensorflow",
    "keras",
    "xgboost",
    "lightgbm",
    "catboost",
    "huggingface",
    "pyfunc",
    "custom",
];

/// Element types accepted in signatures.
pub const DTYPES: &[&str] = &[
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
    "bfloat16", "float32", "float64", "string", "bytes",
];

/// URI schemes accepted for external sources.
pub const EXTERNAL_SCHEMES: &[&str] = &["s3", "gs", "az", "abfss", "hf", "https"];
