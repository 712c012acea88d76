//! Registered model use cases.

use std::collections::BTreeMap;

use steward_common::Error;
use steward_common::filter::{self, Attr, Field, Scope};
use steward_proto::events::{RegisteredModelDeleted, event_envelope::Payload};
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{
    Ctx, Registry, SERVICE, audit, canonical, check_etag, emit, model_name, model_not_found,
    remember, replay,
};
use crate::domain::policy::{self, Policy, PolicyRule};
use crate::domain::{ModelVersion, RegisteredModel};
use crate::store::models::{self as store, ModelCursor, SortBy};
use crate::store::{policies, versions};

/// Input of CreateRegisteredModel, validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewModel {
    /// Model id.
    pub name: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// Fields an update touches.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ModelPatch {
    /// New description.
    pub description: Option<String>,
    /// New tags (replace all).
    pub tags: Option<BTreeMap<String, String>>,
}

/// Options of ListRegisteredModels.
#[derive(Debug, Clone)]
pub struct ListModels {
    /// Filter text.
    pub filter: String,
    /// Order text.
    pub order_by: String,
    /// Page size.
    pub page_size: usize,
    /// Cursor.
    pub cursor: Option<ModelCursor>,
}

/// A model with its latest version.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelView {
    /// The model.
    pub model: RegisteredModel,
    /// Its highest version.
    pub latest: Option<ModelVersion>,
}

impl Registry {
    async fn view<C: sea_orm::ConnectionTrait>(
        &self,
        c: &C,
        m: RegisteredModel,
    ) -> Result<ModelView, Error> {
        let latest = if m.last_version > 0 {
            versions::get_full(c, &m.name, m.last_version).await?
        } else {
            None
        };
        Ok(ModelView { model: m, latest })
    }

    /// Creates a registered model.
    pub async fn create_model(
        &self,
        ctx: &Ctx,
        req: NewModel,
        request_id: &str,
    ) -> Result<ModelView, Error> {
        let key = IdemKey::new(
            SERVICE,
            "CreateRegisteredModel",
            request_id,
            &canonical(&req),
        )?;
        with_write_tx!(self.db, "create_model", |tx| {
            if let Some(v) = replay::<ModelView>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let now = steward_common::time::now_ms();
            let m = RegisteredModel {
                name: req.name.clone(),
                description: req.description.clone(),
                creator: ctx.actor.clone(),
                create_time: now,
                update_time: now,
                last_version: 0,
                revision: 1,
                tags: req.tags.clone(),
                aliases: BTreeMap::new(),
            };
            store::insert(&tx, &m).await?;
            audit(
                &tx,
                ctx,
                "registry.models.create",
                model_name(&m.name),
                request_id,
                None::<&()>,
                Some(&m),
            )
            .await?;
            let v = ModelView {
                model: m,
                latest: None,
            };
            remember(&tx, key.as_ref(), &v).await?;
            Ok(v)
        })
    }

    /// Gets a model with its aliases and latest version.
    pub async fn get_model(&self, name: &str) -> Result<ModelView, Error> {
        let c = self.db.conn();
        let m = store::get_full(c, name)
            .await?
            .ok_or_else(|| model_not_found(name))?;
        self.view(c, m).await
    }

    /// Lists models.
    pub async fn list_models(
        &self,
        req: ListModels,
    ) -> Result<(Vec<ModelView>, Option<ModelCursor>), Error> {
        let f = filter::parse(&req.filter, Scope::Models, "filter")?;
        let order = filter::parse_order_by(&req.order_by, Scope::Models, "order_by")?;
        let (sort, desc) = match order.as_slice() {
            [] => (SortBy::Name, false),
            [k] => (
                match &k.field {
                    Field::Attr(Attr::Name) => SortBy::Name,
                    Field::Attr(Attr::CreateTime) => SortBy::CreateTime,
                    Field::Attr(Attr::UpdateTime) => SortBy::UpdateTime,
                    _ => {
                        return Err(Error::invalid_field(
                            "order_by",
                            "models sort by name, create_time or update_time",
                        ));
                    }
                },
                k.desc,
            ),
            _ => return Err(Error::invalid_field("order_by", "models sort by one key")),
        };
        let c = self.db.conn();
        let (models, next) = store::list(
            c,
            f.as_ref(),
            sort,
            desc,
            req.cursor.as_ref(),
            req.page_size,
        )
        .await?;
        let mut out = Vec::with_capacity(models.len());
        for m in models {
            out.push(self.view(c, m).await?);
        }
        Ok((out, next))
    }

    /// Updates description and/or tags.
    pub async fn update_model(
        &self,
        ctx: &Ctx,
        name: &str,
        patch: ModelPatch,
        etag: &str,
        request_id: &str,
    ) -> Result<ModelView, Error> {
        let key = IdemKey::new(
            SERVICE,
            "UpdateRegisteredModel",
            request_id,
            &canonical(&(name, &patch, etag)),
        )?;
        with_write_tx!(self.db, "update_model", |tx| {
            if let Some(v) = replay::<ModelView>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let before = store::get_full(&*tx, name)
                .await?
                .ok_or_else(|| model_not_found(name))?;
            check_etag(etag, before.revision, &model_name(name))?;
            let mut m = before.clone();
            if let Some(d) = &patch.description {
                m.description = d.clone();
            }
            if let Some(t) = &patch.tags {
                m.tags = t.clone();
            }
            m.update_time = steward_common::time::now_ms();
            m.revision += 1;
            store::update(&tx, &m).await?;
            audit(
                &tx,
                ctx,
                "registry.models.update",
                model_name(name),
                request_id,
                Some(&before),
                Some(&m),
            )
            .await?;
            let v = self.view(&*tx, m).await?;
            remember(&tx, key.as_ref(), &v).await?;
            Ok(v)
        })
    }

    /// Deletes a model and everything under it.
    pub async fn delete_model(
        &self,
        ctx: &Ctx,
        name: &str,
        etag: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        let key = IdemKey::new(
            SERVICE,
            "DeleteRegisteredModel",
            request_id,
            &canonical(&(name, etag)),
        )?;
        // Refused while any deployment of the model exists (they serve its versions).
        let deployed = self.deployments.of_model(name).await?;
        if !deployed.is_empty() {
            return Err(Error::failed_precondition(
                "MODEL_DEPLOYED",
                format!(
                    "{} is deployed ({}); delete those deployments first",
                    model_name(name),
                    deployed.join(", ")
                ),
            ));
        }
        with_write_tx!(self.db, "delete_model", |tx| {
            if replay::<()>(&tx, key.as_ref()).await?.is_some() {
                return Ok(());
            }
            let before = store::get_full(&*tx, name)
                .await?
                .ok_or_else(|| model_not_found(name))?;
            check_etag(etag, before.revision, &model_name(name))?;
            store::delete(&tx, name).await?;
            audit(
                &tx,
                ctx,
                "registry.models.delete",
                model_name(name),
                request_id,
                Some(&before),
                None::<&()>,
            )
            .await?;
            emit(
                &tx,
                ctx,
                "registry.model.deleted",
                model_name(name),
                Payload::RegisteredModelDeleted(RegisteredModelDeleted {
                    registered_model: model_name(name),
                }),
            )
            .await?;
            remember(&tx, key.as_ref(), &()).await?;
            Ok(())
        })?;
        self.cache.invalidate(name, true).await;
        Ok(())
    }

    /// Replaces a model's alias policy.
    pub async fn set_policy(
        &self,
        ctx: &Ctx,
        model: &str,
        rules: Vec<PolicyRule>,
        etag: &str,
        request_id: &str,
    ) -> Result<Policy, Error> {
        policy::validate(&rules)?;
        let key = IdemKey::new(
            SERVICE,
            "SetModelPolicy",
            request_id,
            &canonical(&(model, &rules, etag)),
        )?;
        with_write_tx!(self.db, "set_policy", |tx| {
            if let Some(v) = replay::<Policy>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            if store::get_row(&*tx, model).await?.is_none() {
                return Err(model_not_found(model));
            }
            let before = policies::get_policy(&*tx, model).await?;
            check_etag(
                etag,
                before.revision,
                &format!("{}/policy", model_name(model)),
            )?;
            let p = Policy {
                model: model.to_string(),
                rules: rules.clone(),
                update_time: steward_common::time::now_ms(),
                revision: before.revision + 1,
            };
            policies::put(&tx, &p).await?;
            audit(
                &tx,
                ctx,
                "registry.policies.set",
                format!("{}/policy", model_name(model)),
                request_id,
                Some(&before),
                Some(&p),
            )
            .await?;
            remember(&tx, key.as_ref(), &p).await?;
            Ok(p)
        })
    }

    /// A model's alias policy.
    pub async fn get_policy(&self, model: &str) -> Result<Policy, Error> {
        let c = self.db.conn();
        if store::get_row(c, model).await?.is_none() {
            return Err(model_not_found(model));
        }
        policies::get_policy(c, model).await
    }
}
