//! Model version use cases.

use std::collections::BTreeMap;

use steward_common::Error;
use steward_common::filter::{self, Field, Scope, VersionField};
use steward_common::names::{RunName, VersionRef, version_name};
use steward_proto::events::{ModelVersionCreated, ModelVersionUpdated, event_envelope::Payload};
use steward_storage::idempotency;
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::writer::{self, Prepared};

use super::{
    Ctx, Registry, SERVICE, audit, canonical, check_etag, emit, model_name, remember, replay,
};
use crate::domain::compare::{self, Comparison};
use crate::domain::{Lineage, ModelVersion, Signature, VersionStatus};
use crate::store::versions::{self as store, SortBy, VersionCursor};
use crate::store::{models, versions};

/// Where a new version's files are.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum VersionSource {
    /// A run's artifacts under a path (checked against tracking).
    Run {
        /// The run.
        run: String,
        /// Validated artifact path (directory or file).
        artifact_path: String,
    },
    /// An external URI (allowed scheme), with its digest if known.
    External {
        /// URI.
        uri: String,
        /// `sha256:...` or empty (the version is then CREATING).
        digest: String,
    },
}

/// Input of CreateModelVersion, validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewVersion {
    /// Source.
    pub source: VersionSource,
    /// Format.
    pub format: String,
    /// Signature.
    pub signature: Signature,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// Fields an update touches.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VersionPatch {
    /// New description.
    pub description: Option<String>,
    /// New tags.
    pub tags: Option<BTreeMap<String, String>>,
    /// New status (only CREATING -> READY | FAILED).
    pub status: Option<VersionStatus>,
    /// New status message.
    pub status_message: Option<String>,
    /// Digest (only while CREATING).
    pub content_digest: Option<String>,
}

/// Options of ListModelVersions.
#[derive(Debug, Clone)]
pub struct ListVersions {
    /// Model id.
    pub model: String,
    /// Filter text.
    pub filter: String,
    /// Order text.
    pub order_by: String,
    /// Page size.
    pub page_size: usize,
    /// Cursor.
    pub cursor: Option<VersionCursor>,
}

/// The `registry.version.created` payload of `v`.
pub(crate) fn created_event(v: &ModelVersion) -> Payload {
    Payload::ModelVersionCreated(ModelVersionCreated {
        model_version: v.resource(),
        registered_model: model_name(&v.model),
        version: v.version,
        source_run: v.source_run.clone(),
        content_digest: v.content_digest.clone(),
        status: v.status.name().to_string(),
    })
}

impl Registry {
    /// Creates the next version of `model`: checks the source (a run through the tracking
    /// API), then hands the version to the group-commit writer.
    pub async fn create_version(
        &self,
        ctx: &Ctx,
        model: &str,
        req: NewVersion,
        request_id: &str,
    ) -> Result<ModelVersion, Error> {
        let key = writer::key(model, &req, request_id)?;
        let (lineage, artifact_uri, digest, status, source_run, artifact_path, source_uri) =
            match &req.source {
                VersionSource::Run { run, artifact_path } => {
                    // Check the source before taking a number, so a bad source writes nothing.
                    let rn = RunName::parse(run, "model_version.source_run")?;
                    let snap = match self.source.snapshot(&rn, artifact_path).await {
                        Ok(s) => s,
                        Err(e) => {
                            // A retry of a create that succeeded replays it even if the run
                            // changed since; a missing model is reported as such.
                            if let Some(k) = &key
                                && let Some(bytes) = idempotency::peek(self.db.conn(), k).await?
                            {
                                return serde_json::from_slice(&bytes).map_err(|e| {
                                    Error::internal(format!("corrupt idempotency record: {e}"))
                                });
                            }
                            if models::get_row(self.db.conn(), model).await?.is_none() {
                                return Err(super::model_not_found(model));
                            }
                            return Err(e);
                        }
                    };
                    let digest = snap.content_digest();
                    (
                        snap.lineage,
                        snap.artifact_uri,
                        digest,
                        VersionStatus::Ready,
                        run.clone(),
                        artifact_path.clone(),
                        String::new(),
                    )
                }
                VersionSource::External { uri, digest } => {
                    let status = if digest.is_empty() {
                        VersionStatus::Creating
                    } else {
                        VersionStatus::Ready
                    };
                    (
                        Lineage::default(),
                        uri.clone(),
                        digest.clone(),
                        status,
                        String::new(),
                        String::new(),
                        uri.clone(),
                    )
                }
            };
        // No cache entry can be stale afterwards: the new number was never resolved (misses
        // are not cached) and no alias points at it yet.
        self.writer
            .create(Prepared {
                ctx: ctx.clone(),
                model: model.to_string(),
                key,
                request_id: request_id.to_string(),
                source_run,
                artifact_path,
                source_uri,
                artifact_uri,
                content_digest: digest,
                status,
                signature: req.signature,
                format: req.format,
                description: req.description,
                tags: req.tags,
                lineage,
            })
            .await
    }

    /// Gets a version by number or alias (cached).
    pub async fn get_version(&self, r: &VersionRef) -> Result<ModelVersion, Error> {
        self.resolve(r).await
    }

    /// Lists versions of a model.
    pub async fn list_versions(
        &self,
        req: ListVersions,
    ) -> Result<(Vec<ModelVersion>, Option<VersionCursor>), Error> {
        let f = filter::parse(&req.filter, Scope::ModelVersions, "filter")?;
        let order = filter::parse_order_by(&req.order_by, Scope::ModelVersions, "order_by")?;
        let (sort, desc) = match order.as_slice() {
            [] => (SortBy::Version, true),
            [k] => (
                match &k.field {
                    Field::Version(VersionField::Number) => SortBy::Version,
                    Field::Version(VersionField::CreateTime) => SortBy::CreateTime,
                    Field::Version(VersionField::UpdateTime) => SortBy::UpdateTime,
                    _ => {
                        return Err(Error::invalid_field(
                            "order_by",
                            "versions sort by version, create_time or update_time",
                        ));
                    }
                },
                k.desc,
            ),
            _ => return Err(Error::invalid_field("order_by", "versions sort by one key")),
        };
        let c = self.db.conn();
        if models::get_row(c, &req.model).await?.is_none() {
            return Err(super::model_not_found(&req.model));
        }
        store::list(
            c,
            &req.model,
            f.as_ref(),
            sort,
            desc,
            req.cursor.as_ref(),
            req.page_size,
        )
        .await
    }

    /// Updates description, tags, or the status of a CREATING version.
    pub async fn update_version(
        &self,
        ctx: &Ctx,
        r: &VersionRef,
        patch: VersionPatch,
        etag: &str,
        request_id: &str,
    ) -> Result<ModelVersion, Error> {
        let key = IdemKey::new(
            SERVICE,
            "UpdateModelVersion",
            request_id,
            &canonical(&(r.to_string(), &patch, etag)),
        )?;
        let model = r.model().as_str();
        let v = with_write_tx!(self.db, "update_version", |tx| {
            if let Some(v) = replay::<ModelVersion>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let before = self.resolve_uncached(&*tx, r).await?;
            check_etag(etag, before.revision, &before.resource())?;
            let mut v = before.clone();
            if let Some(d) = &patch.description {
                v.description = d.clone();
            }
            if let Some(t) = &patch.tags {
                v.tags = t.clone();
            }
            if patch.status.is_some() || patch.content_digest.is_some() {
                if before.status != VersionStatus::Creating {
                    return Err(Error::failed_precondition(
                        "VERSION_NOT_CREATING",
                        format!(
                            "{} is {}: status and content_digest change only while CREATING",
                            before.resource(),
                            before.status.name()
                        ),
                    ));
                }
                if let Some(d) = &patch.content_digest {
                    v.content_digest = d.clone();
                }
                if let Some(s) = patch.status {
                    if s == VersionStatus::Ready && v.content_digest.is_empty() {
                        return Err(Error::invalid_field(
                            "model_version.content_digest",
                            "a READY version needs a content digest",
                        ));
                    }
                    v.status = s;
                }
            }
            if let Some(m) = &patch.status_message {
                v.status_message = m.clone();
            }
            v.update_time = steward_common::time::now_ms();
            v.revision += 1;
            versions::update(&tx, &v).await?;
            audit(
                &tx,
                ctx,
                "registry.versions.update",
                v.resource(),
                request_id,
                Some(&before),
                Some(&v),
            )
            .await?;
            emit(
                &tx,
                ctx,
                "registry.version.updated",
                v.resource(),
                Payload::ModelVersionUpdated(ModelVersionUpdated {
                    model_version: v.resource(),
                    registered_model: model_name(&v.model),
                    version: v.version,
                    status: v.status.name().to_string(),
                }),
            )
            .await?;
            remember(&tx, key.as_ref(), &v).await?;
            Ok(v)
        })?;
        self.cache.invalidate(model, true).await;
        Ok(v)
    }

    /// The deployments that served a version (empty without a deployment service).
    pub async fn served_by(&self, v: &ModelVersion) -> Result<Vec<String>, Error> {
        self.deployments.serving(&v.model, v.version).await
    }

    /// A version with its frozen lineage.
    pub async fn lineage(&self, r: &VersionRef) -> Result<(ModelVersion, Lineage), Error> {
        let v = self.resolve(r).await?;
        let l = versions::lineage(self.db.conn(), &v.model, v.version)
            .await?
            .ok_or_else(|| {
                Error::not_found("MODEL_VERSION_NOT_FOUND", version_name(&v.model, v.version))
            })?;
        Ok((v, l))
    }

    /// The reproducibility manifest of a version: from its frozen lineage, the stored dataset
    /// versions holding its datasets' digests, and its run's environment lock files.
    pub async fn reproducibility(
        &self,
        r: &VersionRef,
    ) -> Result<crate::domain::repro::Manifest, Error> {
        use crate::domain::repro::{ReproDataset, assess};
        let (v, l) = self.lineage(r).await?;
        let mut datasets = Vec::with_capacity(l.datasets.len());
        for d in &l.datasets {
            let version = if d.source_uri.starts_with("datasets/")
                && self
                    .source
                    .dataset_version_holds(&d.source_uri, &d.digest)
                    .await?
            {
                Some(d.source_uri.clone())
            } else {
                None
            };
            datasets.push(ReproDataset {
                dataset: d.clone(),
                version,
            });
        }
        let env = if l.source_run.is_empty() {
            Vec::new()
        } else {
            let run = steward_common::names::RunName::parse(&l.source_run, "source_run")?;
            self.source.environment_files(&run).await?
        };
        Ok(assess(&v, &l, datasets, env))
    }

    /// Compares two versions.
    pub async fn compare(
        &self,
        base: &VersionRef,
        other: &VersionRef,
    ) -> Result<(ModelVersion, ModelVersion, Comparison), Error> {
        let (bv, bl) = self.lineage(base).await?;
        let (ov, ol) = self.lineage(other).await?;
        let c = compare::compare((&bv, &bl), (&ov, &ol));
        Ok((bv, ov, c))
    }
}
