//! The resolution cache: `registeredModels/{m}@{alias}` and `.../versions/{v}` to the version.
//!
//! Freshness rules (what the issue asks for, and how each is kept):
//! - *The replica that made a change resolves the new version at once*: after its commit it
//!   drops the model's entries and, for one TTL, reads that model from the database only; a
//!   resolution that started before the drop never stores its (possibly old) answer, because it
//!   holds a ticket with the model's epoch and the drop bumps the epoch.
//! - *Every replica within 1 s, also while Redis is down*: every entry expires at most
//!   [`TTL`] after the database read that produced it (Redis `PXAT` from the read time, not
//!   the write time), so an entry that a change did not invalidate (Redis unreachable, event
//!   late) is gone within 1 s of the commit. A Redis error falls back to the database.
//! - *Invalidated by events*: every registry change publishes an event; one replica per event
//!   (consumer group `registry-cache`) deletes the model's shared entries right away.
//!
//! Embedded mode caches in process; distributed mode (Redis configured) caches in Redis,
//! shared by the replicas.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use steward_common::Error;

use steward_telemetry::client_span::{self, CallTimer};

use crate::domain::ModelVersion;

/// The error of a timed Redis call, for its span.
fn traced_error<T, E: std::fmt::Display>(
    r: &Result<Result<T, E>, tokio::time::error::Elapsed>,
) -> Option<String> {
    match r {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("timeout".to_owned()),
    }
}

/// Longest time an entry outlives the database read that produced it.
pub const TTL: Duration = Duration::from_secs(1);
/// Time limit of one Redis cache call (the database is the fallback).
const REDIS_TIMEOUT: Duration = Duration::from_millis(200);
/// After a Redis failure, how long to go straight to the database.
const REDIS_BACKOFF: Duration = Duration::from_secs(1);
/// Max entries of the in-process cache.
const LOCAL_CAPACITY: usize = 100_000;

/// Proof of when a resolution started (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    read_at: Instant,
    read_at_ms: i64,
}

#[derive(Default)]
struct Local {
    entries: HashMap<String, HashMap<String, (Instant, ModelVersion)>>,
    len: usize,
}

#[derive(Default)]
struct State {
    epochs: HashMap<String, u64>,
    bypass_until: HashMap<String, Instant>,
    redis_down_until: Option<Instant>,
}

/// The cache. Cheap to share (`Arc`).
pub struct ResolveCache {
    redis: Option<(ConnectionManager, String)>,
    local: Mutex<Local>,
    state: Mutex<State>,
}

impl ResolveCache {
    /// An in-process cache (embedded mode).
    pub fn in_process() -> Self {
        Self {
            redis: None,
            local: Mutex::default(),
            state: Mutex::default(),
        }
    }

    /// A cache in Redis at `url`, keys under `{prefix}registry:`.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|e| {
            Error::invalid_field(
                "redis_url",
                format!("not a valid Redis URL ({})", e.category()),
            )
        })?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_with_config(client, cfg)
            .await
            .map_err(|e| {
                Error::unavailable(
                    "CACHE_UNAVAILABLE",
                    format!(
                        "cannot reach Redis for the registry cache: {}",
                        e.category()
                    ),
                )
            })?;
        Ok(Self {
            redis: Some((manager, format!("{prefix}registry:"))),
            local: Mutex::default(),
            state: Mutex::default(),
        })
    }

    /// Whether entries live in Redis.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a ticket before reading `model` from the database.
    pub fn ticket(&self, model: &str) -> Ticket {
        let epoch = self.state().epochs.get(model).copied().unwrap_or(0);
        Ticket {
            epoch,
            read_at: Instant::now(),
            read_at_ms: steward_common::time::now_ms(),
        }
    }

    fn bypassed(&self, model: &str) -> bool {
        let mut st = self.state();
        match st.bypass_until.get(model) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                st.bypass_until.remove(model);
                false
            }
            None => false,
        }
    }

    fn redis_usable(&self) -> bool {
        let mut st = self.state();
        match st.redis_down_until {
            Some(t) if t > Instant::now() => false,
            Some(_) => {
                st.redis_down_until = None;
                true
            }
            None => true,
        }
    }

    fn redis_failed(&self, what: &str, e: impl std::fmt::Display) {
        let mut st = self.state();
        if st.redis_down_until.is_none() {
            tracing::warn!(error = %e, op = what, "registry cache: Redis unavailable; resolving from the database");
        }
        st.redis_down_until = Some(Instant::now() + REDIS_BACKOFF);
    }

    fn key(prefix: &str, key: &str) -> String {
        format!("{prefix}r:{key}")
    }

    fn set_key(prefix: &str, model: &str) -> String {
        format!("{prefix}m:{model}")
    }

    /// A cached resolution of `key` (about `model`), if fresh.
    pub async fn get(&self, model: &str, key: &str) -> Option<ModelVersion> {
        if self.bypassed(model) {
            return None;
        }
        match &self.redis {
            None => {
                let local = self.local();
                let (expires, v) = local.entries.get(model)?.get(key)?;
                (*expires > Instant::now()).then(|| v.clone())
            }
            Some((conn, prefix)) => {
                if !self.redis_usable() {
                    return None;
                }
                let mut c = conn.clone();
                let cmd = redis::cmd("GET").arg(Self::key(prefix, key)).to_owned();
                let timer = CallTimer::start();
                let result =
                    tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<Option<Vec<u8>>>(&mut c))
                        .await;
                client_span::redis(timer, "GET", traced_error(&result));
                match result {
                    Ok(Ok(Some(bytes))) => serde_json::from_slice(&bytes).ok(),
                    Ok(Ok(None)) => None,
                    Ok(Err(e)) => {
                        self.redis_failed("get", e);
                        None
                    }
                    Err(_) => {
                        self.redis_failed("get", "timeout");
                        None
                    }
                }
            }
        }
    }

    /// Stores a resolution read from the database under `ticket`, unless the model changed
    /// since the ticket was taken.
    pub async fn put(&self, model: &str, key: &str, v: &ModelVersion, ticket: Ticket) {
        if self.bypassed(model)
            || self.state().epochs.get(model).copied().unwrap_or(0) != ticket.epoch
        {
            return;
        }
        match &self.redis {
            None => {
                let mut local = self.local();
                if local.len >= LOCAL_CAPACITY {
                    local.entries.clear();
                    local.len = 0;
                }
                let fresh = local
                    .entries
                    .entry(model.to_string())
                    .or_default()
                    .insert(key.to_string(), (ticket.read_at + TTL, v.clone()))
                    .is_none();
                if fresh {
                    local.len += 1;
                }
            }
            Some((conn, prefix)) => {
                if !self.redis_usable() {
                    return;
                }
                let Ok(bytes) = serde_json::to_vec(v) else {
                    return;
                };
                let expire_at = ticket.read_at_ms + TTL.as_millis() as i64;
                if expire_at <= steward_common::time::now_ms() {
                    return;
                }
                let k = Self::key(prefix, key);
                let set = Self::set_key(prefix, model);
                let mut pipe = redis::pipe();
                pipe.cmd("SET")
                    .arg(&k)
                    .arg(bytes)
                    .arg("PXAT")
                    .arg(expire_at)
                    .ignore();
                pipe.cmd("SADD").arg(&set).arg(&k).ignore();
                pipe.cmd("PEXPIREAT")
                    .arg(&set)
                    .arg(expire_at + 60_000)
                    .ignore();
                let mut c = conn.clone();
                let timer = CallTimer::start();
                let result =
                    tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(&mut c)).await;
                client_span::redis(timer, "SET", traced_error(&result));
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => self.redis_failed("put", e),
                    Err(_) => self.redis_failed("put", "timeout"),
                }
            }
        }
    }

    /// Drops every entry of `model`, here and in Redis. `own_change` is true on the replica
    /// that committed the change: it then reads `model` from the database for one TTL.
    pub async fn invalidate(&self, model: &str, own_change: bool) {
        {
            let mut st = self.state();
            *st.epochs.entry(model.to_string()).or_insert(0) += 1;
            if own_change {
                st.bypass_until
                    .insert(model.to_string(), Instant::now() + TTL);
            }
        }
        {
            let mut local = self.local();
            if let Some(m) = local.entries.remove(model) {
                local.len -= m.len();
            }
        }
        if let Some((conn, prefix)) = &self.redis {
            if !self.redis_usable() {
                return;
            }
            let set = Self::set_key(prefix, model);
            let mut c = conn.clone();
            let res = tokio::time::timeout(REDIS_TIMEOUT, async {
                let keys: Vec<String> =
                    redis::cmd("SMEMBERS").arg(&set).query_async(&mut c).await?;
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("DEL").arg(k).ignore();
                }
                pipe.cmd("DEL").arg(&set).ignore();
                pipe.query_async::<()>(&mut c).await
            })
            .await;
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.redis_failed("invalidate", e),
                Err(_) => self.redis_failed("invalidate", "timeout"),
            }
        }
    }
}

/// Keeps the cache in step with registry events from the bus (consumer group
/// `registry-cache`): each event about a model drops its entries. Runs until the bus fails
/// for good or the task is aborted.
pub fn spawn_invalidator(
    bus: std::sync::Arc<dyn steward_events::EventBus>,
    cache: std::sync::Arc<ResolveCache>,
    consumer: String,
) -> tokio::task::JoinHandle<()> {
    use steward_proto::events::event_envelope::Payload;
    tokio::spawn(async move {
        let mut sub = match bus.subscribe("registry-cache", &consumer).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "registry cache invalidation cannot subscribe; entries will only expire");
                return;
            }
        };
        loop {
            let d = match sub.next().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "registry cache invalidation stopped; entries will only expire");
                    return;
                }
            };
            // A new version changes no cached answer (misses are not cached), so only these
            // events drop entries.
            let model = match &d.envelope.payload {
                Some(Payload::ModelVersionUpdated(p)) => Some(p.registered_model.clone()),
                Some(Payload::AliasMoved(p)) => Some(p.registered_model.clone()),
                Some(Payload::ApprovalChanged(p)) => Some(p.registered_model.clone()),
                Some(Payload::RegisteredModelDeleted(p)) => Some(p.registered_model.clone()),
                _ => None,
            };
            if let Some(m) = model
                .as_deref()
                .and_then(|m| m.strip_prefix("registeredModels/"))
            {
                cache.invalidate(m, false).await;
            }
            if let Err(e) = d.ack().await {
                tracing::debug!(error = %e, "cache invalidation ack failed; the event will come again");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: i64) -> ModelVersion {
        serde_json::from_value(serde_json::json!({
            "model": "m", "version": n, "source_run": "", "artifact_path": "", "source_uri": "",
            "artifact_uri": "", "content_digest": "", "signature": {"inputs": [], "outputs": []},
            "format": "onnx", "status": "Ready", "status_message": "", "description": "",
            "tags": {}, "approval": "Pending", "last_review": null, "aliases": [], "creator": "",
            "create_time": 0, "update_time": 0, "revision": 1
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_resolution_started_before_an_invalidation_is_not_stored() {
        let c = ResolveCache::in_process();
        let t = c.ticket("m");
        c.invalidate("m", false).await;
        c.put("m", "k", &version(1), t).await;
        assert!(c.get("m", "k").await.is_none());
        let t = c.ticket("m");
        c.put("m", "k", &version(2), t).await;
        assert_eq!(c.get("m", "k").await.unwrap().version, 2);
    }

    #[tokio::test]
    async fn the_changing_replica_bypasses_the_cache_for_one_ttl() {
        let c = ResolveCache::in_process();
        c.invalidate("m", true).await;
        let t = c.ticket("m");
        c.put("m", "k", &version(1), t).await;
        assert!(c.get("m", "k").await.is_none());
        assert!(c.bypassed("m"));
    }

    #[tokio::test]
    async fn entries_expire_one_ttl_after_their_read() {
        let c = ResolveCache::in_process();
        let mut t = c.ticket("m");
        t.read_at -= TTL;
        c.put("m", "k", &version(1), t).await;
        assert!(c.get("m", "k").await.is_none());
    }
}
