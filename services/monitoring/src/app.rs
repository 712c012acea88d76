//! Use cases of the monitoring service. This layer owns transactions, idempotency, audit
//! records, outbox events, the window closer, the rule evaluator, the webhook sender and the
//! decision consumer; it speaks domain types.

pub mod alerts;
pub mod baselines;
pub mod decisions;
pub mod ingest;
pub mod monitors;
pub mod notify;
pub mod peers;
pub mod perf;
pub mod windows;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steward_common::Error;
use steward_config::Limits;
use steward_storage::Db;

pub use steward_storage::ops::Ctx;
pub(crate) use steward_storage::ops::{canonical, check_etag, remember, replay};

use crate::domain::report::Prepared;
use crate::domain::{Baseline, Chunk, Monitor};
use peers::Peers;

/// Name of this service's audit chain, outbox and idempotency records.
pub const SERVICE: &str = "monitoring";

/// Settings of the monitoring service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often due windows are closed and time-range rules evaluated.
    pub tick: Duration,
    /// Webhook calls: attempts before giving up.
    pub webhook_attempts: i64,
    /// Webhook calls: the first retry's delay (doubling each time, at most 5 minutes).
    pub webhook_backoff: Duration,
    /// Webhook calls: time limit of one attempt.
    pub webhook_timeout: Duration,
    /// Closed windows whose values are kept (older windows keep only their report).
    pub keep_window_values: i64,
    /// How long predictions, labels and KPI values are kept (reports and series stay).
    pub record_retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(1000),
            webhook_attempts: 8,
            webhook_backoff: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(10),
            keep_window_values: 10,
            record_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Monitors and baselines read by every ingest, cached briefly (a change is visible on every
/// replica within [`CACHE_TTL`]).
#[derive(Default)]
pub(crate) struct Cache {
    monitors: Mutex<HashMap<String, (Instant, Arc<Monitor>)>>,
    by_deployment: Mutex<HashMap<String, (Instant, MonitorList)>>,
    references: Mutex<HashMap<String, Arc<Reference>>>,
    /// When each time-range rule was last evaluated on this replica.
    pub(crate) rule_runs: Mutex<HashMap<(String, String), Instant>>,
}

/// How long cached monitors stay.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(1);

/// The monitors of one deployment.
type MonitorList = Arc<Vec<Arc<Monitor>>>;

/// A baseline with its reference prepared for the statistics (once; baselines are immutable).
pub(crate) struct Reference {
    pub baseline: Baseline,
    pub prepared: Prepared,
}

/// The monitoring application.
#[derive(Clone)]
pub struct Monitoring {
    pub(crate) db: Db,
    pub(crate) limits: Limits,
    pub(crate) peers: Peers,
    pub(crate) settings: Settings,
    pub(crate) cache: Arc<Cache>,
    pub(crate) http: notify::Http,
}

impl Monitoring {
    /// The app over `db`, calling tracking through `peers` (for profile baselines).
    pub fn new(db: Db, limits: Limits, peers: Peers, settings: Settings) -> Self {
        Self {
            db,
            limits,
            peers,
            http: notify::Http::new(settings.webhook_timeout),
            settings,
            cache: Arc::new(Cache::default()),
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

    /// Drops records past their retention; returns how many.
    pub async fn expire_records(&self) -> Result<u64, Error> {
        let before =
            steward_common::time::now_ms() - self.settings.record_retention.as_millis() as i64;
        steward_storage::with_write_tx!(self.db, "expire_records", |tx| {
            crate::store::records::expire(&tx, before).await
        })
    }

    /// A monitor, from the cache when fresh.
    pub(crate) async fn monitor_cached(&self, id: &str) -> Result<Arc<Monitor>, Error> {
        if let Some((at, m)) = lock(&self.cache.monitors).get(id)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(m.clone());
        }
        let m = Arc::new(self.get_monitor(id).await?);
        lock(&self.cache.monitors).insert(id.to_string(), (Instant::now(), m.clone()));
        Ok(m)
    }

    /// The monitors fed by a deployment, from the cache when fresh.
    pub(crate) async fn monitors_of(
        &self,
        deployment: &str,
    ) -> Result<Arc<Vec<Arc<Monitor>>>, Error> {
        if let Some((at, ms)) = lock(&self.cache.by_deployment).get(deployment)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(ms.clone());
        }
        let ms = Arc::new(
            crate::store::monitors::list(self.db.conn(), Some(deployment), None, 1000)
                .await?
                .into_iter()
                .map(Arc::new)
                .collect::<Vec<_>>(),
        );
        lock(&self.cache.by_deployment)
            .insert(deployment.to_string(), (Instant::now(), ms.clone()));
        Ok(ms)
    }

    /// Forgets cached monitors (after a change on this replica).
    pub(crate) fn forget(&self, id: &str) {
        lock(&self.cache.monitors).remove(id);
        lock(&self.cache.by_deployment).clear();
    }

    /// A baseline with its decoded reference values.
    pub(crate) async fn reference(&self, id: &str) -> Result<Arc<Reference>, Error> {
        if let Some(r) = lock(&self.cache.references).get(id) {
            return Ok(r.clone());
        }
        let baseline = self.get_baseline(id).await?;
        let bytes = crate::store::baselines::data(self.db.conn(), id).await?;
        let b2 = baseline.clone();
        let prepared = tokio::task::spawn_blocking(move || -> Result<Prepared, Error> {
            let data = if bytes.is_empty() {
                None
            } else {
                Some(Chunk::decode(&bytes)?)
            };
            Ok(crate::domain::report::prepare(&b2, data.as_ref()))
        })
        .await
        .map_err(Error::internal)??;
        let r = Arc::new(Reference { baseline, prepared });
        let mut refs = lock(&self.cache.references);
        // A handful of baselines are in use at once; keep memory bounded.
        if refs.len() >= 16 {
            refs.clear();
        }
        refs.insert(id.to_string(), r.clone());
        Ok(r)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `monitors/{m}`.
pub(crate) fn monitor_name(id: &str) -> String {
    format!("monitors/{id}")
}

/// `NOT_FOUND` for a monitor.
pub(crate) fn monitor_not_found(id: &str) -> Error {
    Error::not_found("MONITOR_NOT_FOUND", monitor_name(id))
}

steward_storage::service_ops!(SERVICE);
