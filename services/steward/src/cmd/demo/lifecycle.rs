//! The demo's clients and state, and steps 2 to 5: the model production serves today, the best
//! run's model registered, approved and deployed to staging.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use steward_proto::deployment as dpb;
use steward_proto::inference as oip;
use steward_proto::registry as rpb;
use steward_proto::tracking as tpb;

use super::track::latest;
use super::{Endpoints, client_args, say};
use crate::cmd::deployments::split_text;
use crate::cmd::output::time;
use crate::cmd::registry_json::{approval, status};
use crate::cmd::{
    AuditClient, DeploymentClient, InferenceClient, MonitoringClient, RegistryClient,
    TrackingClient, audit_client, deployment_client, inference_client, monitoring_client,
    registry_client, status_err, tracking_client,
};

/// The registered model.
pub(super) const MODEL: &str = "registeredModels/fraud";
/// The staging deployment (`{model}-{env}`).
pub(super) const STAGING: &str = "deployments/fraud-staging";
/// The production deployment.
pub(super) const PRODUCTION: &str = "deployments/fraud-production";
/// The dataset every run trains on.
pub(super) const DATASET: &str = "transactions";
/// Who trains, registers and deploys.
const ALICE: &str = "alice";
/// Who reviews.
const BOB: &str = "bob";

/// A tracked training run.
#[derive(Clone, Default)]
pub(super) struct TrainedRun {
    /// Run name.
    pub name: String,
    /// `experiments/{e}/runs/{r}`.
    pub resource: String,
    /// Its final accuracy, as the server reports it.
    pub accuracy: f64,
}

/// The demo's clients (as alice, and the registry also as bob) and what the steps learn.
pub(super) struct Demo {
    pub tracking: TrackingClient,
    pub registry: RegistryClient,
    pub reviewer: RegistryClient,
    pub deploy: DeploymentClient,
    pub infer: InferenceClient,
    pub monitor: MonitoringClient,
    pub audit: AuditClient,
    /// The data dir (the audit export goes there).
    pub dir: PathBuf,
    /// `experiments/{e}`.
    pub experiment: String,
    /// `sha256:...` of the training data.
    pub digest: String,
    /// Every run, in creation order.
    pub runs: Vec<TrainedRun>,
    /// The best run (by accuracy).
    pub best: TrainedRun,
    /// The version production serves today (v1), and the best run's version (v2).
    pub current: String,
    pub candidate: String,
    /// `deployments/{d}/rollouts/{r}` of the canary rollout.
    pub rollout: String,
    /// ModelInfer requests sent to production so far (also the next row number).
    pub served: i64,
    /// A request the canary answered, to explain.
    pub canary_request: String,
}

impl Demo {
    /// Connects every client to its service.
    pub async fn connect(e: &Endpoints, dir: &Path) -> Result<Demo> {
        let alice = |url: &str| client_args(url, ALICE);
        Ok(Demo {
            tracking: tracking_client(&alice(&e.tracking)).await?,
            registry: registry_client(&alice(&e.registry)).await?,
            reviewer: registry_client(&client_args(&e.registry, BOB)).await?,
            deploy: deployment_client(&alice(&e.deployment)).await?,
            infer: inference_client(&alice(&e.deployment)).await?,
            monitor: monitoring_client(&alice(&e.monitoring)).await?,
            audit: audit_client(&alice(&e.registry)).await?,
            dir: dir.to_path_buf(),
            experiment: String::new(),
            digest: String::new(),
            runs: Vec::new(),
            best: TrainedRun::default(),
            current: String::new(),
            candidate: String::new(),
            rollout: String::new(),
            served: 0,
            canary_request: String::new(),
        })
    }

    /// Step 2: the linear baseline is v1, approved and serving in staging and production.
    pub async fn today(&mut self) -> Result<()> {
        self.registry
            .create_registered_model(rpb::CreateRegisteredModelRequest {
                registered_model: Some(rpb::RegisteredModel {
                    name: MODEL.into(),
                    description: "Card fraud score".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?;
        let baseline = self
            .runs
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no runs were tracked"))?;
        let v1 = self.register(&baseline).await?;
        let reviewed = self
            .review(&v1.name, "the current production model")
            .await?;
        say(format!(
            "{} from run {} (accuracy {:.4}), registered by {}, {} by {}",
            v1.name,
            baseline.name,
            baseline.accuracy,
            v1.creator,
            approval(reviewed.approval_state),
            reviewed.last_review.unwrap_or_default().reviewer
        ));
        for env in ["staging", "production"] {
            let d = self
                .deploy
                .create_deployment(dpb::CreateDeploymentRequest {
                    deployment: Some(dpb::Deployment {
                        registered_model: MODEL.into(),
                        environment: format!("environments/{env}"),
                        ..Default::default()
                    }),
                    variants: vec![variant("main", &v1.name, 10_000)],
                    shadow: None,
                    request_id: String::new(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            let rev = d.current_revision.unwrap_or_default();
            say(format!(
                "{:<28} revision {}: {}",
                d.name,
                rev.number,
                split_text(&rev)
            ));
        }
        self.current = v1.name;
        Ok(())
    }

    /// Registers the model under `run`'s `model/` as a new version.
    async fn register(&mut self, run: &TrainedRun) -> Result<rpb::ModelVersion> {
        Ok(self
            .registry
            .create_model_version(rpb::CreateModelVersionRequest {
                parent: MODEL.into(),
                model_version: Some(rpb::ModelVersion {
                    source_run: run.resource.clone(),
                    artifact_path: "model".into(),
                    format: "onnx".into(),
                    description: format!("{} (accuracy {:.4})", run.name, run.accuracy),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner())
    }

    /// Bob approves `version`.
    async fn review(&mut self, version: &str, comment: &str) -> Result<rpb::ModelVersion> {
        Ok(self
            .reviewer
            .review_model_version(rpb::ReviewModelVersionRequest {
                name: version.into(),
                decision: rpb::ApprovalState::Approved as i32,
                comment: comment.into(),
                etag: String::new(),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner())
    }

    /// Step 3: SearchRuns ranks the runs by accuracy; the best one's model becomes v2.
    pub async fn register_best(&mut self) -> Result<()> {
        let order_by = "metrics.accuracy desc";
        let filter = format!("datasets.name = '{DATASET}'");
        let found = self
            .tracking
            .search_runs(tpb::SearchRunsRequest {
                experiments: vec![self.experiment.clone()],
                filter: filter.clone(),
                order_by: order_by.into(),
                page_size: 10,
                ..Default::default()
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .runs;
        say(format!(
            "SearchRuns (filter \"{filter}\", order_by \"{order_by}\"):"
        ));
        for (i, r) in found.iter().enumerate() {
            say(format!(
                "  {}. {:<10}  accuracy {:.4}",
                i + 1,
                r.run_name,
                latest(r, "accuracy")?
            ));
        }
        let Some(best) = found.first() else {
            bail!("SearchRuns found no runs in {}", self.experiment);
        };
        self.best = TrainedRun {
            name: best.run_name.clone(),
            resource: best.name.clone(),
            accuracy: latest(best, "accuracy")?,
        };
        say(format!(
            "best run: {} (accuracy {:.4}), {}",
            self.best.name, self.best.accuracy, self.best.resource
        ));
        let best = self.best.clone();
        let v = self.register(&best).await?;
        say(format!(
            "registered {} by {}: {} {}, digest {}, approval {}",
            v.name,
            v.creator,
            v.format,
            status(v.status),
            v.content_digest,
            approval(v.approval_state)
        ));
        self.candidate = v.name;
        Ok(())
    }

    /// Step 4: production's policy wants approved versions; the creator may not approve her
    /// own, so bob does.
    pub async fn approve(&mut self) -> Result<()> {
        let envs = self
            .deploy
            .list_environments(dpb::ListEnvironmentsRequest {})
            .await
            .map_err(status_err)?
            .into_inner()
            .environments;
        for e in &envs {
            say(format!("policy of {}: {}", e.name, policy_text(e)));
        }
        let candidate = self.candidate.clone();
        match self
            .registry
            .review_model_version(rpb::ReviewModelVersionRequest {
                name: candidate.clone(),
                decision: rpb::ApprovalState::Approved as i32,
                comment: "looks good to me".into(),
                etag: String::new(),
                request_id: String::new(),
            })
            .await
        {
            Ok(_) => bail!("{ALICE} approved her own version {candidate}"),
            Err(s) => say(format!(
                "{ALICE} may not approve her own version: {:?}: {}",
                s.code(),
                s.message()
            )),
        }
        let comment = format!(
            "accuracy {:.4} beats the baseline's {:.4} on {DATASET}",
            self.best.accuracy,
            self.runs.first().map_or(0.0, |r| r.accuracy)
        );
        let v = self.review(&candidate, &comment).await?;
        let r = v.last_review.unwrap_or_default();
        say(format!(
            "{} {} by {} at {} (\"{}\")",
            v.name,
            approval(v.approval_state),
            r.reviewer,
            time(&r.time),
            r.comment
        ));
        Ok(())
    }

    /// Step 5: production refuses the version until it ran in staging; it joins staging as a
    /// challenger beside the current model.
    pub async fn staging(&mut self) -> Result<()> {
        match self
            .deploy
            .start_rollout(dpb::StartRolloutRequest {
                deployment: PRODUCTION.into(),
                model_version: self.candidate.clone(),
                steps: vec![dpb::RolloutStep {
                    weight_bp: 10_000,
                    bake: None,
                }],
                ..Default::default()
            })
            .await
        {
            Ok(_) => bail!("production accepted {} before staging", self.candidate),
            Err(s) => say(format!(
                "production refuses it before staging: {:?}: {}",
                s.code(),
                s.message()
            )),
        }
        let d = self
            .deploy
            .apply_revision(dpb::ApplyRevisionRequest {
                deployment: STAGING.into(),
                variants: vec![
                    variant("main", &self.current, 5_000),
                    variant("challenger", &self.candidate, 5_000),
                ],
                shadow: None,
                reason: "challenger beside main".into(),
                etag: String::new(),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        let rev = d.current_revision.unwrap_or_default();
        say(format!(
            "{} revision {} by {} (\"{}\"): {}",
            d.name,
            rev.number,
            rev.creator,
            rev.reason,
            split_text(&rev)
        ));
        let ready = self
            .infer
            .model_ready(oip::ModelReadyRequest {
                name: STAGING.into(),
                version: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .ready;
        if !ready {
            bail!("{STAGING} cannot load its models");
        }
        say(format!(
            "ModelReady {STAGING}: ready (both ONNX models loaded)"
        ));
        Ok(())
    }
}

/// A variant serving `version` with `weight_bp`.
pub(super) fn variant(name: &str, version: &str, weight_bp: i32) -> dpb::Variant {
    dpb::Variant {
        name: name.into(),
        model_version: version.into(),
        weight_bp,
        ..Default::default()
    }
}

/// An environment's policy in words.
fn policy_text(e: &dpb::Environment) -> String {
    let p = e.policy.clone().unwrap_or_default();
    let mut rules = Vec::new();
    if p.require_approved {
        rules.push("APPROVED versions only".to_string());
    }
    if !p.require_previous_environment.is_empty() {
        rules.push(format!(
            "deployed in environments/{} first",
            p.require_previous_environment
                .trim_start_matches("environments/")
        ));
    }
    if rules.is_empty() {
        "none".into()
    } else {
        rules.join(", ")
    }
}

/// The first 12 characters of a digest, for lines that only identify it.
pub(super) fn short(hex: &str) -> String {
    let h = hex.strip_prefix("sha256:").unwrap_or(hex);
    format!("{}…", &h[..h.len().min(12)])
}
