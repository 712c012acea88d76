//! Use cases of the tracking service: one function per operation. This layer owns
//! transactions, idempotency, audit records and outbox events; it speaks domain types.

pub mod artifacts;
pub mod data;
pub mod dsv;
pub mod dsv_external;
pub mod dsv_profile;
pub mod experiments;
pub mod runs;

use std::sync::Arc;

use steward_artifacts::ObjectStore;
use steward_common::Error;
use steward_config::Limits;
use steward_storage::Db;

/// Name of this service's audit chain, outbox and idempotency records.
pub const SERVICE: &str = "tracking";

pub use steward_storage::ops::Ctx;

/// The tracking application: storage handles and limits.
#[derive(Clone)]
pub struct Tracking {
    pub(crate) db: Db,
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) limits: Limits,
}

impl Tracking {
    /// A tracking app over `db` and `objects`.
    pub fn new(db: Db, objects: Arc<dyn ObjectStore>, limits: Limits) -> Self {
        Self {
            db,
            objects,
            limits,
        }
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

pub(crate) use steward_storage::ops::{canonical, remember, replay};

steward_storage::service_ops!(SERVICE);

/// The run `run_id` of experiment `exp` (row only). A run addressed under another experiment
/// does not exist: `NOT_FOUND`.
pub(crate) async fn run_in<C: sea_orm::ConnectionTrait>(
    c: &C,
    exp: &str,
    run_id: &str,
) -> Result<crate::domain::Run, Error> {
    match crate::store::runs::get_row(c, run_id).await? {
        Some(r) if r.experiment_id == exp => Ok(r),
        _ => Err(Error::not_found("RUN_NOT_FOUND", run_name(exp, run_id))),
    }
}

/// [`run_in`] for writes: a deleted run is `FAILED_PRECONDITION` (`RUN_DELETED`).
pub(crate) async fn writable_run_in<C: sea_orm::ConnectionTrait>(
    c: &C,
    exp: &str,
    run_id: &str,
) -> Result<crate::domain::Run, Error> {
    let r = run_in(c, exp, run_id).await?;
    if r.lifecycle == crate::domain::Lifecycle::Deleted {
        return Err(Error::failed_precondition(
            "RUN_DELETED",
            format!(
                "{} is deleted; undelete it to write to it",
                run_name(exp, run_id)
            ),
        ));
    }
    Ok(r)
}

/// `experiments/{e}`.
pub(crate) fn exp_name(id: &str) -> String {
    format!("experiments/{id}")
}

/// `experiments/{e}/runs/{r}`.
pub(crate) fn run_name(exp: &str, run: &str) -> String {
    format!("experiments/{exp}/runs/{run}")
}
