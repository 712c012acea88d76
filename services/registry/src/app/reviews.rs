//! Approval use cases.

use steward_common::Error;
use steward_common::names::VersionRef;
use steward_proto::events::{ApprovalChanged, event_envelope::Payload};
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{
    Ctx, Registry, SERVICE, audit, canonical, check_etag, emit, model_name, remember, replay,
};
use crate::domain::{ApprovalState, ModelVersion, Review, VersionStatus};
use crate::store::{reviews, versions};

impl Registry {
    /// Records a review decision on a version. The reviewer may not be its creator.
    pub async fn review(
        &self,
        ctx: &Ctx,
        r: &VersionRef,
        decision: ApprovalState,
        comment: &str,
        etag: &str,
        request_id: &str,
    ) -> Result<ModelVersion, Error> {
        let key = IdemKey::new(
            SERVICE,
            "ReviewModelVersion",
            request_id,
            &canonical(&(r.to_string(), decision, comment, etag)),
        )?;
        let model = r.model().as_str();
        let v = with_write_tx!(self.db, "review", |tx| {
            if let Some(v) = replay::<ModelVersion>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let before = self.resolve_uncached(&*tx, r).await?;
            check_etag(etag, before.revision, &before.resource())?;
            if before.creator == ctx.actor {
                return Err(Error::new(
                    steward_common::ErrorKind::PermissionDenied,
                    "SELF_REVIEW",
                    format!(
                        "{} was created by {:?}, who may not review it; ask another reviewer",
                        before.resource(),
                        ctx.actor
                    ),
                ));
            }
            if before.status != VersionStatus::Ready {
                return Err(Error::failed_precondition(
                    "VERSION_NOT_READY",
                    format!(
                        "{} is {}; only READY versions are reviewed",
                        before.resource(),
                        before.status.name()
                    ),
                ));
            }
            let review = Review {
                state: decision,
                reviewer: ctx.actor.clone(),
                comment: comment.to_string(),
                time: steward_common::time::now_ms(),
            };
            let mut v = before.clone();
            v.approval = decision;
            v.last_review = Some(review.clone());
            v.update_time = review.time;
            v.revision += 1;
            versions::update(&tx, &v).await?;
            reviews::insert(&tx, &v.model, v.version, &review).await?;
            audit(
                &tx,
                ctx,
                "registry.versions.review",
                v.resource(),
                request_id,
                Some(&before.approval),
                Some(&review),
            )
            .await?;
            emit(
                &tx,
                ctx,
                "registry.approval.changed",
                v.resource(),
                Payload::ApprovalChanged(ApprovalChanged {
                    model_version: v.resource(),
                    registered_model: model_name(&v.model),
                    version: v.version,
                    state: decision.name().to_string(),
                    reviewer: ctx.actor.clone(),
                }),
            )
            .await?;
            remember(&tx, key.as_ref(), &v).await?;
            Ok(v)
        })?;
        self.cache.invalidate(model, true).await;
        Ok(v)
    }

    /// Review decisions on a version, newest first.
    pub async fn review_history(
        &self,
        r: &VersionRef,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, Review)>, Error> {
        let v = self.resolve_uncached(self.db.conn(), r).await?;
        reviews::list(self.db.conn(), &v.model, v.version, before_id, limit).await
    }
}
