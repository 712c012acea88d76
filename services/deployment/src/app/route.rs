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
/// applies a revision drops its entry at once; other replicas follow within this time.
pub const REVISION_TTL: Duration = Duration::from_secs(1);

/// A deployment with its current revision, shared by the requests that route on it.
pub type Current = Arc<(Deployment, Revision)>;

/// The current revision of each deployment, in memory.
#[derive(Default)]
pub struct RevisionCache {
    map: Mutex<HashMap<String, (Instant, Current)>>,
}

impl RevisionCache {
    fn get(&self, id: &str) -> Option<Arc<(Deployment, Revision)>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|(t, _)| t.elapsed() < REVISION_TTL)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, id: &str, v: Arc<(Deployment, Revision)>, read_at: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(id.to_string(), (read_at, v));
    }

    /// Drops a deployment's entry (after a change on this replica).
    pub fn invalidate(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
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
    /// The deployment and its current revision (cached for [`REVISION_TTL`]).
    pub async fn current(&self, id: &str) -> Result<Arc<(Deployment, Revision)>, Error> {
        if let Some(v) = self.revisions.get(id) {
            return Ok(v);
        }
        let read_at = Instant::now();
        let c = self.db.conn();
        let d = store::get_one(c, id)
            .await?
            .ok_or_else(|| dep_not_found(id))?;
        let r = store::revision(c, id, d.current_revision)
            .await?
            .ok_or_else(|| Error::internal("current revision missing"))?;
        let v = Arc::new((d, r));
        self.revisions.put(id, v.clone(), read_at);
        Ok(v)
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
