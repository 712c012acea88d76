//! Deployment and revision use cases, with environment policies.

use steward_common::Error;
use steward_proto::events::{RevisionApplied, event_envelope::Payload};
use steward_storage::idempotency::IdemKey;
use steward_storage::{WriteTx, with_write_tx};

use super::environments::env_not_found;
use super::{
    Ctx, Deployments, SERVICE, audit, canonical, check_etag, dep_name, dep_not_found, emit,
    remember, replay,
};
use crate::domain::{Deployment, Environment, Revision, Variant, check_variants};
use crate::store::{deployments as store, environments};

/// A variant as requested (before resolution).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VariantSpec {
    /// Name.
    pub name: String,
    /// Version reference.
    pub model_version: String,
    /// Weight.
    pub weight_bp: i32,
    /// Upstream OIP endpoint.
    pub upstream_url: String,
}

/// Input of CreateDeployment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewDeployment {
    /// Id (empty: `{model}-{environment}`).
    pub id: String,
    /// Model id.
    pub model: String,
    /// Environment.
    pub environment: String,
    /// Variants.
    pub variants: Vec<VariantSpec>,
    /// Shadow.
    pub shadow: Option<VariantSpec>,
}

/// A deployment with its current revision.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeploymentView {
    /// The deployment.
    pub deployment: Deployment,
    /// Its current revision.
    pub revision: Revision,
}

fn model_version_name(model: &str, v: i64) -> String {
    format!("registeredModels/{model}/versions/{v}")
}

impl Deployments {
    /// Resolves and pins variant specs against the registry; every version must belong to
    /// `model` and be READY.
    pub(crate) async fn resolve_variants(
        &self,
        model: &str,
        specs: &[VariantSpec],
        field: &str,
    ) -> Result<Vec<Variant>, Error> {
        let mut out = Vec::with_capacity(specs.len());
        for (i, s) in specs.iter().enumerate() {
            let f = format!("{field}[{i}].model_version");
            let r = self.peers.resolve(&s.model_version, &f).await?;
            if r.model != model {
                return Err(Error::invalid_field(
                    f,
                    format!(
                        "{} is not a version of registeredModels/{model}",
                        s.model_version
                    ),
                ));
            }
            if r.status != "READY" {
                return Err(Error::failed_precondition(
                    "VERSION_NOT_READY",
                    format!(
                        "{} is {}; only READY versions are deployed",
                        model_version_name(model, r.version),
                        r.status
                    ),
                ));
            }
            out.push(Variant {
                name: s.name.clone(),
                model_version: s.model_version.clone(),
                version: r.version,
                weight_bp: s.weight_bp,
                artifact_uri: r.artifact_uri,
                format: r.format,
                content_digest: r.content_digest,
                upstream_url: s.upstream_url.clone(),
                source_run: r.source_run,
                artifact_path: r.artifact_path,
            });
        }
        Ok(out)
    }

    /// Checks an environment's policy for the versions of a revision.
    pub(crate) async fn check_policy(
        &self,
        env: &Environment,
        model: &str,
        variants: &[&Variant],
    ) -> Result<(), Error> {
        for v in variants {
            let name = model_version_name(model, v.version);
            if env.require_approved {
                let r = self.peers.resolve(&name, "variants").await?;
                if r.approval != "APPROVED" {
                    return Err(Error::failed_precondition(
                        "POLICY_VIOLATION",
                        format!(
                            "environments/{} accepts only APPROVED versions; {name} is {}",
                            env.name, r.approval
                        ),
                    )
                    .with_metadata("rule", "require_approved"));
                }
            }
            if env.require_reproducible {
                let gaps = self.peers.reproducibility_gaps(&name).await?;
                if !gaps.is_empty() {
                    return Err(Error::failed_precondition(
                        "POLICY_VIOLATION",
                        format!(
                            "environments/{} accepts only versions with a complete reproducibility manifest; {name} lacks: {}",
                            env.name,
                            gaps.join("; ")
                        ),
                    )
                    .with_metadata("rule", "require_reproducible"));
                }
            }
            if !env.require_previous_env.is_empty()
                && !store::served_in(self.db.conn(), model, v.version, &env.require_previous_env)
                    .await?
            {
                return Err(Error::failed_precondition(
                    "POLICY_VIOLATION",
                    format!(
                        "environments/{} accepts only versions that ran in environments/{} first; {name} did not",
                        env.name, env.require_previous_env
                    ),
                )
                .with_metadata("rule", "require_previous_environment"));
            }
        }
        Ok(())
    }

    /// Applies a revision inside `tx`: stores it, moves the deployment to it, audits and emits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_in(
        &self,
        tx: &WriteTx,
        ctx: &Ctx,
        d: &mut Deployment,
        variants: Vec<Variant>,
        shadow: Option<Variant>,
        reason: String,
        request_id: &str,
    ) -> Result<Revision, Error> {
        let now = steward_common::time::now_ms();
        let before = d.clone();
        let rev = Revision {
            deployment: d.id.clone(),
            number: d.current_revision + 1,
            variants,
            shadow,
            reason,
            creator: ctx.actor.clone(),
            create_time: now,
        };
        store::insert_revision(tx, &rev, &d.model, &d.environment).await?;
        d.current_revision = rev.number;
        d.update_time = now;
        d.revision += 1;
        store::update(tx, d).await?;
        audit(
            tx,
            ctx,
            "deployment.revisions.apply",
            format!("{}/revisions/{}", dep_name(&d.id), rev.number),
            request_id,
            Some(&before.current_revision),
            Some(&rev),
        )
        .await?;
        emit(
            tx,
            ctx,
            "deployment.revision.applied",
            dep_name(&d.id),
            Payload::RevisionApplied(RevisionApplied {
                deployment: dep_name(&d.id),
                registered_model: format!("registeredModels/{}", d.model),
                environment: format!("environments/{}", d.environment),
                revision: rev.number,
                model_versions: rev
                    .variants
                    .iter()
                    .chain(rev.shadow.iter())
                    .map(|v| model_version_name(&d.model, v.version))
                    .collect(),
                reason: rev.reason.clone(),
            }),
        )
        .await?;
        Ok(rev)
    }

    /// Creates a deployment with its first revision.
    pub async fn create_deployment(
        &self,
        ctx: &Ctx,
        req: NewDeployment,
        request_id: &str,
    ) -> Result<DeploymentView, Error> {
        let key = IdemKey::new(SERVICE, "CreateDeployment", request_id, &canonical(&req))?;
        let env = environments::get_one(self.db.conn(), &req.environment)
            .await?
            .ok_or_else(|| {
                env_not_found(&req.environment)
                    .with_violation("deployment.environment", "no such environment")
            })?;
        let variants = self
            .resolve_variants(&req.model, &req.variants, "variants")
            .await?;
        check_variants(&variants, "variants")?;
        let shadow = match &req.shadow {
            Some(s) => Some(
                self.resolve_variants(&req.model, std::slice::from_ref(s), "shadow")
                    .await?
                    .remove(0),
            ),
            None => None,
        };
        let all: Vec<&Variant> = variants.iter().chain(shadow.iter()).collect();
        self.check_policy(&env, &req.model, &all).await?;
        let id = if req.id.is_empty() {
            format!("{}-{}", req.model, req.environment)
        } else {
            req.id.clone()
        };
        let view = with_write_tx!(self.db, "create_deployment", |tx| {
            if let Some(v) = replay::<DeploymentView>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let now = steward_common::time::now_ms();
            let mut d = Deployment {
                id: id.clone(),
                model: req.model.clone(),
                environment: req.environment.clone(),
                current_revision: 0,
                active_rollout: String::new(),
                active_ab_test: String::new(),
                creator: ctx.actor.clone(),
                create_time: now,
                update_time: now,
                revision: 0,
            };
            store::insert(&tx, &d).await?;
            audit(
                &tx,
                ctx,
                "deployment.deployments.create",
                dep_name(&id),
                request_id,
                None::<&()>,
                Some(&d),
            )
            .await?;
            let rev = self
                .apply_in(
                    &tx,
                    ctx,
                    &mut d,
                    variants.clone(),
                    shadow.clone(),
                    "create".into(),
                    request_id,
                )
                .await?;
            let v = DeploymentView {
                deployment: d,
                revision: rev,
            };
            remember(&tx, key.as_ref(), &v).await?;
            Ok(v)
        })?;
        self.revisions.invalidate(&view.deployment.id);
        Ok(view)
    }

    /// A deployment with its current revision.
    pub async fn get_deployment(&self, id: &str) -> Result<DeploymentView, Error> {
        let c = self.db.conn();
        let d = store::get_one(c, id)
            .await?
            .ok_or_else(|| dep_not_found(id))?;
        let revision = store::revision(c, id, d.current_revision)
            .await?
            .ok_or_else(|| Error::internal("current revision missing"))?;
        Ok(DeploymentView {
            deployment: d,
            revision,
        })
    }

    /// Lists deployments.
    pub async fn list_deployments(
        &self,
        model: Option<&str>,
        environment: Option<&str>,
        served: Option<(&str, i64)>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeploymentView>, Error> {
        let c = self.db.conn();
        let mut out = Vec::new();
        for d in store::list(c, model, environment, served, after, limit).await? {
            let revision = store::revision(c, &d.id, d.current_revision)
                .await?
                .ok_or_else(|| Error::internal("current revision missing"))?;
            out.push(DeploymentView {
                deployment: d,
                revision,
            });
        }
        Ok(out)
    }

    /// Applies a new revision.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_revision(
        &self,
        ctx: &Ctx,
        id: &str,
        specs: Vec<VariantSpec>,
        shadow: Option<VariantSpec>,
        reason: &str,
        etag: &str,
        request_id: &str,
    ) -> Result<DeploymentView, Error> {
        let key = IdemKey::new(
            SERVICE,
            "ApplyRevision",
            request_id,
            &canonical(&(id, &specs, &shadow, reason, etag)),
        )?;
        let d0 = store::get_one(self.db.conn(), id)
            .await?
            .ok_or_else(|| dep_not_found(id))?;
        let env = environments::get_one(self.db.conn(), &d0.environment)
            .await?
            .ok_or_else(|| env_not_found(&d0.environment))?;
        let variants = self.resolve_variants(&d0.model, &specs, "variants").await?;
        check_variants(&variants, "variants")?;
        let shadow = match &shadow {
            Some(s) => Some(
                self.resolve_variants(&d0.model, std::slice::from_ref(s), "shadow")
                    .await?
                    .remove(0),
            ),
            None => None,
        };
        let all: Vec<&Variant> = variants.iter().chain(shadow.iter()).collect();
        self.check_policy(&env, &d0.model, &all).await?;
        let view = with_write_tx!(self.db, "apply_revision", |tx| {
            if let Some(v) = replay::<DeploymentView>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let mut d = store::get_one(&*tx, id)
                .await?
                .ok_or_else(|| dep_not_found(id))?;
            check_etag(etag, d.revision, &dep_name(id))?;
            if !d.active_rollout.is_empty() {
                return Err(Error::failed_precondition(
                    "ROLLOUT_RUNNING",
                    format!(
                        "{}/rollouts/{} is running; promote or roll it back first",
                        dep_name(id),
                        d.active_rollout
                    ),
                ));
            }
            let why = if reason.is_empty() {
                "apply".to_string()
            } else {
                reason.to_string()
            };
            let rev = self
                .apply_in(
                    &tx,
                    ctx,
                    &mut d,
                    variants.clone(),
                    shadow.clone(),
                    why,
                    request_id,
                )
                .await?;
            let v = DeploymentView {
                deployment: d,
                revision: rev,
            };
            remember(&tx, key.as_ref(), &v).await?;
            Ok(v)
        })?;
        self.revisions.invalidate(id);
        Ok(view)
    }

    /// Revisions, newest first.
    pub async fn list_revisions(
        &self,
        id: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Revision>, Error> {
        if store::get_one(self.db.conn(), id).await?.is_none() {
            return Err(dep_not_found(id));
        }
        store::revisions(self.db.conn(), id, before, limit).await
    }

    /// Re-applies revision `number`'s variants as a new revision.
    pub async fn rollback(
        &self,
        ctx: &Ctx,
        id: &str,
        number: i64,
        reason: &str,
        request_id: &str,
    ) -> Result<DeploymentView, Error> {
        let key = IdemKey::new(
            SERVICE,
            "RollbackDeployment",
            request_id,
            &canonical(&(id, number, reason)),
        )?;
        let view = with_write_tx!(self.db, "rollback_deployment", |tx| {
            if let Some(v) = replay::<DeploymentView>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let mut d = store::get_one(&*tx, id)
                .await?
                .ok_or_else(|| dep_not_found(id))?;
            if !d.active_rollout.is_empty() {
                return Err(Error::failed_precondition(
                    "ROLLOUT_RUNNING",
                    format!(
                        "{}/rollouts/{} is running; roll the rollout back instead",
                        dep_name(id),
                        d.active_rollout
                    ),
                ));
            }
            let target = store::revision(&*tx, id, number).await?.ok_or_else(|| {
                Error::not_found(
                    "REVISION_NOT_FOUND",
                    format!("{}/revisions/{number}", dep_name(id)),
                )
                .with_violation("revision", "no such revision")
            })?;
            let why = if reason.is_empty() {
                format!("rollback to {number}")
            } else {
                format!("rollback to {number}: {reason}")
            };
            let rev = self
                .apply_in(
                    &tx,
                    ctx,
                    &mut d,
                    target.variants,
                    target.shadow,
                    why,
                    request_id,
                )
                .await?;
            let v = DeploymentView {
                deployment: d,
                revision: rev,
            };
            remember(&tx, key.as_ref(), &v).await?;
            Ok(v)
        })?;
        self.revisions.invalidate(id);
        Ok(view)
    }

    /// Deletes a deployment (refused while a rollout or A/B test runs on it).
    pub async fn delete_deployment(
        &self,
        ctx: &Ctx,
        id: &str,
        etag: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        let key = IdemKey::new(
            SERVICE,
            "DeleteDeployment",
            request_id,
            &canonical(&(id, etag)),
        )?;
        with_write_tx!(self.db, "delete_deployment", |tx| {
            if replay::<()>(&tx, key.as_ref()).await?.is_some() {
                return Ok(());
            }
            let d = store::get_one(&*tx, id)
                .await?
                .ok_or_else(|| dep_not_found(id))?;
            check_etag(etag, d.revision, &dep_name(id))?;
            if !d.active_rollout.is_empty() || !d.active_ab_test.is_empty() {
                return Err(Error::failed_precondition(
                    "DEPLOYMENT_BUSY",
                    format!("{} has a running rollout or A/B test", dep_name(id)),
                ));
            }
            store::delete(&tx, id).await?;
            audit(
                &tx,
                ctx,
                "deployment.deployments.delete",
                dep_name(id),
                request_id,
                Some(&d),
                None::<&()>,
            )
            .await?;
            remember(&tx, key.as_ref(), &()).await?;
            Ok(())
        })?;
        self.revisions.invalidate(id);
        Ok(())
    }
}
