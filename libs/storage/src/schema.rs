//! The one shared schema: table and column identifiers used by every service's store, and the
//! migrations that create them on SQLite and PostgreSQL.
//!
//! Ownership: the tracking service writes `experiments`, `experiment_tags`, `runs`, `run_params`,
//! `run_tags`, `latest_metrics`, `metric_chunks`, `datasets`, `run_inputs`, `artifacts` and the dataset version tables (`dataset_heads`,
//! `dataset_versions`, `dataset_files`, `dataset_version_chunks`, `cas_chunks`). Every
//! service writes its own rows of `idempotency_records`, `outbox`, `audit_records` and
//! `audit_chain_heads` through this crate. The registry service writes `registered_models`,
//! `registered_model_tags`, `model_versions`, `model_version_tags`, `model_aliases`,
//! `model_alias_history`, `model_version_reviews`, `model_policies` and `model_version_datasets`. The deployment service writes
//! `environments`, `deployments`, `deployment_revisions`, `deployment_versions`, `rollouts`,
//! `ab_tests`, `ab_outcomes` and `decision_records`. The monitoring service writes the `monitor_*`
//! tables and `monitors`. The registry service (its `AuthService`) writes `api_keys` and
//! `grants`, which every service reads to authenticate and authorize calls.
//!
//! Times are `BIGINT` milliseconds since the Unix epoch (UTC).

use sea_orm::DeriveIden;

mod m0001_init;
mod m0002_registry;
mod m0003_deployment;
mod m0004_monitoring;
mod m0005_datasets;
mod m0006_auth;

pub(crate) use m0001_init::M0001Init;
pub(crate) use m0002_registry::M0002Registry;
pub(crate) use m0003_deployment::M0003Deployment;
pub(crate) use m0004_monitoring::M0004Monitoring;
pub(crate) use m0005_datasets::M0005Datasets;
pub(crate) use m0006_auth::M0006Auth;

/// `experiments`
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Experiments {
    Table,
    Id,
    DisplayName,
    Description,
    ArtifactLocation,
    Lifecycle,
    CreateTime,
    UpdateTime,
    DeleteTime,
    Version,
}

/// `experiment_tags`
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum ExperimentTags {
    Table,
    ExperimentId,
    Key,
    Value,
}

/// `runs`
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Runs {
    Table,
    Id,
    ExperimentId,
    RunName,
    Status,
    StartTime,
    EndTime,
    ParentRunId,
    Lifecycle,
    Creator,
    ArtifactUri,
    CreateTime,
    UpdateTime,
    DeleteTime,
    Version,
}

/// `run_params`
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum RunParams {
    Table,
    RunId,
    Key,
    Value,
}

/// `run_tags`
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum RunTags {
    Table,
    RunId,
    Key,
    Value,
}

/// `latest_metrics`: the latest point of each metric of each run (what search filters and
/// orders on). `value` is NULL for NaN.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum LatestMetrics {
    Table,
    RunId,
    Key,
    Value,
    Step,
    Timestamp,
}

/// `metric_chunks`: metric history as compressed column chunks per (run, key).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MetricChunks {
    Table,
    Id,
    RunId,
    Key,
    NPoints,
    MinStep,
    MaxStep,
    Data,
}

/// `datasets`: deduplicated by (name, digest).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Datasets {
    Table,
    Id,
    Name,
    Digest,
    SourceUri,
    SourceType,
    SchemaJson,
    Profile,
    CreateTime,
}

/// `run_inputs`: which datasets a run used, in which context.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum RunInputs {
    Table,
    RunId,
    DatasetId,
    Context,
}

/// `artifacts`: metadata of every artifact written through the service.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Artifacts {
    Table,
    RunId,
    Path,
    SizeBytes,
    Sha256,
    ContentType,
    CreateTime,
}

/// `idempotency_records`: the stored response of each mutation that carried a `request_id`.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum IdempotencyRecords {
    Table,
    Service,
    RequestId,
    Method,
    RequestHash,
    Response,
    CreateTime,
}

/// `outbox`: events committed with their change, waiting for the relay.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Outbox {
    Table,
    Id,
    Service,
    EventId,
    EventType,
    Envelope,
    CreateTime,
}

/// `audit_records`: the hash-chained audit log, one chain per service.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum AuditRecords {
    Table,
    Service,
    Seq,
    Time,
    Actor,
    Action,
    Resource,
    BeforeJson,
    AfterJson,
    RequestId,
    TraceId,
    PrevHash,
    Hash,
}

/// `audit_chain_heads`: the last (seq, hash) of each service's chain; its row lock serializes
/// appends to one chain.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum AuditChainHeads {
    Table,
    Service,
    Seq,
    Hash,
}

/// `registered_models`: one row per model; `last_version` hands out gap-free version numbers
/// under the row lock; `revision` is the etag.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum RegisteredModels {
    Table,
    Name,
    Description,
    Creator,
    CreateTime,
    UpdateTime,
    LastVersion,
    Revision,
}

/// `registered_model_tags`
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum RegisteredModelTags {
    Table,
    Model,
    Key,
    Value,
}

/// `model_versions`: immutable versions (source, digest, signature, lineage are write-once;
/// status moves CREATING -> READY|FAILED once; description, tags and approval change).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum ModelVersions {
    Table,
    Model,
    Version,
    SourceRun,
    ArtifactPath,
    SourceUri,
    ArtifactUri,
    ContentDigest,
    SignatureJson,
    Format,
    Status,
    StatusMessage,
    Description,
    ApprovalState,
    ReviewReviewer,
    ReviewComment,
    ReviewTime,
    Creator,
    CreateTime,
    UpdateTime,
    Revision,
    LineageJson,
}

/// `model_version_tags`
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum ModelVersionTags {
    Table,
    Model,
    Version,
    Key,
    Value,
}

/// `model_aliases`: the current target of each alias.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum ModelAliases {
    Table,
    Model,
    Alias,
    Version,
    UpdateTime,
    Updater,
}

/// `model_alias_history`: every alias move (version 0 = deleted).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum ModelAliasHistory {
    Table,
    Id,
    Model,
    Alias,
    Version,
    PreviousVersion,
    Actor,
    Time,
    RequestId,
}

/// `model_version_reviews`: every approval decision.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum ModelVersionReviews {
    Table,
    Id,
    Model,
    Version,
    State,
    Reviewer,
    Comment,
    Time,
}

/// `model_policies`: each model's alias policy rules (JSON).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum ModelPolicies {
    Table,
    Model,
    RulesJson,
    UpdateTime,
    Revision,
}

/// `environments`: named, ordered targets of deployments, each with a policy.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Environments {
    Table,
    Name,
    Ord,
    Description,
    RequireApproved,
    RequirePreviousEnv,
    /// Added by m0005.
    RequireReproducible,
    UpstreamUrl,
    CreateTime,
    UpdateTime,
    Revision,
}

/// `deployments`: one per (registered model, environment).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Deployments {
    Table,
    Id,
    Model,
    Environment,
    CurrentRevision,
    ActiveRollout,
    ActiveAbTest,
    Creator,
    CreateTime,
    UpdateTime,
    Revision,
}

/// `deployment_revisions`: every revision of every deployment (variants as JSON).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum DeploymentRevisions {
    Table,
    Deployment,
    Number,
    VariantsJson,
    ShadowJson,
    Reason,
    Creator,
    CreateTime,
}

/// `deployment_versions`: which model versions each deployment has served (first time).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum DeploymentVersions {
    Table,
    Deployment,
    Model,
    Version,
    Environment,
    FirstTime,
}

/// `rollouts`: canary rollouts and their state.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Rollouts {
    Table,
    Id,
    Deployment,
    ModelVersionRef,
    Version,
    StepsJson,
    GuardrailsJson,
    State,
    CurrentStep,
    StepStartTime,
    BaseRevision,
    Reason,
    HistoryJson,
    Creator,
    CreateTime,
    UpdateTime,
    Revision,
}

/// `ab_tests`: A/B tests over variants of one revision.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum AbTests {
    Table,
    Id,
    Deployment,
    VariantsJson,
    Metric,
    MetricKind,
    Alpha,
    Sequential,
    State,
    Winner,
    RevisionNumber,
    Creator,
    CreateTime,
    ConcludeTime,
}

/// `ab_outcomes`: the primary metric reported per routed request (one per request id).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum AbOutcomes {
    Table,
    AbTest,
    RequestId,
    Variant,
    Value,
    Time,
}

/// `decision_records`: every prediction served or request routed (data plane, append-only;
/// sampled inputs may be erased, the digest stays).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum DecisionRecords {
    Table,
    RequestId,
    Time,
    Deployment,
    Revision,
    Variant,
    Model,
    Version,
    Kind,
    InputDigest,
    InputsJson,
    InputsErased,
    OutputsJson,
    LatencyUs,
    Error,
    RoutingKey,
}

/// `monitor_baselines`: training baselines (summary JSON + exact reference columns, LZ4).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorBaselines {
    Table,
    Id,
    ModelVersion,
    Source,
    NumRows,
    SummaryJson,
    Data,
    Creator,
    CreateTime,
}

/// `monitors`: what is monitored and how (spec JSON); `next_seq` numbers predictions for count
/// windows under the row lock.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Monitors {
    Table,
    Id,
    Description,
    Deployment,
    Baseline,
    SpecJson,
    NextSeq,
    Creator,
    CreateTime,
    UpdateTime,
    Revision,
}

/// `monitor_chunks`: the feature values of a window, as compressed column chunks.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorChunks {
    Table,
    Id,
    Monitor,
    Window,
    Rows,
    Data,
}

/// `monitor_windows`: every window of every monitor (state 0 open, 1 closed) and its report.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorWindows {
    Table,
    Monitor,
    Number,
    StartTime,
    EndTime,
    Rows,
    State,
    DatasetDrift,
    DriftShare,
    ReportJson,
    CloseTime,
}

/// `monitor_predictions`: one row per prediction (feedback joins on the request id).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorPredictions {
    Table,
    Monitor,
    RequestId,
    Time,
    Window,
    Variant,
    ModelVersion,
    PredNum,
    PredCat,
    LatencyUs,
    Error,
}

/// `monitor_feedback`: ground truth by request id.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorFeedback {
    Table,
    Monitor,
    RequestId,
    LabelNum,
    LabelCat,
    Time,
}

/// `monitor_kpis`: business KPI values.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorKpis {
    Table,
    Id,
    Monitor,
    Name,
    Value,
    RequestId,
    Time,
}

/// `monitor_series`: every evaluated metric value over time.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorSeries {
    Table,
    Id,
    Monitor,
    Metric,
    Time,
    Window,
    Value,
}

/// `monitor_rules`: alert rules (`pending_since`: when the condition started holding).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorRules {
    Table,
    Monitor,
    Id,
    Metric,
    Comparator,
    Threshold,
    WindowMs,
    HoldMs,
    Severity,
    ChannelsJson,
    PendingSince,
    CreateTime,
}

/// `monitor_alerts`: alerts (state 1 firing, 2 resolved).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorAlerts {
    Table,
    Id,
    Monitor,
    Rule,
    Deployment,
    State,
    Severity,
    Metric,
    Value,
    Threshold,
    Reason,
    FireTime,
    ResolveTime,
    OpenKey,
}

/// `monitor_channels`: notification webhooks.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorChannels {
    Table,
    Id,
    Url,
    Secret,
    AllowPrivate,
    CreateTime,
}

/// `monitor_deliveries`: webhook calls waiting, delivered (1) or given up (2), with retries.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum MonitorDeliveries {
    Table,
    Id,
    Channel,
    Kind,
    Payload,
    Attempts,
    NextAttempt,
    State,
    LastError,
    CreateTime,
}

/// `dataset_heads`: one row per versioned dataset (`datasets/{id}`), with its version counter.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum DatasetHeads {
    Table,
    Id,
    NextVersion,
    CreateTime,
}

/// `dataset_versions`: state 1 = PENDING, 2 = COMMITTED; `profile` is an encoded
/// `steward.tracking.v1.DatasetProfile` (empty when none).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum DatasetVersions {
    Table,
    Dataset,
    Version,
    State,
    Digest,
    Description,
    TagsJson,
    Creator,
    CreateTime,
    CommitTime,
    FileCount,
    SizeBytes,
    NewBytes,
    SchemaJson,
    Profile,
    ExternalJson,
}

/// `dataset_files`: the manifest of a version. `chunks` lists the file's content chunks in
/// order, 40 bytes each: the SHA-256 (32 bytes) and the size (big-endian u64).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum DatasetFiles {
    Table,
    Dataset,
    Version,
    Path,
    CreateTime,
    SizeBytes,
    Sha256,
    Chunks,
    NewBytes,
    SchemaJson,
    Profile,
}

/// `dataset_version_chunks`: every chunk a file of a version (pending or committed, finished or
/// still uploading) uses. A chunk no row here names is garbage.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum DatasetVersionChunks {
    Table,
    Dataset,
    Version,
    Path,
    Digest,
}

/// `cas_chunks`: the content-addressed chunks in the object store (`stored` = 1 once the object
/// is durable).
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum CasChunks {
    Table,
    Digest,
    SizeBytes,
    Stored,
    CreateTime,
}

/// `model_version_datasets`: the datasets of each model version's frozen lineage, one row per
/// (dataset, context), for `datasets.*` filters on versions and for refusing to delete the
/// training data of a model version.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum ModelVersionDatasets {
    Table,
    Model,
    Version,
    Name,
    Digest,
    Context,
    SourceUri,
}

/// `api_keys`: API keys by their public id; only the SHA-256 of the secret is kept.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum ApiKeys {
    Table,
    Id,
    Principal,
    Kind,
    SecretHash,
    Description,
    Creator,
    CreateTime,
    ExpireTime,
    RevokeTime,
}

/// `grants`: one role per (principal, resource); resource `*` is a global grant.
#[derive(DeriveIden, Clone, Copy)]
#[allow(missing_docs)]
pub enum Grants {
    Table,
    Principal,
    Resource,
    Role,
    Creator,
    CreateTime,
}
