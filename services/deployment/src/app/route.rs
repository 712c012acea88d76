//! Routing: the variant for a routing key, and the decision record behind every answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steward_common::Error;

use super::decisions::Written;
use super::{Ctx, Deployments, dep_not_found};
use crate::domain::routing::{bucket, pick};
use crate::domain::{Decision, Deployment, Revision, Variant};
use crate::store::{decisions, deployments as store};

/// How long a replica may serve a revision it read before reading again. The replica that
/// applies a revision drops its entry at once; other replicas follow within this time (plus
/// the one read that refreshes it).
pub const REVISION_TTL: Duration = Duration::from_secs(1);

/// How long past [`REVISION_TTL`] an entry may still be served while one request reads the
/// deployment again. Without it, every request that finds the entry expired reads the
/// database at once: under load, hundreds of reads queue on the pool and Route stalls for
/// tens of milliseconds every [`REVISION_TTL`]. Past this, every request reads.
pub const STALE_GRACE: Duration = Duration::from_secs(5);

/// How long the request that took on a refresh has before another one may (its future may
/// have been dropped).
const REFRESH_CLAIM: Duration = Duration::from_secs(1);

/// A deployment with its current revision, shared by the requests that route on it.
pub type Current = Arc<(Deployment, Revision)>;

struct Entry {
    read_at: Instant,
    value: Current,
    /// Since when a request has been reading it again.
    refreshing: Option<Instant>,
}

/// What a request does with the cache's entry of a deployment.
enum Lookup {
    /// Serve it (fresh, or expired while another request reads it again).
    Serve(Current),
    /// Read the deployment (none cached, too old, or this request refreshes it); the cache's
    /// generation when it was decided.
    Read(u64),
}

/// The current revision of each deployment, in memory.
#[derive(Default)]
pub struct RevisionCache {
    map: Mutex<HashMap<String, Entry>>,
    /// Counts invalidations: a read that began before one is not cached (it may predate the
    /// change that caused it).
    generation: std::sync::atomic::AtomicU64,
}

impl RevisionCache {
    fn lookup(&self, id: &str) -> Lookup {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let Some(e) = map.get_mut(id) else {
            return Lookup::Read(generation);
        };
        let age = e.read_at.elapsed();
        if age < REVISION_TTL {
            return Lookup::Serve(e.value.clone());
        }
        if age >= REVISION_TTL + STALE_GRACE {
            return Lookup::Read(generation);
        }
        match e.refreshing {
            Some(since) if since.elapsed() < REFRESH_CLAIM => Lookup::Serve(e.value.clone()),
            _ => {
                e.refreshing = Some(Instant::now());
                Lookup::Read(generation)
            }
        }
    }

    /// Caches what a read that began at `read_at` (in `generation`) found, unless the cache
    /// was invalidated since or holds a later read.
    fn put(&self, id: &str, value: Current, read_at: Instant, generation: u64) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(std::sync::atomic::Ordering::SeqCst) != generation
            || map.get(id).is_some_and(|e| e.read_at > read_at)
        {
            return;
        }
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(
            id.to_string(),
            Entry {
                read_at,
                value,
                refreshing: None,
            },
        );
    }

    /// Drops a deployment's entry (after a change on this replica); reads already under way
    /// are not cached.
    pub fn invalidate(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        map.remove(id);
    }

    /// After a failed read that began at `read_at`: drops the entry unless a later read
    /// replaced it.
    fn forget_failed(&self, id: &str, read_at: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(id).is_some_and(|e| e.read_at <= read_at) {
            map.remove(id);
        }
    }
}

/// The answer of Route.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    /// Request id of the decision.
    pub request_id: String,
    /// Deployment.
    pub deployment: Deployment,
    /// Revision number.
    pub revision: i64,
    /// The chosen variant.
    pub variant: Variant,
    /// The shadow of the revision, if any.
    pub shadow: Option<Variant>,
}

impl Deployments {
    /// The deployment and its current revision (cached for [`REVISION_TTL`]; see
    /// [`STALE_GRACE`]).
    pub async fn current(&self, id: &str) -> Result<Current, Error> {
        let generation = match self.revisions.lookup(id) {
            Lookup::Serve(v) => return Ok(v),
            Lookup::Read(generation) => generation,
        };
        let read_at = Instant::now();
        match self.read_current(id).await {
            Ok(v) => {
                self.revisions.put(id, v.clone(), read_at, generation);
                Ok(v)
            }
            Err(e) => {
                // No stale answers for a deployment that cannot be read (deleted, or a
                // database error): the next requests read it themselves.
                self.revisions.forget_failed(id, read_at);
                Err(e)
            }
        }
    }

    async fn read_current(&self, id: &str) -> Result<Current, Error> {
        let c = self.db.conn();
        let d = store::get_one(c, id)
            .await?
            .ok_or_else(|| dep_not_found(id))?;
        let r = store::revision(c, id, d.current_revision)
            .await?
            .ok_or_else(|| Error::internal("current revision missing"))?;
        Ok(Arc::new((d, r)))
    }

    /// Picks the variant of `routing_key` (or of the request id when the key is empty).
    pub async fn pick(
        &self,
        id: &str,
        routing_key: &str,
        request_id: &str,
    ) -> Result<Routed, Error> {
        let cur = self.current(id).await?;
        let (d, r) = (&cur.0, &cur.1);
        let key = if routing_key.is_empty() {
            request_id
        } else {
            routing_key
        };
        let v = pick(&r.variants, bucket(id, key)).clone();
        Ok(Routed {
            request_id: request_id.to_string(),
            deployment: d.clone(),
            revision: r.number,
            variant: v,
            shadow: r.shadow.clone(),
        })
    }

    /// Route: picks the variant and records the decision durably before answering. A retry
    /// with the same request id answers with the recorded decision.
    pub async fn route(
        &self,
        ctx: &Ctx,
        id: &str,
        routing_key: &str,
        request_id: &str,
    ) -> Result<Routed, Error> {
        let started = Instant::now();
        let request_id = if request_id.is_empty() {
            uuid::Uuid::now_v7().simple().to_string()
        } else {
            request_id.to_string()
        };
        let routed = self.pick(id, routing_key, &request_id).await?;
        let d = Decision {
            request_id: request_id.clone(),
            time: steward_common::time::now_ms(),
            deployment: id.to_string(),
            revision: routed.revision,
            variant: routed.variant.name.clone(),
            model: routed.deployment.model.clone(),
            version: routed.variant.version,
            kind: "route".into(),
            input_digest: String::new(),
            inputs_json: None,
            inputs_erased: false,
            event_inputs_json: String::new(),
            outputs_json: String::new(),
            latency_us: started.elapsed().as_micros() as i64,
            error: String::new(),
            routing_key: routing_key.to_string(),
        };
        match self.writer.record(d, ctx.traceparent.clone()).await? {
            Written::New => Ok(routed),
            Written::Exists => self.replay_route(&request_id).await,
        }
    }

    async fn replay_route(&self, request_id: &str) -> Result<Routed, Error> {
        let c = self.db.conn();
        let prior = decisions::get_one(c, request_id)
            .await?
            .ok_or_else(|| Error::internal("recorded decision vanished"))?;
        let d = store::get_one(c, &prior.deployment)
            .await?
            .ok_or_else(|| dep_not_found(&prior.deployment))?;
        let r = store::revision(c, &prior.deployment, prior.revision)
            .await?
            .ok_or_else(|| Error::internal("revision of a decision missing"))?;
        let variant = r
            .variants
            .iter()
            .chain(r.shadow.iter())
            .find(|v| v.name == prior.variant)
            .cloned()
            .ok_or_else(|| Error::internal("variant of a decision missing"))?;
        Ok(Routed {
            request_id: request_id.to_string(),
            deployment: d,
            revision: r.number,
            variant,
            shadow: r.shadow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(revision: i64) -> Current {
        let d = Deployment {
            id: "d".into(),
            model: "m".into(),
            environment: "staging".into(),
            current_revision: revision,
            active_rollout: String::new(),
            active_ab_test: String::new(),
            creator: "me".into(),
            create_time: 0,
            update_time: 0,
            revision: 1,
        };
        let r = Revision {
            deployment: "d".into(),
            number: revision,
            variants: Vec::new(),
            shadow: None,
            reason: String::new(),
            creator: "me".into(),
            create_time: 0,
        };
        Arc::new((d, r))
    }

    fn served(l: Lookup) -> Option<i64> {
        match l {
            Lookup::Serve(v) => Some(v.1.number),
            Lookup::Read(_) => None,
        }
    }

    /// Sets the entry of "d" to `v` read at `at` (the tests' clock).
    fn put(cache: &RevisionCache, v: Current, at: Instant) {
        cache.map.lock().unwrap().insert(
            "d".into(),
            Entry {
                read_at: at,
                value: v,
                refreshing: None,
            },
        );
    }

    #[test]
    fn an_expired_entry_is_read_again_by_one_request_while_the_others_serve_it() {
        let cache = RevisionCache::default();
        assert_eq!(served(cache.lookup("d")), None, "nothing cached: read");
        put(&cache, current(1), Instant::now());
        assert_eq!(served(cache.lookup("d")), Some(1));

        let expired = Instant::now() - REVISION_TTL - Duration::from_millis(1);
        put(&cache, current(1), expired);
        assert_eq!(served(cache.lookup("d")), None, "the first request reads");
        assert_eq!(
            served(cache.lookup("d")),
            Some(1),
            "the others serve it meanwhile"
        );
        assert_eq!(served(cache.lookup("d")), Some(1));
        put(&cache, current(2), Instant::now());
        assert_eq!(served(cache.lookup("d")), Some(2), "the read replaced it");
    }

    #[test]
    fn a_refresh_that_never_came_back_is_taken_over_and_too_old_entries_are_not_served() {
        let cache = RevisionCache::default();
        let expired = Instant::now() - REVISION_TTL - Duration::from_millis(1);
        put(&cache, current(1), expired);
        assert_eq!(served(cache.lookup("d")), None);
        // The refreshing request's future was dropped long ago.
        cache.map.lock().unwrap().get_mut("d").unwrap().refreshing =
            Some(Instant::now() - REFRESH_CLAIM);
        assert_eq!(served(cache.lookup("d")), None, "another request reads");
        assert_eq!(served(cache.lookup("d")), Some(1));

        put(
            &cache,
            current(1),
            Instant::now() - REVISION_TTL - STALE_GRACE,
        );
        assert_eq!(served(cache.lookup("d")), None);
        assert_eq!(
            served(cache.lookup("d")),
            None,
            "past the grace every request reads"
        );

        put(&cache, current(1), Instant::now());
        cache.invalidate("d");
        assert_eq!(served(cache.lookup("d")), None, "dropped: read");
    }

    #[test]
    fn a_read_older_than_a_change_or_than_the_entry_is_not_cached() {
        let cache = RevisionCache::default();
        // A read begins, then a change on this replica invalidates the deployment.
        let Lookup::Read(g) = cache.lookup("d") else {
            panic!("nothing cached")
        };
        let began = Instant::now();
        cache.invalidate("d");
        cache.put("d", current(1), began, g);
        assert_eq!(
            served(cache.lookup("d")),
            None,
            "the pre-change read was not cached"
        );

        // A slow read does not replace a later one.
        let Lookup::Read(g) = cache.lookup("d") else {
            panic!("nothing cached")
        };
        let slow = Instant::now();
        cache.put("d", current(3), slow + Duration::from_millis(5), g);
        cache.put("d", current(2), slow, g);
        assert_eq!(served(cache.lookup("d")), Some(3));
        // Nor does its failure drop the later entry.
        cache.forget_failed("d", slow);
        assert_eq!(served(cache.lookup("d")), Some(3));
        cache.forget_failed("d", slow + Duration::from_millis(10));
        assert_eq!(served(cache.lookup("d")), None);
    }
}
