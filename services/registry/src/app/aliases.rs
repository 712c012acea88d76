//! Alias use cases: set/move, delete, history.

use steward_common::Error;
use steward_common::names::{VersionRef, version_name};
use steward_proto::events::{AliasMoved, event_envelope::Payload};
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{
    Ctx, Registry, SERVICE, audit, canonical, emit, model_name, model_not_found, remember, replay,
};
use crate::domain::AliasMove;
use crate::domain::policy;
use crate::store::{aliases, models, policies, versions};

fn moved(mv: &AliasMove) -> Payload {
    Payload::AliasMoved(AliasMoved {
        registered_model: model_name(&mv.model),
        alias: mv.alias.clone(),
        version: mv.version,
        previous_version: mv.previous_version,
    })
}

/// Options of ListAliasHistory.
#[derive(Debug, Clone)]
pub struct AliasHistoryQuery {
    /// Model id.
    pub model: String,
    /// Only this alias.
    pub alias: Option<String>,
    /// Only the move in force at this time (ms).
    pub as_of: Option<i64>,
    /// Page size.
    pub page_size: usize,
    /// Resume before this history id.
    pub before_id: Option<i64>,
}

impl Registry {
    /// Points `alias` of `model` at `version`, after checking the model's policy.
    pub async fn set_alias(
        &self,
        ctx: &Ctx,
        model: &str,
        alias: &str,
        version: i64,
        request_id: &str,
    ) -> Result<AliasMove, Error> {
        let key = IdemKey::new(
            SERVICE,
            "SetModelVersionAlias",
            request_id,
            &canonical(&(model, alias, version)),
        )?;
        let mv = with_write_tx!(self.db, "set_alias", |tx| {
            if let Some(v) = replay::<AliasMove>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            if models::get_row(&*tx, model).await?.is_none() {
                return Err(model_not_found(model));
            }
            let target = versions::get_full(&*tx, model, version)
                .await?
                .ok_or_else(|| {
                    Error::not_found("MODEL_VERSION_NOT_FOUND", version_name(model, version))
                        .with_violation("version", "no such version of the model")
                })?;
            let lineage = versions::lineage(&*tx, model, version)
                .await?
                .unwrap_or_default();
            let pol = policies::get_policy(&*tx, model).await?;
            policy::check_alias(&pol, alias, &target, &lineage)?;
            let previous = aliases::target(&*tx, model, alias).await?.unwrap_or(0);
            let mv = AliasMove {
                model: model.to_string(),
                alias: alias.to_string(),
                version,
                previous_version: previous,
                actor: ctx.actor.clone(),
                time: steward_common::time::now_ms(),
                request_id: request_id.to_string(),
            };
            if previous != version {
                aliases::upsert(&tx, &mv).await?;
                aliases::record_move(&tx, &mv).await?;
                audit(
                    &tx,
                    ctx,
                    "registry.aliases.set",
                    format!("{}@{alias}", model_name(model)),
                    request_id,
                    (previous != 0).then_some(&previous),
                    Some(&version),
                )
                .await?;
                emit(
                    &tx,
                    ctx,
                    "registry.alias.moved",
                    format!("{}@{alias}", model_name(model)),
                    moved(&mv),
                )
                .await?;
            }
            remember(&tx, key.as_ref(), &mv).await?;
            Ok(mv)
        })?;
        self.cache.invalidate(model, true).await;
        Ok(mv)
    }

    /// Removes an alias.
    pub async fn delete_alias(
        &self,
        ctx: &Ctx,
        model: &str,
        alias: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        let key = IdemKey::new(
            SERVICE,
            "DeleteModelVersionAlias",
            request_id,
            &canonical(&(model, alias)),
        )?;
        with_write_tx!(self.db, "delete_alias", |tx| {
            if replay::<()>(&tx, key.as_ref()).await?.is_some() {
                return Ok(());
            }
            let previous = aliases::target(&*tx, model, alias).await?.ok_or_else(|| {
                Error::not_found(
                    "ALIAS_NOT_FOUND",
                    VersionRef::Alias(
                        steward_common::names::ModelId::from_stored(model.into()),
                        alias.into(),
                    ),
                )
            })?;
            let mv = AliasMove {
                model: model.to_string(),
                alias: alias.to_string(),
                version: 0,
                previous_version: previous,
                actor: ctx.actor.clone(),
                time: steward_common::time::now_ms(),
                request_id: request_id.to_string(),
            };
            aliases::delete(&tx, model, alias).await?;
            aliases::record_move(&tx, &mv).await?;
            audit(
                &tx,
                ctx,
                "registry.aliases.delete",
                format!("{}@{alias}", model_name(model)),
                request_id,
                Some(&previous),
                None::<&()>,
            )
            .await?;
            emit(
                &tx,
                ctx,
                "registry.alias.moved",
                format!("{}@{alias}", model_name(model)),
                moved(&mv),
            )
            .await?;
            remember(&tx, key.as_ref(), &()).await?;
            Ok(())
        })?;
        self.cache.invalidate(model, true).await;
        Ok(())
    }

    /// Alias history, newest first; the last element's id pages on.
    pub async fn alias_history(
        &self,
        q: AliasHistoryQuery,
    ) -> Result<Vec<(i64, AliasMove)>, Error> {
        let c = self.db.conn();
        if models::get_row(c, &q.model).await?.is_none() {
            return Err(model_not_found(&q.model));
        }
        let limit = if q.as_of.is_some() { 1 } else { q.page_size };
        aliases::history(c, &q.model, q.alias.as_deref(), q.as_of, q.before_id, limit).await
    }
}
