//! What a monitor watches and how.

use serde::{Deserialize, Serialize};

/// How a feature is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureKind {
    /// Real numbers.
    Numeric,
    /// Labels.
    Categorical,
    /// Two values (two-proportion z-test by default).
    Binary,
}

/// A drift method (None in a spec: Evidently's default choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriftMethod {
    /// Two-sample Kolmogorov-Smirnov (p-value).
    Ks,
    /// Chi-squared goodness of fit (p-value).
    ChiSquared,
    /// Two-proportion z-test (p-value).
    ZTest,
    /// Wasserstein distance normalised by the reference std.
    Wasserstein,
    /// Jensen-Shannon distance (natural log).
    JensenShannon,
    /// Population stability index.
    Psi,
    /// L-infinity distance of category shares.
    LInfinity,
}

impl DriftMethod {
    /// True when the score is a p-value (drift below the threshold).
    pub fn is_p_value(self) -> bool {
        matches!(self, Self::Ks | Self::ChiSquared | Self::ZTest)
    }

    /// Whether the method applies to a feature of `kind`.
    pub fn applies_to(self, kind: FeatureKind) -> bool {
        match self {
            Self::Ks | Self::Wasserstein => kind == FeatureKind::Numeric,
            Self::ChiSquared | Self::LInfinity => kind != FeatureKind::Numeric,
            Self::ZTest => kind == FeatureKind::Binary,
            Self::JensenShannon | Self::Psi => true,
        }
    }
}

/// How one feature is monitored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// The baseline feature's name.
    pub name: String,
    /// Its kind (from the baseline).
    pub kind: FeatureKind,
    /// Where the value is in a decision's inputs: `{tensor}` or `{tensor}[{column}]` (empty:
    /// the feature's position in the baseline over the request's input columns).
    pub input: String,
    /// Method override.
    pub method: Option<DriftMethod>,
    /// Threshold override (p-value or distance).
    pub threshold: Option<f64>,
}

/// Tumbling windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowSize {
    /// By prediction time, this many milliseconds each.
    Time {
        /// Length in ms.
        ms: i64,
    },
    /// This many predictions each.
    Count {
        /// Rows per window.
        rows: i64,
    },
}

impl WindowSize {
    /// Time windows close this long after their end, so records still in flight are counted:
    /// a tenth of the window, at most 10 s.
    pub fn grace_ms(self) -> i64 {
        match self {
            Self::Time { ms } => (ms / 10).min(10_000),
            Self::Count { .. } => 0,
        }
    }
}

/// The model's task (which performance metrics apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    /// Not said: performance metrics of both kinds where they can be computed.
    Unspecified,
    /// Labels; accuracy, precision, recall, F1, ROC AUC, log loss.
    Classification,
    /// Numbers; MAE, RMSE, MAPE.
    Regression,
}

/// Defaults.
pub const DEFAULT_DRIFT_SHARE: f64 = 0.5;
/// Values kept exactly per window by default.
pub const DEFAULT_MAX_EXACT_ROWS: i64 = 1_000_000;
/// Upper bound of `max_exact_rows` (memory of one report: ~8 bytes x rows x features).
pub const MAX_MAX_EXACT_ROWS: i64 = 10_000_000;

/// Everything configurable of a monitor (stored as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorSpec {
    /// Window size.
    pub window: WindowSize,
    /// Monitored features (resolved against the baseline at creation).
    pub features: Vec<FeatureSpec>,
    /// Dataset drift when at least this share of features drifts.
    pub drift_share: f64,
    /// Benjamini-Hochberg across features.
    pub fdr_correction: bool,
    /// Exact values kept per window; beyond, sketches.
    pub max_exact_rows: i64,
    /// Task.
    pub task: Task,
    /// Positive label for binary classification metrics.
    pub positive_label: String,
    /// The output holding the prediction: `{tensor}` or `{tensor}[{column}]` (empty: first).
    pub prediction_output: String,
    /// Channel id called with the model, report and window on dataset drift (empty: none).
    pub retrain_channel: String,
}

/// A monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    /// `{m}` of `monitors/{m}`.
    pub id: String,
    /// Free text.
    pub description: String,
    /// `{d}` of the deployment whose decisions feed it (empty: ingest only).
    pub deployment: String,
    /// `{b}` of its baseline.
    pub baseline: String,
    /// The rest.
    pub spec: MonitorSpec,
    /// Who created it.
    pub creator: String,
    /// ms.
    pub create_time: i64,
    /// ms.
    pub update_time: i64,
    /// Etag counter.
    pub revision: i64,
}

impl Monitor {
    /// The window a record at `time` with sequence `seq` falls in.
    pub fn window_of(&self, time: i64, seq: i64) -> i64 {
        match self.spec.window {
            WindowSize::Time { ms } => time.div_euclid(ms),
            WindowSize::Count { rows } => seq / rows,
        }
    }

    /// Bounds of window `n` of a time monitor.
    pub fn time_bounds(&self, n: i64) -> Option<(i64, i64)> {
        match self.spec.window {
            WindowSize::Time { ms } => Some((n * ms, (n + 1) * ms)),
            WindowSize::Count { .. } => None,
        }
    }
}
