//! The tracking resources as the service sees them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Lifecycle of experiments and runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    /// Visible.
    Active,
    /// Soft-deleted; can be undeleted.
    Deleted,
}

impl Lifecycle {
    /// Stored code.
    pub fn code(self) -> i16 {
        match self {
            Lifecycle::Active => 1,
            Lifecycle::Deleted => 2,
        }
    }
    /// From the stored code.
    pub fn from_code(c: i16) -> Lifecycle {
        if c == 2 {
            Lifecycle::Deleted
        } else {
            Lifecycle::Active
        }
    }
}

/// Status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    /// Running.
    Running,
    /// Scheduled, not started.
    Scheduled,
    /// Finished successfully.
    Finished,
    /// Failed.
    Failed,
    /// Killed.
    Killed,
}

impl RunStatus {
    /// Stored code (same numbers as the proto enum).
    pub fn code(self) -> i16 {
        match self {
            RunStatus::Running => 1,
            RunStatus::Scheduled => 2,
            RunStatus::Finished => 3,
            RunStatus::Failed => 4,
            RunStatus::Killed => 5,
        }
    }
    /// From the stored code.
    pub fn from_code(c: i16) -> Option<RunStatus> {
        Some(match c {
            1 => RunStatus::Running,
            2 => RunStatus::Scheduled,
            3 => RunStatus::Finished,
            4 => RunStatus::Failed,
            5 => RunStatus::Killed,
            _ => return None,
        })
    }
    /// Upper-case name, as in filters and events.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
    /// Parses a name (case-insensitive).
    pub fn from_name(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Scheduled,
            RunStatus::Finished,
            RunStatus::Failed,
            RunStatus::Killed,
        ]
        .into_iter()
        .find(|st| st.name().eq_ignore_ascii_case(s))
    }
    /// Finished, failed or killed.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Finished | RunStatus::Failed | RunStatus::Killed
        )
    }
}

/// An experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Id (32 hex).
    pub id: String,
    /// Unique name.
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// Where run artifacts live.
    pub artifact_location: String,
    /// Created, ms.
    pub create_time: i64,
    /// Updated, ms.
    pub update_time: i64,
    /// Deleted, ms.
    pub delete_time: Option<i64>,
    /// Optimistic-concurrency version (the etag).
    pub version: i64,
}

/// The latest point of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestMetric {
    /// Metric key.
    pub key: String,
    /// Value (NaN allowed).
    pub value: f64,
    /// Step.
    pub step: i64,
    /// Time, ms.
    pub timestamp: i64,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Id.
    pub id: String,
    /// Experiment id.
    pub experiment_id: String,
    /// Human name.
    pub run_name: String,
    /// Status.
    pub status: RunStatus,
    /// Start, ms.
    pub start_time: Option<i64>,
    /// End, ms.
    pub end_time: Option<i64>,
    /// Parent run id (nested runs).
    pub parent_run_id: Option<String>,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// Creator (actor).
    pub creator: String,
    /// Artifact root URI.
    pub artifact_uri: String,
    /// Created, ms.
    pub create_time: i64,
    /// Updated, ms.
    pub update_time: i64,
    /// Deleted, ms.
    pub delete_time: Option<i64>,
    /// Etag version.
    pub version: i64,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Params.
    pub params: BTreeMap<String, String>,
    /// Latest value of each metric, by key.
    pub latest_metrics: Vec<LatestMetric>,
    /// Dataset inputs.
    pub inputs: Vec<DatasetInput>,
}

/// Per-feature statistics, kept as encoded protobuf bytes (the profile is stored and returned
/// as given; monitoring reads it as the baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Name.
    pub name: String,
    /// Content digest.
    pub digest: String,
    /// Where it came from.
    pub source_uri: String,
    /// Source kind.
    pub source_type: String,
    /// JSON schema text.
    pub schema_json: String,
    /// Encoded `DatasetProfile`.
    pub profile: Vec<u8>,
}

/// A dataset used by a run in a context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInput {
    /// The dataset.
    pub dataset: Dataset,
    /// training / validation / test / ...
    pub context: String,
}

/// Metadata of a stored artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// Relative path.
    pub path: String,
    /// Size.
    pub size_bytes: i64,
    /// Hex sha256.
    pub sha256: String,
    /// MIME type or empty.
    pub content_type: String,
    /// Created, ms.
    pub create_time: i64,
}

/// A column-oriented run of metric points of one key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Steps.
    pub steps: Vec<i64>,
    /// Timestamps, ms.
    pub timestamps: Vec<i64>,
    /// Values.
    pub values: Vec<f64>,
}

impl Series {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// Appends one point.
    pub fn push(&mut self, step: i64, ts: i64, value: f64) {
        self.steps.push(step);
        self.timestamps.push(ts);
        self.values.push(value);
    }
    /// Appends `other[from..to]`.
    pub fn extend_range(&mut self, other: &Series, from: usize, to: usize) {
        self.steps.extend_from_slice(&other.steps[from..to]);
        self.timestamps
            .extend_from_slice(&other.timestamps[from..to]);
        self.values.extend_from_slice(&other.values[from..to]);
    }
    /// Index of the latest point: highest step, then latest timestamp, then the later one.
    pub fn latest_index(&self) -> Option<usize> {
        (0..self.len()).max_by(|&a, &b| {
            (self.steps[a], self.timestamps[a])
                .cmp(&(self.steps[b], self.timestamps[b]))
                .then(a.cmp(&b))
        })
    }
}

/// A validated batch of run data (LogRunData or one StreamMetrics message).
#[derive(Debug, Clone, Default)]
pub struct RunData {
    /// Metric series by key, in first-seen order.
    pub metrics: Vec<(String, Series)>,
    /// Params.
    pub params: Vec<(String, String)>,
    /// Tags.
    pub tags: Vec<(String, String)>,
}

impl RunData {
    /// Total metric points.
    pub fn point_count(&self) -> usize {
        self.metrics.iter().map(|(_, s)| s.len()).sum()
    }
}

/// `source_type` of a run input that is a stored dataset version (its `source_uri` is the
/// version's resource name).
pub const STORED_DATASET: &str = "steward";

#[cfg(test)]
mod tests {
    use super::RunStatus;

    /// The filter language (in steward-common) names run statuses by the same codes as here.
    #[test]
    fn filter_run_status_codes_match_the_stored_codes() {
        for (name, code) in steward_common::filter::RUN_STATUSES {
            let st = RunStatus::from_name(name).expect("known status");
            assert_eq!(st.code() as i64, code, "{name}");
        }
    }
}
