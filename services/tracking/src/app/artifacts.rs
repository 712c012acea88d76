//! Artifact use cases: streamed upload and download through the service, listing, and
//! presigned S3 URLs.
//!
//! Artifact paths are write-once per run: a path is reserved in the database before its bytes
//! are streamed, so concurrent uploads to one path cannot overwrite each other, and a finished
//! artifact is never replaced (upload under a new path instead). A reservation left by a
//! crashed upload expires after [`RESERVATION_TTL_MS`].

use std::time::Duration;

use steward_artifacts::{ArtifactPath, ByteStream, ObjectKey};
use steward_common::Error;
use steward_proto::events::{ArtifactWritten, event_envelope::Payload};
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{
    Ctx, SERVICE, Tracking, audit, canonical, emit, remember, replay, run_in, run_name,
    writable_run_in,
};
use crate::domain::ArtifactMeta;
use crate::store::artifacts as store;

/// How long an unfinished upload holds its path.
pub const RESERVATION_TTL_MS: i64 = 15 * 60 * 1000;
/// Longest presigned URL lifetime.
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Header of an upload, validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadHeader {
    /// Experiment id.
    pub experiment_id: String,
    /// Run id.
    pub run_id: String,
    /// Validated path.
    #[serde(skip)]
    pub path: Option<ArtifactPath>,
    /// Path text (for hashing).
    pub path_text: String,
    /// MIME type.
    pub content_type: String,
    /// Expected hex sha256, lowercase.
    pub expected_sha256: Option<String>,
}

enum Reserve {
    Replayed(ArtifactMeta),
    Reserved,
}

impl Tracking {
    fn key_for(&self, exp: &str, run_id: &str, path: &ArtifactPath) -> Result<ObjectKey, Error> {
        ObjectKey::for_run_artifact(exp, run_id, path)
    }

    /// Streams `data` into the run's artifact `path`.
    pub async fn upload_artifact(
        &self,
        ctx: &Ctx,
        h: UploadHeader,
        request_id: &str,
        data: ByteStream,
    ) -> Result<ArtifactMeta, Error> {
        let path = h
            .path
            .clone()
            .ok_or_else(|| Error::invalid_field("header.path", "missing"))?;
        let (exp, run_id) = (h.experiment_id.as_str(), h.run_id.as_str());
        let key = IdemKey::new(SERVICE, "UploadArtifact", request_id, &canonical(&h))?;
        let reserved = with_write_tx!(self.db, "reserve_artifact", |tx| {
            if let Some(v) = replay::<ArtifactMeta>(&tx, key.as_ref()).await? {
                return Ok(Reserve::Replayed(v));
            }
            writable_run_in(&*tx, exp, run_id).await?;
            let now = steward_common::time::now_ms();
            if let Some(existing) = store::get_one(&*tx, run_id, path.as_str()).await? {
                if !existing.sha256.is_empty() {
                    return Err(Error::already_exists(
                        "ARTIFACT_ALREADY_EXISTS",
                        format!("artifact {:?} already exists in this run; artifacts are immutable, use a new path", path.as_str()),
                    )
                    .with_violation("header.path", "already written"));
                }
                if now - existing.create_time < RESERVATION_TTL_MS {
                    return Err(Error::new(
                        steward_common::ErrorKind::Aborted,
                        "ARTIFACT_UPLOAD_IN_PROGRESS",
                        format!("another upload to {:?} is in progress", path.as_str()),
                    ));
                }
            }
            let pending = ArtifactMeta {
                path: path.as_str().to_string(),
                size_bytes: 0,
                sha256: String::new(),
                content_type: h.content_type.clone(),
                create_time: now,
            };
            store::upsert(&tx, run_id, &pending).await?;
            Ok(Reserve::Reserved)
        })?;
        if let Reserve::Replayed(m) = reserved {
            return Ok(m);
        }
        let okey = self.key_for(exp, run_id, &path)?;
        let put = self.objects.put(&okey, data).await;
        let meta = match put {
            Ok(m) => m,
            Err(e) => {
                self.release_reservation(run_id, path.as_str()).await;
                return Err(e);
            }
        };
        if let Some(want) = &h.expected_sha256
            && *want != meta.sha256
        {
            let _ = self.objects.delete(&okey).await;
            self.release_reservation(run_id, path.as_str()).await;
            return Err(Error::invalid_field(
                "header.expected_sha256",
                format!(
                    "the uploaded content has sha256 {}; nothing was stored",
                    meta.sha256
                ),
            ));
        }
        let art = ArtifactMeta {
            path: path.as_str().to_string(),
            size_bytes: meta.size as i64,
            sha256: meta.sha256.clone(),
            content_type: h.content_type.clone(),
            create_time: steward_common::time::now_ms(),
        };
        let name = run_name(exp, run_id);
        let res = with_write_tx!(self.db, "finish_artifact", |tx| {
            store::upsert(&tx, run_id, &art).await?;
            audit(
                &tx,
                ctx,
                "tracking.artifacts.write",
                format!("{name}/artifacts/{}", art.path),
                request_id,
                None::<&()>,
                Some(&art),
            )
            .await?;
            emit(
                &tx,
                ctx,
                "tracking.artifact.written",
                name.clone(),
                Payload::ArtifactWritten(ArtifactWritten {
                    run: name.clone(),
                    path: art.path.clone(),
                    size_bytes: art.size_bytes,
                    sha256: art.sha256.clone(),
                }),
            )
            .await?;
            remember(&tx, key.as_ref(), &art).await?;
            Ok(art.clone())
        });
        if res.is_err() {
            let _ = self.objects.delete(&okey).await;
            self.release_reservation(run_id, path.as_str()).await;
        }
        res
    }

    async fn release_reservation(&self, run_id: &str, path: &str) {
        let r: Result<(), Error> = {
            with_write_tx!(self.db, "release_artifact", |tx| {
                use sea_orm::ConnectionTrait;
                use sea_orm::sea_query::{Expr, ExprTrait, Query};
                use steward_storage::schema::Artifacts as A;
                let q = Query::delete()
                    .from_table(A::Table)
                    .and_where(Expr::col(A::RunId).eq(run_id))
                    .and_where(Expr::col(A::Path).eq(path))
                    .and_where(Expr::col(A::Sha256).eq(""))
                    .to_owned();
                tx.execute(&q).await.map_err(steward_storage::db_err)?;
                Ok(())
            })
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, run_id, path, "could not release an artifact reservation; it expires by itself");
        }
    }

    async fn finished_artifact(
        &self,
        exp: &str,
        run_id: &str,
        path: &ArtifactPath,
    ) -> Result<ArtifactMeta, Error> {
        run_in(self.db.conn(), exp, run_id).await?;
        match store::get_one(self.db.conn(), run_id, path.as_str()).await? {
            Some(m) if !m.sha256.is_empty() => Ok(m),
            _ => Err(Error::not_found(
                "ARTIFACT_NOT_FOUND",
                format!("{}/artifacts/{}", run_name(exp, run_id), path.as_str()),
            )),
        }
    }

    /// Opens an artifact for streaming.
    pub async fn open_artifact(
        &self,
        exp: &str,
        run_id: &str,
        path: &ArtifactPath,
    ) -> Result<(ArtifactMeta, ByteStream), Error> {
        let meta = self.finished_artifact(exp, run_id, path).await?;
        let (_, stream) = self.objects.get(&self.key_for(exp, run_id, path)?).await?;
        Ok((meta, stream))
    }

    /// Lists finished artifacts of a run under `prefix`.
    pub async fn list_artifacts(
        &self,
        exp: &str,
        run_id: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ArtifactMeta>, Option<String>), Error> {
        run_in(self.db.conn(), exp, run_id).await?;
        let (items, next) = store::list(self.db.conn(), run_id, prefix, after, limit).await?;
        Ok((
            items.into_iter().filter(|a| !a.sha256.is_empty()).collect(),
            next,
        ))
    }

    /// A presigned download URL and its expiry (ms). FAILED_PRECONDITION on local storage.
    pub async fn artifact_download_url(
        &self,
        exp: &str,
        run_id: &str,
        path: &ArtifactPath,
        expires: Duration,
    ) -> Result<(String, i64), Error> {
        if expires.is_zero() || expires > MAX_PRESIGN {
            return Err(Error::invalid_field(
                "expires_in",
                "must be between 1 second and 7 days",
            ));
        }
        self.finished_artifact(exp, run_id, path).await?;
        match self
            .objects
            .presign_get(&self.key_for(exp, run_id, path)?, expires)
            .await?
        {
            Some(url) => Ok((
                url,
                steward_common::time::now_ms() + expires.as_millis() as i64,
            )),
            None => Err(Error::failed_precondition(
                "PRESIGN_UNSUPPORTED",
                "presigned URLs need the S3 artifact store; download through DownloadArtifact instead",
            )),
        }
    }
}
