//! Environment use cases.

use steward_common::Error;
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{Ctx, Deployments, SERVICE, audit, canonical, check_etag, remember, replay};
use crate::domain::Environment;
use crate::store::environments as store;

/// Fields an update touches.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EnvironmentPatch {
    /// Order.
    pub order: Option<i64>,
    /// Description.
    pub description: Option<String>,
    /// Policy (require_approved, require_previous_env, require_reproducible).
    pub policy: Option<(bool, String, bool)>,
    /// Upstream.
    pub upstream_url: Option<String>,
}

fn env_name(n: &str) -> String {
    format!("environments/{n}")
}

/// `NOT_FOUND` for an environment.
pub(crate) fn env_not_found(n: &str) -> Error {
    Error::not_found("ENVIRONMENT_NOT_FOUND", env_name(n))
}

impl Deployments {
    /// Creates an environment.
    pub async fn create_environment(
        &self,
        ctx: &Ctx,
        e: Environment,
        request_id: &str,
    ) -> Result<Environment, Error> {
        let key = IdemKey::new(SERVICE, "CreateEnvironment", request_id, &canonical(&e))?;
        with_write_tx!(self.db, "create_environment", |tx| {
            if let Some(v) = replay::<Environment>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            if !e.require_previous_env.is_empty()
                && store::get_one(&*tx, &e.require_previous_env)
                    .await?
                    .is_none()
            {
                return Err(env_not_found(&e.require_previous_env).with_violation(
                    "environment.policy.require_previous_environment",
                    "no such environment",
                ));
            }
            let now = steward_common::time::now_ms();
            let e = Environment {
                create_time: now,
                update_time: now,
                revision: 1,
                ..e.clone()
            };
            store::insert(&tx, &e).await?;
            audit(
                &tx,
                ctx,
                "deployment.environments.create",
                env_name(&e.name),
                request_id,
                None::<&()>,
                Some(&e),
            )
            .await?;
            remember(&tx, key.as_ref(), &e).await?;
            Ok(e)
        })
    }

    /// One environment.
    pub async fn get_environment(&self, name: &str) -> Result<Environment, Error> {
        store::get_one(self.db.conn(), name)
            .await?
            .ok_or_else(|| env_not_found(name))
    }

    /// Every environment in promotion order.
    pub async fn list_environments(&self) -> Result<Vec<Environment>, Error> {
        store::list(self.db.conn()).await
    }

    /// Updates an environment.
    pub async fn update_environment(
        &self,
        ctx: &Ctx,
        name: &str,
        patch: EnvironmentPatch,
        etag: &str,
        request_id: &str,
    ) -> Result<Environment, Error> {
        let key = IdemKey::new(
            SERVICE,
            "UpdateEnvironment",
            request_id,
            &canonical(&(name, &patch, etag)),
        )?;
        with_write_tx!(self.db, "update_environment", |tx| {
            if let Some(v) = replay::<Environment>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let before = store::get_one(&*tx, name)
                .await?
                .ok_or_else(|| env_not_found(name))?;
            check_etag(etag, before.revision, &env_name(name))?;
            let mut e = before.clone();
            if let Some(o) = patch.order {
                e.order = o;
            }
            if let Some(d) = &patch.description {
                e.description = d.clone();
            }
            if let Some((approved, prev, reproducible)) = &patch.policy {
                if !prev.is_empty() && (prev == name || store::get_one(&*tx, prev).await?.is_none())
                {
                    return Err(Error::invalid_field(
                        "environment.policy.require_previous_environment",
                        format!("{prev:?} is not another existing environment"),
                    ));
                }
                e.require_approved = *approved;
                e.require_previous_env = prev.clone();
                e.require_reproducible = *reproducible;
            }
            if let Some(u) = &patch.upstream_url {
                e.upstream_url = u.clone();
            }
            e.update_time = steward_common::time::now_ms();
            e.revision += 1;
            store::update(&tx, &e).await?;
            audit(
                &tx,
                ctx,
                "deployment.environments.update",
                env_name(name),
                request_id,
                Some(&before),
                Some(&e),
            )
            .await?;
            remember(&tx, key.as_ref(), &e).await?;
            Ok(e)
        })
    }
}
