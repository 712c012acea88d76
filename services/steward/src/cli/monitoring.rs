//! Command-line definitions of the monitoring commands: `baselines`, `monitors`, `drift` and
//! `alerts`. A monitor is `monitors/{m}` or `{m}`; likewise baselines, deployments, channels.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};

use crate::cmd::plan::parse_bake;

/// `steward baselines ...`
#[derive(Subcommand, Debug)]
pub enum BaselinesCmd {
    /// Create a baseline from a CSV reference sample (header row; a column whose values all
    /// parse as numbers is NUMERIC, else CATEGORICAL; empty cells are missing) or from a dataset
    /// profile logged with a run.
    Create {
        /// Baseline id.
        id: String,
        /// CSV file of the reference sample (simple CSV: no quoted commas).
        #[arg(long, conflicts_with_all = ["run", "dataset"], required_unless_present = "run")]
        csv: Option<PathBuf>,
        /// The CSV column holding the model's output.
        #[arg(long, requires = "csv")]
        prediction_column: Option<String>,
        /// Columns to treat as categorical even when numeric (comma-separated).
        #[arg(long, requires = "csv", value_delimiter = ',')]
        categorical: Vec<String>,
        /// Run whose input dataset profile to use: experiments/{e}/runs/{r}.
        #[arg(long, requires = "dataset")]
        run: Option<String>,
        /// The dataset's name.
        #[arg(long, requires = "run")]
        dataset: Option<String>,
        /// The model version this is the training baseline of ({m}/{v} or the full name).
        #[arg(long)]
        model_version: Option<String>,
    },
    /// List baselines.
    List,
}

/// Tasks.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum TaskArg {
    /// Labels or scores.
    Classification,
    /// Numbers.
    Regression,
}

/// `steward monitors ...`
#[derive(Subcommand, Debug)]
pub enum MonitorsCmd {
    /// Create a monitor over a baseline, fed by a deployment's decisions and/or IngestPredictions.
    Create {
        /// Monitor id.
        id: String,
        /// Baseline id.
        #[arg(long)]
        baseline: String,
        /// Deployment whose decision records feed the monitor.
        #[arg(long)]
        deployment: Option<String>,
        /// Tumbling windows of this duration, e.g. 1m, 1h.
        #[arg(long, value_parser = parse_bake, conflicts_with = "window_rows", required_unless_present = "window_rows")]
        window: Option<Duration>,
        /// Tumbling windows of this many predictions.
        #[arg(long)]
        window_rows: Option<i64>,
        /// Dataset drift when at least this share of features drifts (default 0.5).
        #[arg(long)]
        drift_share: Option<f64>,
        /// Benjamini-Hochberg correction of p-values across features.
        #[arg(long)]
        fdr: bool,
        /// The model's task (performance metrics).
        #[arg(long, value_enum)]
        task: Option<TaskArg>,
        /// Positive label of classification metrics (default "1").
        #[arg(long)]
        positive_label: Option<String>,
        /// Channel called with the report and window on dataset drift.
        #[arg(long)]
        retrain_channel: Option<String>,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List monitors.
    List {
        /// Only the monitors of this deployment.
        #[arg(long)]
        deployment: Option<String>,
    },
    /// A monitor and its latest windows.
    Show {
        /// Monitor.
        monitor: String,
    },
}

/// `steward drift ...`
#[derive(Subcommand, Debug)]
pub enum DriftCmd {
    /// The drift report of a closed window: every feature's method, score, threshold and verdict.
    Report {
        /// Monitor.
        monitor: String,
        /// Window number (default: the latest closed window).
        #[arg(long)]
        window: Option<i64>,
    },
}

/// Comparators as people type them.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum CmpArg {
    /// >
    Gt,
    /// >=
    Ge,
    /// <
    Lt,
    /// <=
    Le,
}

/// Alert states.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum StateArg {
    /// Firing.
    Firing,
    /// Resolved.
    Resolved,
}

/// `steward alerts ...`
#[derive(Subcommand, Debug)]
pub enum AlertsCmd {
    /// List alerts, newest first.
    List {
        /// Only alerts in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only alerts of this monitor.
        #[arg(long)]
        monitor: Option<String>,
        /// Max rows.
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// Add an alert rule to a monitor, e.g. `--metric drift.share --cmp ge --threshold 0.5`.
    Rule {
        /// Monitor.
        monitor: String,
        /// Rule id.
        #[arg(long)]
        id: Option<String>,
        /// Series: drift.share, drift.dataset, drift.feature.{f}, drift.prediction,
        /// performance.{m}, latency.{p50_ms|p95_ms|p99_ms}, error_rate, kpi.{name}.
        #[arg(long)]
        metric: String,
        /// Comparison.
        #[arg(long, value_enum)]
        cmp: CmpArg,
        /// Threshold.
        #[arg(long)]
        threshold: f64,
        /// Time range of each evaluation (performance, latency, error and KPI series), e.g. 5m.
        #[arg(long, value_parser = parse_bake)]
        window: Option<Duration>,
        /// How long the condition must hold before firing, e.g. 2m.
        #[arg(long, value_parser = parse_bake)]
        hold: Option<Duration>,
        /// warning or critical.
        #[arg(long, default_value = "warning")]
        severity: String,
        /// Channels notified (comma-separated).
        #[arg(long, value_delimiter = ',')]
        channels: Vec<String>,
    },
}
