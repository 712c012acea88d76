//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod audit;
mod auth;
mod deployment;
mod monitoring;
mod registry;

pub use audit::AuditCmd;
pub use auth::{GrantsCmd, KeysCmd};
pub use deployment::{AbCmd, DeployArgs, DeploymentsCmd, EnvironmentsCmd, ExplainArgs, RolloutCmd};
pub use monitoring::{AlertsCmd, BaselinesCmd, CmpArg, DriftCmd, MonitorsCmd, StateArg, TaskArg};
pub use registry::{AliasCmd, ApproveArgs, ModelsCmd, VersionsCmd};

/// Steward: ML model management (experiment tracking, registry, deployment, monitoring).
#[derive(Parser, Debug)]
#[command(name = "steward", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Server options shared by `up` and `migrate`.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// TOML configuration file.
    #[arg(long, env = "STEWARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database and local artifacts).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Client options shared by the CLI commands.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Server address.
    #[arg(
        long,
        env = "STEWARD_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub addr: String,
    /// Bearer token (sent as `authorization`).
    #[arg(long, env = "STEWARD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Who is acting (sent as `x-steward-actor`, honoured in open local mode only; default
    /// `$USER`).
    #[arg(long, env = "STEWARD_ACTOR", global = true)]
    pub actor: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// CA certificate (PEM) to verify an `https://` server with.
    #[arg(long, env = "STEWARD_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every service in one process on one port (SQLite, local artifacts and in-process
    /// events by default; Postgres/Redis/S3 when configured).
    Up {
        /// Listen address.
        #[arg(long)]
        listen: Option<String>,
        /// Do not apply migrations at start-up.
        #[arg(long)]
        no_migrate: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show the whole model lifecycle in under a minute, with nothing else installed: starts
    /// an embedded server on a temporary data dir, tracks training runs, registers, approves and
    /// deploys the best model, rolls it out to production as a canary under live ModelInfer
    /// traffic, runs an A/B test, shifts the inputs until a drift alert rolls the canary back,
    /// explains a prediction and verifies the audit trail, printing each step.
    Demo {
        /// Use this (new or empty) directory as the data dir and keep it afterwards, to look
        /// around with `steward up --data-dir DIR`.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Run the story against running services instead of an embedded server: the tracking
        /// service's URL (give all four).
        #[arg(long, value_name = "URL", requires_all = ["registry", "deployment", "monitoring"])]
        tracking: Option<String>,
        /// The registry (and audit) service's URL.
        #[arg(long, value_name = "URL", requires = "tracking")]
        registry: Option<String>,
        /// The deployment service's URL.
        #[arg(long, value_name = "URL", requires = "tracking")]
        deployment: Option<String>,
        /// The monitoring service's URL.
        #[arg(long, value_name = "URL", requires = "tracking")]
        monitoring: Option<String>,
    },
    /// Take a consistent snapshot of the embedded mode (SQLite database and local artifacts)
    /// into a new directory; safe while `steward up` runs. Postgres + S3: see README "Backups".
    Backup {
        /// Directory to create (must be new or empty).
        dir: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Restore a backup made by `steward backup` into the data dir, after verifying every file
    /// against its manifest. Stop the server first.
    Restore {
        /// The backup directory.
        dir: PathBuf,
        /// Move a non-empty data dir aside (kept as `DATA_DIR.pre-restore-TIME`) and restore.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// API keys, in the database directly (bootstraps the first admin: `steward keys create
    /// --role admin`).
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Role grants per experiment, registered model or deployment, or global.
    Grants {
        #[command(subcommand)]
        cmd: GrantsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Who the server takes you for (principal, key, grants).
    Whoami {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Experiments.
    Experiments {
        #[command(subcommand)]
        cmd: ExperimentsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Runs.
    Runs {
        #[command(subcommand)]
        cmd: RunsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run artifacts.
    Artifacts {
        #[command(subcommand)]
        cmd: ArtifactsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Dataset versions: push files, list, diff, pull a version back byte-identical.
    Datasets {
        #[command(subcommand)]
        cmd: DatasetsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The reproducibility manifest of a model version (code, data, params, environment), and
    /// optionally its data and artifacts materialized into a directory.
    Reproduce {
        /// `registeredModels/{m}/versions/{v}` (or `MODEL/VERSION`).
        model_version: String,
        /// Materialize the dataset versions, the model files and the environment files here.
        #[arg(long)]
        into: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Registered models.
    Models {
        #[command(subcommand)]
        cmd: ModelsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Model versions: register, show, compare, lineage.
    Versions {
        #[command(subcommand)]
        cmd: VersionsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Model aliases (e.g. champion, prod) and their history.
    Alias {
        #[command(subcommand)]
        cmd: AliasCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve (or with --reject, reject) a model version. The reviewer may not be its creator.
    Approve {
        #[command(flatten)]
        args: ApproveArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The tamper-evident audit trail: export, anchor (heads) and verify.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Deploy a model version to an environment (creating the deployment or applying a
    /// revision), or with --canary roll it out step by step on the existing deployment.
    Deploy {
        #[command(flatten)]
        args: DeployArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Canary rollouts of a deployment: status, promote, rollback.
    Rollout {
        #[command(subcommand)]
        cmd: RolloutCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A/B tests: results with effects, confidence intervals, p-values and the SRM check.
    Ab {
        #[command(subcommand)]
        cmd: AbCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Explain a decision: model version, approval, training run, data, code and revision.
    Explain {
        #[command(flatten)]
        args: ExplainArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Deployments of registered models.
    Deployments {
        #[command(subcommand)]
        cmd: DeploymentsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Environments (staging, production, ...) and their policies.
    Environments {
        #[command(subcommand)]
        cmd: EnvironmentsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Training baselines of monitors.
    Baselines {
        #[command(subcommand)]
        cmd: BaselinesCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Monitors: drift, performance and alerts of live predictions.
    Monitors {
        #[command(subcommand)]
        cmd: MonitorsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Drift reports of monitor windows.
    Drift {
        #[command(subcommand)]
        cmd: DriftCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Alerts and alert rules.
    Alerts {
        #[command(subcommand)]
        cmd: AlertsCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `steward experiments ...`
#[derive(Subcommand, Debug)]
pub enum ExperimentsCmd {
    /// List experiments.
    List {
        /// Filter, e.g. "display_name LIKE 'fraud%'".
        #[arg(long, default_value = "")]
        filter: String,
        /// Include deleted experiments.
        #[arg(long)]
        all: bool,
        /// Max rows.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Create an experiment.
    Create {
        /// Unique name.
        name: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Show one experiment (resource name or display name).
    Get {
        /// `experiments/{id}` or a display name.
        experiment: String,
    },
}

/// `steward runs ...`
#[derive(Subcommand, Debug)]
pub enum RunsCmd {
    /// Search runs with a filter.
    Search {
        /// Experiments (`experiments/{id}` or display names); repeatable.
        #[arg(long = "experiment", short = 'e', required = true)]
        experiments: Vec<String>,
        /// Filter, e.g. "metrics.acc > 0.9 AND params.lr = '0.01'".
        #[arg(long, default_value = "")]
        filter: String,
        /// Order, e.g. "metrics.acc desc".
        #[arg(long, default_value = "")]
        order_by: String,
        /// Max rows.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one run.
    Get {
        /// `experiments/{e}/runs/{r}`.
        run: String,
    },
}

/// `steward datasets ...`
#[derive(Subcommand, Debug)]
pub enum DatasetsCmd {
    /// Upload files or a directory as a new version of a dataset (created on first use). Only
    /// content the store does not hold yet is stored.
    Push {
        /// Dataset id (e.g. `fraud-transactions`) or `datasets/{id}`.
        dataset: String,
        /// Files or directories (a directory's files keep their paths relative to it).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Description of the version.
        #[arg(long, default_value = "")]
        description: String,
        /// Tags `key=value` (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Do not compute schema and profile at commit.
        #[arg(long)]
        skip_profile: bool,
    },
    /// List datasets, or the versions of one.
    List {
        /// Dataset id or `datasets/{id}`; all datasets when omitted.
        dataset: Option<String>,
    },
    /// Show a version and its files.
    Show {
        /// `datasets/{d}/versions/{v}` (or `latest`).
        #[arg(value_name = "VERSION")]
        name: String,
    },
    /// Files added, removed and changed, schema changes and column shifts between versions.
    Diff {
        /// The older version.
        base: String,
        /// The newer version.
        target: String,
    },
    /// Download a version into a directory, byte-identical, every file verified.
    Pull {
        /// `datasets/{d}/versions/{v}` (or `latest`).
        #[arg(value_name = "VERSION")]
        name: String,
        /// Target directory (created; existing files with other content are refused).
        dir: PathBuf,
    },
    /// Delete a version (refused while a model version was trained on it) and reclaim its
    /// storage.
    Delete {
        /// `datasets/{d}/versions/{v}`.
        #[arg(value_name = "VERSION")]
        name: String,
    },
}

/// `steward artifacts ...`
#[derive(Subcommand, Debug)]
pub enum ArtifactsCmd {
    /// Upload a local file to a run's artifact path.
    Upload {
        /// `experiments/{e}/runs/{r}`.
        run: String,
        /// Local file.
        file: PathBuf,
        /// Artifact path (default: the file name).
        #[arg(long)]
        path: Option<String>,
    },
    /// Download an artifact to a local file.
    Download {
        /// `experiments/{e}/runs/{r}`.
        run: String,
        /// Artifact path.
        path: String,
        /// Local file to write (default: the artifact's file name).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// List a run's artifacts.
    List {
        /// `experiments/{e}/runs/{r}`.
        run: String,
        /// Directory prefix.
        #[arg(long, default_value = "")]
        prefix: String,
    },
}
