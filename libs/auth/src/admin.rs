//! Managing keys and grants: each change is one transaction with its audit record (actor =
//! the authenticated principal) and, when a `request_id` is given, its idempotency record.

use serde::{Deserialize, Serialize};
use steward_common::Error;
use steward_common::time::now_ms;
use steward_storage::idempotency::IdemKey;
use steward_storage::ops::{Ctx, audit, canonical, remember, replay};
use steward_storage::{Db, with_write_tx};

use crate::key::{self, check_principal};
use crate::role::Role;
use crate::scope::is_grantable;
use crate::store::{self, GrantRow, KeyRow};

/// A key to create.
#[derive(Debug, Clone, Serialize)]
pub struct NewKeyRequest {
    /// Who it authenticates.
    pub principal: String,
    /// 1 user, 2 service.
    pub kind: i16,
    /// Free text.
    pub description: String,
    /// Expiry (ms since the epoch), if any.
    pub expire_time: Option<i64>,
    /// Also grant this role globally.
    pub role: Option<Role>,
}

/// A created key; `secret` is empty when this is the replay of a retried request (the secret
/// is never stored, so it cannot be shown twice).
#[derive(Clone, Serialize, Deserialize)]
pub struct CreatedKey {
    /// The stored key.
    pub key: KeyRow,
    /// `stw_{id}_{secret}`, or empty on replay.
    #[serde(skip)]
    pub secret: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Key and grant management over the shared tables, audited on `service`'s chain.
#[derive(Clone, Debug)]
pub struct AuthAdmin {
    db: Db,
    service: &'static str,
}

impl AuthAdmin {
    /// Over `db`, auditing as `service` (the registry, which owns the tables).
    pub fn new(db: Db, service: &'static str) -> Self {
        Self { db, service }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Creates a key (and, with `role`, a global grant of it).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` naming `principal`, `kind`, `expire_time` or `request_id`.
    pub async fn create_key(
        &self,
        ctx: &Ctx,
        req: NewKeyRequest,
        request_id: &str,
    ) -> Result<CreatedKey, Error> {
        check_principal(&req.principal, "principal")?;
        if !matches!(req.kind, 1 | 2) {
            return Err(Error::invalid_field(
                "kind",
                "must be KEY_KIND_USER or KEY_KIND_SERVICE",
            ));
        }
        let now = now_ms();
        if req.expire_time.is_some_and(|t| t <= now) {
            return Err(Error::invalid_field("expire_time", "must be in the future"));
        }
        if req.description.chars().count() > 1024 {
            return Err(Error::invalid_field(
                "description",
                "must be at most 1024 characters",
            ));
        }
        let idem = IdemKey::new(self.service, "CreateApiKey", request_id, &canonical(&req))?;
        let new = key::generate();
        let row = KeyRow {
            id: new.id.clone(),
            principal: req.principal.clone(),
            kind: req.kind,
            secret_hash: new.secret_hash.clone(),
            description: req.description.clone(),
            creator: ctx.actor.clone(),
            create_time: now,
            expire_time: req.expire_time,
            revoke_time: None,
        };
        let service = self.service;
        with_write_tx!(self.db, "auth.create_key", |tx| {
            if let Some(key) = replay::<KeyRow>(&tx, idem.as_ref()).await? {
                return Ok(CreatedKey {
                    key,
                    secret: String::new(),
                });
            }
            store::insert_key(&tx, &row).await?;
            let name = format!("apiKeys/{}", row.id);
            audit(
                &tx,
                service,
                ctx,
                "auth.keys.create",
                name,
                request_id,
                None::<&()>,
                Some(&row),
            )
            .await?;
            if let Some(role) = req.role {
                let g = GrantRow {
                    principal: row.principal.clone(),
                    resource: "*".into(),
                    role: role.as_str().into(),
                    creator: ctx.actor.clone(),
                    create_time: now,
                };
                put_grant(&tx, service, ctx, &g, request_id).await?;
            }
            remember(&tx, idem.as_ref(), &row).await?;
            Ok(CreatedKey {
                key: row.clone(),
                secret: new.secret.clone(),
            })
        })
    }

    /// Revokes `apiKeys/{id}`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (`name`), `NOT_FOUND` (`API_KEY_NOT_FOUND`).
    pub async fn revoke_key(
        &self,
        ctx: &Ctx,
        name: &str,
        request_id: &str,
    ) -> Result<KeyRow, Error> {
        let id = name
            .strip_prefix("apiKeys/")
            .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                Error::invalid_field(
                    "name",
                    format!("{name:?} is not of the form apiKeys/{{16 hex digits}}"),
                )
            })?
            .to_owned();
        let idem = IdemKey::new(self.service, "RevokeApiKey", request_id, &canonical(&id))?;
        let service = self.service;
        with_write_tx!(self.db, "auth.revoke_key", |tx| {
            if let Some(k) = replay::<KeyRow>(&tx, idem.as_ref()).await? {
                return Ok(k);
            }
            let Some(before) = store::key(&*tx, &id).await? else {
                return Err(Error::not_found(
                    "API_KEY_NOT_FOUND",
                    format!("apiKeys/{id}"),
                ));
            };
            store::revoke_key(&tx, &id, now_ms()).await?;
            let after = store::key(&*tx, &id)
                .await?
                .unwrap_or_else(|| before.clone());
            if before.revoke_time.is_none() {
                audit(
                    &tx,
                    service,
                    ctx,
                    "auth.keys.revoke",
                    format!("apiKeys/{id}"),
                    request_id,
                    Some(&before),
                    Some(&after),
                )
                .await?;
            }
            remember(&tx, idem.as_ref(), &after).await?;
            Ok(after)
        })
    }

    /// Grants `role` on `resource` to `principal` (replacing an earlier role there).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` naming `grant.principal`, `grant.role` or `grant.resource`.
    pub async fn grant(
        &self,
        ctx: &Ctx,
        principal: &str,
        role: &str,
        resource: &str,
        request_id: &str,
    ) -> Result<GrantRow, Error> {
        check_principal(principal, "grant.principal")?;
        let role = Role::parse(role, "grant.role")?;
        let resource = if resource.is_empty() { "*" } else { resource };
        if !is_grantable(resource) {
            return Err(Error::invalid_field(
                "grant.resource",
                format!(
                    "{resource:?} is not `*`, experiments/{{e}}, registeredModels/{{m}} or deployments/{{d}}"
                ),
            ));
        }
        let g = GrantRow {
            principal: principal.to_owned(),
            resource: resource.to_owned(),
            role: role.as_str().to_owned(),
            creator: ctx.actor.clone(),
            create_time: now_ms(),
        };
        let idem = IdemKey::new(
            self.service,
            "CreateGrant",
            request_id,
            &canonical(&(&g.principal, &g.resource, &g.role)),
        )?;
        let service = self.service;
        with_write_tx!(self.db, "auth.grant", |tx| {
            if let Some(g) = replay::<GrantRow>(&tx, idem.as_ref()).await? {
                return Ok(g);
            }
            put_grant(&tx, service, ctx, &g, request_id).await?;
            remember(&tx, idem.as_ref(), &g).await?;
            Ok(g.clone())
        })
    }

    /// Removes the grant of `principal` on `resource`.
    ///
    /// # Errors
    /// `NOT_FOUND` (`GRANT_NOT_FOUND`).
    pub async fn revoke_grant(
        &self,
        ctx: &Ctx,
        principal: &str,
        resource: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        check_principal(principal, "principal")?;
        let resource = if resource.is_empty() { "*" } else { resource };
        let idem = IdemKey::new(
            self.service,
            "DeleteGrant",
            request_id,
            &canonical(&(principal, resource)),
        )?;
        let service = self.service;
        with_write_tx!(self.db, "auth.revoke_grant", |tx| {
            if replay::<()>(&tx, idem.as_ref()).await?.is_some() {
                return Ok(());
            }
            let Some(before) = store::grant(&*tx, principal, resource).await? else {
                return Err(Error::not_found(
                    "GRANT_NOT_FOUND",
                    format!("{principal} on {resource}"),
                ));
            };
            store::delete_grant(&tx, principal, resource).await?;
            audit(
                &tx,
                service,
                ctx,
                "auth.grants.delete",
                grant_name(&before),
                request_id,
                Some(&before),
                None::<&()>,
            )
            .await?;
            remember(&tx, idem.as_ref(), &()).await?;
            Ok(())
        })
    }
}

/// Stores `g` (replacing the principal's role on its resource) with its audit record, in `tx`.
async fn put_grant(
    tx: &steward_storage::WriteTx,
    service: &'static str,
    ctx: &Ctx,
    g: &GrantRow,
    request_id: &str,
) -> Result<(), Error> {
    let before = store::grant(&**tx, &g.principal, &g.resource).await?;
    store::upsert_grant(tx, g).await?;
    audit(
        tx,
        service,
        ctx,
        "auth.grants.create",
        grant_name(g),
        request_id,
        before.as_ref(),
        Some(g),
    )
    .await
}

/// The audit resource of a grant: `grants/{principal}/{resource}`.
fn grant_name(g: &GrantRow) -> String {
    format!("grants/{}/{}", g.principal, g.resource)
}
