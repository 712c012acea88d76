//! Use cases of the deployment service. This layer owns transactions, idempotency, audit
//! records, outbox events, the decision writer and the controller; it speaks domain types.

pub mod ab;
pub mod decisions;
pub mod deployments;
pub mod environments;
pub mod explain;
pub mod peers;
pub mod rollouts;
pub mod route;
pub mod serve;

use std::sync::Arc;

use steward_common::Error;
use steward_config::Limits;
use steward_storage::Db;

pub use steward_storage::ops::Ctx;
pub(crate) use steward_storage::ops::{canonical, check_etag, remember, replay};

use decisions::DecisionWriter;
use peers::Peers;
use route::RevisionCache;

/// Name of this service's audit chain, outbox and idempotency records.
pub const SERVICE: &str = "deployment";

/// Settings of the deployment service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Share of ModelInfer decisions whose inputs are stored (0..=1).
    pub input_sample_rate: f64,
    /// How long sampled inputs are kept, ms.
    pub input_retention_ms: i64,
    /// How often the rollout controller looks at running rollouts.
    pub controller_tick: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            input_sample_rate: 0.01,
            input_retention_ms: 30 * 24 * 3_600_000,
            controller_tick: std::time::Duration::from_millis(500),
        }
    }
}

/// The deployment application.
#[derive(Clone)]
pub struct Deployments {
    pub(crate) db: Db,
    pub(crate) limits: Limits,
    pub(crate) peers: Peers,
    pub(crate) writer: DecisionWriter,
    pub(crate) revisions: Arc<RevisionCache>,
    pub(crate) engines: Arc<serve::Engines>,
    pub(crate) settings: Settings,
}

impl Deployments {
    /// The app over `db`, calling the registry and tracking through `peers`. Starts the
    /// decision writer (call within a Tokio runtime).
    pub fn new(db: Db, limits: Limits, peers: Peers, settings: Settings) -> Self {
        Self {
            writer: DecisionWriter::spawn(db.clone()),
            revisions: Arc::new(RevisionCache::default()),
            engines: Arc::new(serve::Engines::default()),
            db,
            limits,
            peers,
            settings,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// `deployments/{d}`.
pub(crate) fn dep_name(id: &str) -> String {
    format!("deployments/{id}")
}

/// `NOT_FOUND` for a deployment.
pub(crate) fn dep_not_found(id: &str) -> Error {
    Error::not_found("DEPLOYMENT_NOT_FOUND", dep_name(id))
}

steward_storage::service_ops!(SERVICE);
