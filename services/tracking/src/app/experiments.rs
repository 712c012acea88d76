//! Experiment use cases.

use std::collections::BTreeMap;

use steward_common::Error;
use steward_proto::events::{ExperimentCreated, ExperimentDeleted, event_envelope::Payload};
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{Ctx, SERVICE, Tracking, audit, canonical, emit, exp_name, remember, replay};
use crate::domain::filter::{self, Scope};
use crate::domain::{Experiment, Lifecycle};
use crate::store::experiments::{self as store, ListCursor, SortBy};

/// Input of CreateExperiment, validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewExperiment {
    /// Unique name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// Which fields an update touches.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExperimentPatch {
    /// New name.
    pub display_name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New tags (replace all).
    pub tags: Option<BTreeMap<String, String>>,
}

/// Options of ListExperiments.
#[derive(Debug, Clone)]
pub struct ListExperiments {
    /// Filter text.
    pub filter: String,
    /// Order text.
    pub order_by: String,
    /// Include deleted.
    pub show_deleted: bool,
    /// Page size.
    pub page_size: usize,
    /// Cursor from the previous page.
    pub cursor: Option<ListCursor>,
}

impl Tracking {
    /// Creates an experiment.
    pub async fn create_experiment(
        &self,
        ctx: &Ctx,
        req: NewExperiment,
        request_id: &str,
    ) -> Result<Experiment, Error> {
        let key = IdemKey::new(SERVICE, "CreateExperiment", request_id, &canonical(&req))?;
        with_write_tx!(self.db, "create_experiment", |tx| {
            if let Some(v) = replay::<Experiment>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let now = steward_common::time::now_ms();
            let id = uuid::Uuid::now_v7().simple().to_string();
            let e = Experiment {
                artifact_location: format!("{}/experiments/{id}", self.objects.describe()),
                id,
                display_name: req.display_name.clone(),
                description: req.description.clone(),
                tags: req.tags.clone(),
                lifecycle: Lifecycle::Active,
                create_time: now,
                update_time: now,
                delete_time: None,
                version: 1,
            };
            store::insert(&tx, &e).await?;
            audit(
                &tx,
                ctx,
                "tracking.experiments.create",
                exp_name(&e.id),
                request_id,
                None::<&()>,
                Some(&e),
            )
            .await?;
            emit(
                &tx,
                ctx,
                "tracking.experiment.created",
                exp_name(&e.id),
                Payload::ExperimentCreated(ExperimentCreated {
                    experiment: exp_name(&e.id),
                    display_name: e.display_name.clone(),
                }),
            )
            .await?;
            remember(&tx, key.as_ref(), &e).await?;
            Ok(e)
        })
    }

    /// Gets an experiment by id or by display name.
    pub async fn get_experiment(
        &self,
        id: Option<&str>,
        display_name: Option<&str>,
    ) -> Result<Experiment, Error> {
        store::get_one(self.db.conn(), id, display_name)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "EXPERIMENT_NOT_FOUND",
                    match (id, display_name) {
                        (Some(i), _) => exp_name(i),
                        (None, Some(n)) => format!("experiment named {n:?}"),
                        (None, None) => "experiment".into(),
                    },
                )
            })
    }

    /// Lists experiments.
    pub async fn list_experiments(
        &self,
        req: &ListExperiments,
    ) -> Result<(Vec<Experiment>, Option<ListCursor>), Error> {
        let f = filter::parse(&req.filter, Scope::Experiments, "filter")?;
        let order = filter::parse_order_by(&req.order_by, Scope::Experiments, "order_by")?;
        let (sort, desc) = match order.as_slice() {
            [] => (SortBy::CreateTime, true),
            [k] => (
                match &k.field {
                    filter::Field::Attr(filter::Attr::CreateTime) => SortBy::CreateTime,
                    filter::Field::Attr(filter::Attr::UpdateTime) => SortBy::UpdateTime,
                    filter::Field::Attr(filter::Attr::DisplayName) => SortBy::DisplayName,
                    _ => {
                        return Err(Error::invalid_field(
                            "order_by",
                            "experiments order by display_name, create_time or update_time",
                        ));
                    }
                },
                k.desc,
            ),
            _ => {
                return Err(Error::invalid_field(
                    "order_by",
                    "experiments order by one field",
                ));
            }
        };
        store::list(
            self.db.conn(),
            f.as_ref(),
            sort,
            desc,
            req.show_deleted,
            req.cursor.as_ref(),
            req.page_size,
        )
        .await
    }

    /// Updates an experiment's name, description and/or tags. `etag` (if non-empty) must match.
    pub async fn update_experiment(
        &self,
        ctx: &Ctx,
        id: &str,
        etag: &str,
        patch: ExperimentPatch,
        request_id: &str,
    ) -> Result<Experiment, Error> {
        let key = IdemKey::new(
            SERVICE,
            "UpdateExperiment",
            request_id,
            &canonical(&(id, etag, &patch)),
        )?;
        with_write_tx!(self.db, "update_experiment", |tx| {
            if let Some(v) = replay::<Experiment>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let before = self.load_for_write(&tx, id, etag).await?;
            if before.lifecycle == Lifecycle::Deleted {
                return Err(Error::failed_precondition(
                    "EXPERIMENT_DELETED",
                    format!("{} is deleted; undelete it first", exp_name(id)),
                ));
            }
            let mut after = before.clone();
            if let Some(n) = &patch.display_name {
                after.display_name = n.clone();
            }
            if let Some(d) = &patch.description {
                after.description = d.clone();
            }
            if let Some(t) = &patch.tags {
                after.tags = t.clone();
            }
            after.update_time = steward_common::time::now_ms();
            after.version += 1;
            store::update(&tx, &after, before.version).await?;
            audit(
                &tx,
                ctx,
                "tracking.experiments.update",
                exp_name(id),
                request_id,
                Some(&before),
                Some(&after),
            )
            .await?;
            remember(&tx, key.as_ref(), &after).await?;
            Ok(after)
        })
    }

    /// Soft-deletes (`delete = true`) or restores an experiment.
    pub async fn set_experiment_deleted(
        &self,
        ctx: &Ctx,
        id: &str,
        etag: &str,
        delete: bool,
        request_id: &str,
    ) -> Result<Experiment, Error> {
        let method = if delete {
            "DeleteExperiment"
        } else {
            "UndeleteExperiment"
        };
        let key = IdemKey::new(SERVICE, method, request_id, &canonical(&(id, etag)))?;
        with_write_tx!(self.db, "set_experiment_deleted", |tx| {
            if let Some(v) = replay::<Experiment>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let before = self.load_for_write(&tx, id, etag).await?;
            let want = if delete {
                Lifecycle::Deleted
            } else {
                Lifecycle::Active
            };
            if before.lifecycle == want {
                return Err(Error::failed_precondition(
                    if delete {
                        "EXPERIMENT_ALREADY_DELETED"
                    } else {
                        "EXPERIMENT_NOT_DELETED"
                    },
                    format!(
                        "{} is already {}",
                        exp_name(id),
                        if delete { "deleted" } else { "active" }
                    ),
                ));
            }
            let mut after = before.clone();
            let now = steward_common::time::now_ms();
            after.lifecycle = want;
            after.delete_time = delete.then_some(now);
            after.update_time = now;
            after.version += 1;
            store::update(&tx, &after, before.version).await?;
            let action = if delete {
                "tracking.experiments.delete"
            } else {
                "tracking.experiments.undelete"
            };
            audit(
                &tx,
                ctx,
                action,
                exp_name(id),
                request_id,
                Some(&before),
                Some(&after),
            )
            .await?;
            if delete {
                emit(
                    &tx,
                    ctx,
                    "tracking.experiment.deleted",
                    exp_name(id),
                    Payload::ExperimentDeleted(ExperimentDeleted {
                        experiment: exp_name(id),
                    }),
                )
                .await?;
            }
            remember(&tx, key.as_ref(), &after).await?;
            Ok(after)
        })
    }

    async fn load_for_write(
        &self,
        tx: &steward_storage::WriteTx,
        id: &str,
        etag: &str,
    ) -> Result<Experiment, Error> {
        let e = store::get_one(&**tx, Some(id), None)
            .await?
            .ok_or_else(|| Error::not_found("EXPERIMENT_NOT_FOUND", exp_name(id)))?;
        if !etag.is_empty() && etag != e.version.to_string() {
            return Err(Error::stale_etag(exp_name(id)));
        }
        Ok(e)
    }
}
