//! Run use cases: create, get, update, delete/undelete and search.

use std::collections::BTreeMap;

use steward_common::Error;
use steward_proto::events::{RunCreated, RunFinished, event_envelope::Payload};
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{Ctx, SERVICE, Tracking, audit, canonical, emit, exp_name, remember, replay, run_name};
use crate::domain::filter::{self, Scope};
use crate::domain::{Lifecycle, Run, RunStatus};
use crate::store::search::{RunCursor, RunQuery};
use crate::store::{experiments, metrics, runs as store, search};

/// Input of CreateRun, validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewRun {
    /// Experiment id.
    pub experiment_id: String,
    /// Name (generated when empty).
    pub run_name: String,
    /// Start time, ms (now when None).
    pub start_time: Option<i64>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Parent run id (same experiment).
    pub parent_run_id: Option<String>,
    /// Initial status (RUNNING by default).
    pub status: RunStatus,
}

/// Fields an update touches.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunPatch {
    /// New status.
    pub status: Option<RunStatus>,
    /// New end time (ms).
    pub end_time: Option<Option<i64>>,
    /// New name.
    pub run_name: Option<String>,
}

/// A validated SearchRuns request.
#[derive(Debug, Clone)]
pub struct SearchRuns {
    /// Experiment ids.
    pub experiment_ids: Vec<String>,
    /// Filter text.
    pub filter: String,
    /// Order text.
    pub order_by: String,
    /// Include deleted runs.
    pub show_deleted: bool,
    /// Page size.
    pub page_size: usize,
    /// Cursor.
    pub cursor: Option<RunCursor>,
}

fn generated_name(id: &str) -> String {
    const ADJ: [&str; 8] = [
        "brave", "calm", "eager", "gentle", "keen", "lucky", "quiet", "swift",
    ];
    const NOUN: [&str; 8] = [
        "otter", "heron", "lynx", "panda", "robin", "tiger", "whale", "yak",
    ];
    let b = u64::from_str_radix(&id[id.len() - 8..], 16).unwrap_or(0);
    format!(
        "{}-{}-{}",
        ADJ[(b % 8) as usize],
        NOUN[((b / 8) % 8) as usize],
        b % 1000
    )
}

impl Tracking {
    /// Creates a run in an active experiment.
    pub async fn create_run(&self, ctx: &Ctx, req: NewRun, request_id: &str) -> Result<Run, Error> {
        let key = IdemKey::new(SERVICE, "CreateRun", request_id, &canonical(&req))?;
        with_write_tx!(self.db, "create_run", |tx| {
            if let Some(v) = replay::<Run>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let exp = experiments::get_row(&*tx, &req.experiment_id)
                .await?
                .ok_or_else(|| {
                    Error::not_found("EXPERIMENT_NOT_FOUND", exp_name(&req.experiment_id))
                })?;
            if exp.lifecycle == Lifecycle::Deleted {
                return Err(Error::failed_precondition(
                    "EXPERIMENT_DELETED",
                    format!(
                        "{} is deleted; undelete it before adding runs",
                        exp_name(&exp.id)
                    ),
                ));
            }
            if let Some(parent) = &req.parent_run_id {
                let p = store::get_row(&*tx, parent).await?;
                match p {
                    Some(p) if p.experiment_id == exp.id => {}
                    Some(_) => {
                        return Err(Error::invalid_field(
                            "run.parent_run",
                            "the parent run must be in the same experiment",
                        ));
                    }
                    None => {
                        return Err(Error::not_found("RUN_NOT_FOUND", run_name(&exp.id, parent))
                            .with_violation("run.parent_run", "no such run"));
                    }
                }
            }
            let now = steward_common::time::now_ms();
            let id = uuid::Uuid::now_v7().simple().to_string();
            let run = Run {
                artifact_uri: format!(
                    "{}/experiments/{}/runs/{id}/artifacts",
                    self.objects.describe(),
                    exp.id
                ),
                run_name: if req.run_name.is_empty() {
                    generated_name(&id)
                } else {
                    req.run_name.clone()
                },
                id,
                experiment_id: exp.id.clone(),
                status: req.status,
                start_time: Some(req.start_time.unwrap_or(now)),
                end_time: None,
                parent_run_id: req.parent_run_id.clone(),
                lifecycle: Lifecycle::Active,
                creator: ctx.actor.clone(),
                create_time: now,
                update_time: now,
                delete_time: None,
                version: 1,
                tags: req.tags.clone(),
                params: BTreeMap::new(),
                latest_metrics: Vec::new(),
                inputs: Vec::new(),
            };
            store::insert(&tx, &run).await?;
            let tags: Vec<(String, String)> = run
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            metrics::write_tags(&tx, &run.id, &tags).await?;
            let name = run_name(&run.experiment_id, &run.id);
            audit(
                &tx,
                ctx,
                "tracking.runs.create",
                name.clone(),
                request_id,
                None::<&()>,
                Some(&run),
            )
            .await?;
            emit(
                &tx,
                ctx,
                "tracking.run.created",
                name.clone(),
                Payload::RunCreated(RunCreated {
                    run: name,
                    experiment: exp_name(&run.experiment_id),
                    run_name: run.run_name.clone(),
                }),
            )
            .await?;
            remember(&tx, key.as_ref(), &run).await?;
            Ok(run)
        })
    }

    /// Gets the full view of a run in experiment `exp`.
    pub async fn get_run(&self, exp: &str, id: &str) -> Result<Run, Error> {
        match store::get_view(self.db.conn(), id).await? {
            Some(r) if r.experiment_id == exp => Ok(r),
            _ => Err(Error::not_found("RUN_NOT_FOUND", run_name(exp, id))),
        }
    }

    async fn run_for_write(
        &self,
        tx: &steward_storage::WriteTx,
        exp: &str,
        id: &str,
        etag: &str,
    ) -> Result<Run, Error> {
        let r = super::run_in(&**tx, exp, id).await?;
        if !etag.is_empty() && etag != r.version.to_string() {
            return Err(Error::stale_etag(run_name(exp, id)));
        }
        Ok(r)
    }

    /// Updates status, end time and/or name. Moving to a terminal status without an end time
    /// sets it to now, and emits `tracking.run.finished`.
    pub async fn update_run(
        &self,
        ctx: &Ctx,
        exp: &str,
        id: &str,
        etag: &str,
        patch: RunPatch,
        request_id: &str,
    ) -> Result<Run, Error> {
        let key = IdemKey::new(
            SERVICE,
            "UpdateRun",
            request_id,
            &canonical(&(exp, id, etag, &patch)),
        )?;
        let result = with_write_tx!(self.db, "update_run", |tx| {
            if let Some(v) = replay::<Run>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let before = self.run_for_write(&tx, exp, id, etag).await?;
            if before.lifecycle == Lifecycle::Deleted {
                return Err(Error::failed_precondition(
                    "RUN_DELETED",
                    format!("{} is deleted; undelete it first", run_name(exp, id)),
                ));
            }
            let mut after = before.clone();
            let now = steward_common::time::now_ms();
            if let Some(n) = &patch.run_name {
                after.run_name = n.clone();
            }
            if let Some(e) = patch.end_time {
                after.end_time = e;
            }
            if let Some(s) = patch.status {
                after.status = s;
                if s.is_terminal() && after.end_time.is_none() {
                    after.end_time = Some(now);
                }
            }
            if let (Some(start), Some(end)) = (after.start_time, after.end_time)
                && end < start
            {
                return Err(Error::invalid_field(
                    "run.end_time",
                    "must not be before the run's start_time",
                ));
            }
            after.update_time = now;
            after.version += 1;
            store::update(&tx, &after, before.version).await?;
            let name = run_name(exp, id);
            audit(
                &tx,
                ctx,
                "tracking.runs.update",
                name.clone(),
                request_id,
                Some(&before),
                Some(&after),
            )
            .await?;
            if after.status.is_terminal() && after.status != before.status {
                let end = after.end_time.unwrap_or(now);
                emit(
                    &tx,
                    ctx,
                    "tracking.run.finished",
                    name.clone(),
                    Payload::RunFinished(RunFinished {
                        run: name,
                        status: after.status.name().to_string(),
                        end_time: Some(prost_types::Timestamp {
                            seconds: end.div_euclid(1000),
                            nanos: (end.rem_euclid(1000) * 1_000_000) as i32,
                        }),
                    }),
                )
                .await?;
            }
            remember(&tx, key.as_ref(), &after).await?;
            Ok(after)
        });
        self.with_details(result?).await
    }

    /// Soft-deletes or restores a run.
    pub async fn set_run_deleted(
        &self,
        ctx: &Ctx,
        exp: &str,
        id: &str,
        etag: &str,
        delete: bool,
        request_id: &str,
    ) -> Result<Run, Error> {
        let method = if delete { "DeleteRun" } else { "UndeleteRun" };
        let key = IdemKey::new(SERVICE, method, request_id, &canonical(&(exp, id, etag)))?;
        let run: Run = with_write_tx!(self.db, "set_run_deleted", |tx| {
            if let Some(v) = replay::<Run>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let before = self.run_for_write(&tx, exp, id, etag).await?;
            let want = if delete {
                Lifecycle::Deleted
            } else {
                Lifecycle::Active
            };
            if before.lifecycle == want {
                return Err(Error::failed_precondition(
                    if delete {
                        "RUN_ALREADY_DELETED"
                    } else {
                        "RUN_NOT_DELETED"
                    },
                    format!(
                        "{} is already {}",
                        run_name(exp, id),
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
                "tracking.runs.delete"
            } else {
                "tracking.runs.undelete"
            };
            audit(
                &tx,
                ctx,
                action,
                run_name(exp, id),
                request_id,
                Some(&before),
                Some(&after),
            )
            .await?;
            remember(&tx, key.as_ref(), &after).await?;
            Ok(after)
        })?;
        self.with_details(run).await
    }

    /// The row this request wrote (or, on a retry, the original one) with the run's current
    /// tags, params, metrics and inputs.
    async fn with_details(&self, run: Run) -> Result<Run, Error> {
        let mut v = vec![Run {
            tags: BTreeMap::new(),
            ..run
        }];
        store::load_details(self.db.conn(), &mut v).await?;
        Ok(v.pop().expect("one run"))
    }

    /// Searches runs; returns full views and the next cursor.
    pub async fn search_runs(
        &self,
        req: &SearchRuns,
    ) -> Result<(Vec<Run>, Option<RunCursor>), Error> {
        if req.experiment_ids.is_empty() {
            return Err(Error::invalid_field(
                "experiments",
                "name at least one experiment",
            ));
        }
        if req.experiment_ids.len() > 100 {
            return Err(Error::limit(
                "experiments",
                "at most 100 experiments per search",
            ));
        }
        let f = filter::parse(&req.filter, Scope::Runs, "filter")?;
        let order = filter::parse_order_by(&req.order_by, Scope::Runs, "order_by")?;
        let q = RunQuery {
            experiment_ids: &req.experiment_ids,
            filter: f.as_ref(),
            order: &order,
            show_deleted: req.show_deleted,
            cursor: req.cursor.as_ref(),
            limit: req.page_size,
        };
        let (ids, next) = search::search_runs(self.db.conn(), &q).await?;
        let runs = store::get_views(self.db.conn(), &ids).await?;
        Ok((runs, next))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_names_are_stable() {
        let n = super::generated_name("0123456789abcdef0123456789abcdef");
        assert_eq!(n, super::generated_name("0123456789abcdef0123456789abcdef"));
        assert_eq!(n.split('-').count(), 3);
    }
}
