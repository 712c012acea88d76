//! One authorization rule per gRPC method of every service, deny by default: a method without
//! a rule is refused (`PERMISSION_DENIED`, `NO_AUTHORIZATION_RULE`), and a test enumerates
//! every method in the descriptors and fails if one has no rule or names a field its request
//! lacks.
//!
//! Decisions (where the issue leaves room):
//! - Top-level creates (experiments, registered models, deployments, datasets) need a global
//!   `editor`: a grant on one resource lets its holder work inside it, not create new ones.
//! - Datasets, monitors, baselines, alert rules and decision lookups by request id are global
//!   resources: a global grant is needed (viewer to read, editor to write).
//! - Serving (`Route`, `ModelInfer`, `ReportOutcome`) writes decision records, so it needs
//!   `editor` on the deployment (or globally).
//! - Environments (policies), model policies, notification channels (webhook secrets), the
//!   audit log, decision input erasure, and keys and grants need `admin`.

use crate::role::Action;

/// The resource a rule checks the caller's grants on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// Only a global grant counts.
    Global,
    /// The resource named in each of these request fields (dotted paths into the first request
    /// message), in `collection`; every one must be allowed. An empty field needs a global
    /// grant.
    Fields(&'static str, &'static [&'static str]),
    /// A list or search: with a global grant everything is returned; otherwise the response's
    /// repeated field `items` keeps only the items (by their `name`) the caller may read.
    List(&'static str),
}

/// What a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// On what.
    pub on: On,
    /// Other resources the request names that the caller must also be able to read, as
    /// (collection, dotted field path; repeated fields on the path count each element): a
    /// model version made from a run, a rollout or revision of a version. Without it the
    /// service, reading them with its own rights, would act on the caller's behalf beyond
    /// their grants.
    pub reads: &'static [(&'static str, &'static str)],
}

const fn r(action: Action, on: On) -> Rule {
    Rule {
        action,
        on,
        reads: &[],
    }
}

impl Rule {
    const fn reading(self, reads: &'static [(&'static str, &'static str)]) -> Rule {
        Rule { reads, ..self }
    }
}

const AUTH: Rule = r(Action::Authenticated, On::Global);
const ADMIN: Rule = r(Action::Admin, On::Global);
const READ_ALL: Rule = r(Action::Read, On::Global);
const WRITE_ALL: Rule = r(Action::Write, On::Global);

const fn exp(action: Action, fields: &'static [&'static str]) -> Rule {
    r(action, On::Fields("experiments", fields))
}
const fn model(action: Action, fields: &'static [&'static str]) -> Rule {
    r(action, On::Fields("registeredModels", fields))
}
const fn dep(action: Action, fields: &'static [&'static str]) -> Rule {
    r(action, On::Fields("deployments", fields))
}
const fn list(items: &'static str) -> Rule {
    r(Action::Read, On::List(items))
}

use Action::{Read, Review, Write};

/// Every rule, by method path (`/package.Service/Method`).
pub const RULES: &[(&str, Rule)] = &[
    // steward.tracking.v1.TrackingService
    (
        "/steward.tracking.v1.TrackingService/CreateExperiment",
        WRITE_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/GetExperiment",
        exp(Read, &["name"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/ListExperiments",
        list("experiments"),
    ),
    (
        "/steward.tracking.v1.TrackingService/UpdateExperiment",
        exp(Write, &["experiment.name"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/DeleteExperiment",
        exp(Write, &["name"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/UndeleteExperiment",
        exp(Write, &["name"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/CreateRun",
        exp(Write, &["parent"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/GetRun",
        exp(Read, &["name"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/UpdateRun",
        exp(Write, &["run.name"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/DeleteRun",
        exp(Write, &["name"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/UndeleteRun",
        exp(Write, &["name"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/SearchRuns",
        list("runs"),
    ),
    (
        "/steward.tracking.v1.TrackingService/LogRunData",
        exp(Write, &["run"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/StreamMetrics",
        exp(Write, &["run"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/GetMetricHistory",
        exp(Read, &["run"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/LogRunInputs",
        exp(Write, &["run"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/UploadArtifact",
        exp(Write, &["header.run"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/DownloadArtifact",
        exp(Read, &["run"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/ListArtifacts",
        exp(Read, &["run"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/GetArtifactDownloadUrl",
        exp(Read, &["run"]),
    ),
    (
        "/steward.tracking.v1.TrackingService/CreateDatasetVersion",
        WRITE_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/UploadDatasetFile",
        WRITE_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/CommitDatasetVersion",
        WRITE_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/GetDatasetVersion",
        READ_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/ListDatasetVersions",
        READ_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/ListDatasets",
        READ_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/ListDatasetFiles",
        READ_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/DownloadDatasetFile",
        READ_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/DiffDatasetVersions",
        READ_ALL,
    ),
    (
        "/steward.tracking.v1.TrackingService/DeleteDatasetVersion",
        WRITE_ALL,
    ),
    // steward.registry.v1.RegistryService
    (
        "/steward.registry.v1.RegistryService/CreateRegisteredModel",
        WRITE_ALL,
    ),
    (
        "/steward.registry.v1.RegistryService/GetRegisteredModel",
        model(Read, &["name"]),
    ),
    (
        "/steward.registry.v1.RegistryService/ListRegisteredModels",
        list("registered_models"),
    ),
    (
        "/steward.registry.v1.RegistryService/UpdateRegisteredModel",
        model(Write, &["registered_model.name"]),
    ),
    (
        "/steward.registry.v1.RegistryService/DeleteRegisteredModel",
        model(Write, &["name"]),
    ),
    (
        "/steward.registry.v1.RegistryService/CreateModelVersion",
        model(Write, &["parent"]).reading(&[("experiments", "model_version.source_run")]),
    ),
    (
        "/steward.registry.v1.RegistryService/GetModelVersion",
        model(Read, &["name"]),
    ),
    (
        "/steward.registry.v1.RegistryService/ListModelVersions",
        list("model_versions"),
    ),
    (
        "/steward.registry.v1.RegistryService/UpdateModelVersion",
        model(Write, &["model_version.name"]),
    ),
    (
        "/steward.registry.v1.RegistryService/GetLineage",
        model(Read, &["name"]),
    ),
    (
        "/steward.registry.v1.RegistryService/CompareModelVersions",
        model(Read, &["base", "other"]),
    ),
    (
        "/steward.registry.v1.RegistryService/SetModelVersionAlias",
        model(Write, &["registered_model"]),
    ),
    (
        "/steward.registry.v1.RegistryService/DeleteModelVersionAlias",
        model(Write, &["registered_model"]),
    ),
    (
        "/steward.registry.v1.RegistryService/ListAliasHistory",
        model(Read, &["registered_model"]),
    ),
    (
        "/steward.registry.v1.RegistryService/ReviewModelVersion",
        model(Review, &["name"]),
    ),
    (
        "/steward.registry.v1.RegistryService/ListApprovalHistory",
        model(Read, &["name"]),
    ),
    (
        "/steward.registry.v1.RegistryService/SetModelPolicy",
        model(Action::Admin, &["policy.registered_model"]),
    ),
    (
        "/steward.registry.v1.RegistryService/GetModelPolicy",
        model(Read, &["registered_model"]),
    ),
    (
        "/steward.registry.v1.RegistryService/GetReproducibilityManifest",
        model(Read, &["name"]),
    ),
    // steward.audit.v1.AuditService
    ("/steward.audit.v1.AuditService/ListAuditEvents", ADMIN),
    ("/steward.audit.v1.AuditService/VerifyAuditChain", ADMIN),
    ("/steward.audit.v1.AuditService/GetAuditChainHeads", ADMIN),
    // steward.auth.v1.AuthService
    ("/steward.auth.v1.AuthService/CreateApiKey", ADMIN),
    ("/steward.auth.v1.AuthService/ListApiKeys", ADMIN),
    ("/steward.auth.v1.AuthService/RevokeApiKey", ADMIN),
    ("/steward.auth.v1.AuthService/CreateGrant", ADMIN),
    ("/steward.auth.v1.AuthService/ListGrants", ADMIN),
    ("/steward.auth.v1.AuthService/DeleteGrant", ADMIN),
    ("/steward.auth.v1.AuthService/WhoAmI", AUTH),
    // steward.deployment.v1.DeploymentService
    (
        "/steward.deployment.v1.DeploymentService/CreateEnvironment",
        ADMIN,
    ),
    (
        "/steward.deployment.v1.DeploymentService/GetEnvironment",
        AUTH,
    ),
    (
        "/steward.deployment.v1.DeploymentService/ListEnvironments",
        AUTH,
    ),
    (
        "/steward.deployment.v1.DeploymentService/UpdateEnvironment",
        ADMIN,
    ),
    (
        "/steward.deployment.v1.DeploymentService/CreateDeployment",
        WRITE_ALL,
    ),
    (
        "/steward.deployment.v1.DeploymentService/GetDeployment",
        dep(Read, &["name"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/ListDeployments",
        list("deployments"),
    ),
    (
        "/steward.deployment.v1.DeploymentService/ApplyRevision",
        dep(Write, &["deployment"]).reading(&[
            ("registeredModels", "variants.model_version"),
            ("registeredModels", "shadow.model_version"),
        ]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/ListRevisions",
        dep(Read, &["deployment"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/RollbackDeployment",
        dep(Write, &["deployment"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/DeleteDeployment",
        dep(Write, &["name"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/StartRollout",
        dep(Write, &["deployment"]).reading(&[("registeredModels", "model_version")]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/GetRollout",
        dep(Read, &["name"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/ListRollouts",
        dep(Read, &["deployment"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/PromoteRollout",
        dep(Write, &["name"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/RollbackRollout",
        dep(Write, &["name"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/CreateAbTest",
        dep(Write, &["deployment"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/GetAbTest",
        dep(Read, &["name"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/ReportOutcome",
        dep(Write, &["ab_test"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/GetAbTestResults",
        dep(Read, &["name"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/ConcludeAbTest",
        dep(Write, &["name"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/Route",
        dep(Write, &["deployment"]),
    ),
    (
        "/steward.deployment.v1.DeploymentService/ExplainDecision",
        READ_ALL,
    ),
    (
        "/steward.deployment.v1.DeploymentService/GetDecision",
        READ_ALL,
    ),
    (
        "/steward.deployment.v1.DeploymentService/EraseDecisionInputs",
        ADMIN,
    ),
    // inference.GRPCInferenceService (model name = deployment id)
    ("/inference.GRPCInferenceService/ServerLive", AUTH),
    ("/inference.GRPCInferenceService/ServerReady", AUTH),
    ("/inference.GRPCInferenceService/ServerMetadata", AUTH),
    (
        "/inference.GRPCInferenceService/ModelReady",
        dep(Read, &["name"]),
    ),
    (
        "/inference.GRPCInferenceService/ModelMetadata",
        dep(Read, &["name"]),
    ),
    (
        "/inference.GRPCInferenceService/ModelInfer",
        dep(Write, &["model_name"]),
    ),
    // steward.monitoring.v1.MonitoringService
    (
        "/steward.monitoring.v1.MonitoringService/CreateBaseline",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/GetBaseline",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/ListBaselines",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/CreateMonitor",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/GetMonitor",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/ListMonitors",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/UpdateMonitor",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/DeleteMonitor",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/IngestPredictions",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/StreamPredictions",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/IngestFeedback",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/IngestKpis",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/ListWindows",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/GetDriftReport",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/GetPerformance",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/GetMetricSeries",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/CreateAlertRule",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/ListAlertRules",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/DeleteAlertRule",
        WRITE_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/ListAlerts",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/GetAlert",
        READ_ALL,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/CreateChannel",
        ADMIN,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/ListChannels",
        ADMIN,
    ),
    (
        "/steward.monitoring.v1.MonitoringService/DeleteChannel",
        ADMIN,
    ),
];

/// Reflection (both versions) needs an authenticated caller; health needs nothing.
const REFLECTION_PREFIXES: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The rule of method `path`; `None` (deny) for a method no rule names.
pub fn rule(path: &str) -> Option<Rule> {
    if REFLECTION_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return Some(AUTH);
    }
    RULES.iter().find(|(p, _)| *p == path).map(|(_, r)| *r)
}
