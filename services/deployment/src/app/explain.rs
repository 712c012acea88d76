//! Decisions: look one up, explain it back to its model, approval, data and rollout, erase
//! sampled inputs, and expire them after the retention period.

use steward_common::Error;
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::peers::{LineageSummary, ResolvedVersion};
use super::{Ctx, Deployments, SERVICE, audit, canonical, remember, replay};
use crate::domain::{Decision, Revision};
use crate::store::{decisions as store, deployments as dstore};

/// Everything behind one decision.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The record.
    pub decision: Decision,
    /// The version that answered (approval included).
    pub version: ResolvedVersion,
    /// Its lineage.
    pub lineage: LineageSummary,
    /// The revision at the time (who applied it, why, its split).
    pub revision: Option<Revision>,
}

fn not_found(id: &str) -> Error {
    Error::not_found("DECISION_NOT_FOUND", format!("decisions/{id}"))
}

impl Deployments {
    /// One decision record.
    pub async fn get_decision(&self, request_id: &str) -> Result<Decision, Error> {
        store::get_one(self.db.conn(), request_id)
            .await?
            .ok_or_else(|| not_found(request_id))
    }

    /// The full chain behind a decision.
    pub async fn explain(&self, request_id: &str) -> Result<Explanation, Error> {
        let decision = self.get_decision(request_id).await?;
        let name = format!(
            "registeredModels/{}/versions/{}",
            decision.model, decision.version
        );
        let version = self.peers.resolve(&name, "request_id").await?;
        let lineage = self.peers.lineage(&name).await?;
        let revision =
            dstore::revision(self.db.conn(), &decision.deployment, decision.revision).await?;
        Ok(Explanation {
            decision,
            version,
            lineage,
            revision,
        })
    }

    /// Erases the sampled inputs of decisions (the digests stay). Audited.
    pub async fn erase_inputs(
        &self,
        ctx: &Ctx,
        ids: &[String],
        reason: &str,
        request_id: &str,
    ) -> Result<u64, Error> {
        let key = IdemKey::new(
            SERVICE,
            "EraseDecisionInputs",
            request_id,
            &canonical(&(ids, reason)),
        )?;
        with_write_tx!(self.db, "erase_inputs", |tx| {
            if let Some(v) = replay::<u64>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let n = store::erase_inputs(&tx, ids).await?;
            audit(
                &tx,
                ctx,
                "deployment.decisions.erase_inputs",
                "decisions".to_string(),
                request_id,
                None::<&()>,
                Some(&serde_json::json!({ "request_ids": ids, "reason": reason, "erased": n })),
            )
            .await?;
            remember(&tx, key.as_ref(), &n).await?;
            Ok(n)
        })
    }

    /// Drops sampled inputs older than the retention period; returns how many.
    pub async fn expire_inputs(&self) -> Result<u64, Error> {
        let before = steward_common::time::now_ms() - self.settings.input_retention_ms;
        with_write_tx!(self.db, "expire_inputs", |tx| {
            store::expire_inputs(&tx, before).await
        })
    }
}
