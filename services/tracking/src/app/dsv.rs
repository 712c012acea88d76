//! Dataset version use cases: create (upload or external reference), stream files in, commit
//! with schema and profile, read, download verified, diff, and delete with garbage collection.
//!
//! File contents are cut into content-defined chunks ([`steward_cas::Chunker`]) stored once by
//! SHA-256 under `cas/sha256/..` in the artifact store; see [`crate::store::dsv`] for how chunks
//! stay safe against a concurrent collector.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::Digest as _;
use steward_artifacts::{ArtifactPath, ByteStream, ObjectKey, ObjectStore};
use steward_cas::{ChunkParams, ChunkRef, Chunker, ManifestEntry};
use steward_common::{Error, ErrorKind};
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;
use tokio::sync::mpsc;

use super::{Ctx, SERVICE, Tracking, audit, remember, replay};
use crate::domain::datasets::{
    DatasetFile, DatasetVersion, ExternalRef, VersionRef, VersionState, version_name,
};
use crate::store::dsv as store;

/// How long an unfinished file upload holds its path.
pub const FILE_RESERVATION_TTL_MS: i64 = 15 * 60 * 1000;
/// Chunks registered and written together.
const BATCH: usize = 8;
/// Batches in flight per upload (memory per upload: about (BATCH x this + 8) chunks, each at
/// most 4 MiB and 1 MiB on average).
const BATCHES_IN_FLIGHT: usize = 3;
/// Chunks read ahead per download.
const READ_AHEAD: usize = 4;
/// Max files per version.
pub const MAX_FILES_PER_VERSION: usize = 100_000;

/// A version to create.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewVersion {
    /// Dataset id.
    pub dataset: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// An external reference, verified before the version is created.
    pub external: Option<ExternalRef>,
}

/// A validated upload header.
#[derive(Debug, Clone)]
pub struct FileHeader {
    /// Dataset id.
    pub dataset: String,
    /// Version number.
    pub version: i64,
    /// Path inside the version.
    pub path: ArtifactPath,
    /// Expected hex SHA-256.
    pub expected_sha256: Option<String>,
    /// Expected size.
    pub expected_size: Option<i64>,
}

/// What a commit must find.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CommitCheck {
    /// Exact number of files (0 = any).
    pub file_count: i64,
    /// Manifest digest (empty = any).
    pub digest: String,
    /// Skip schema and profile.
    pub skip_profile: bool,
}

/// Profiles a version's tabular files at commit: per file `(path, schema JSON, encoded
/// profile)`, and the version-level `(schema JSON, encoded profile)` when the files share one
/// schema. Implemented in [`crate::app::dsv_profile`].
pub(crate) type ProfileResult = (Vec<(String, String, Vec<u8>)>, String, Vec<u8>);

fn not_found(ds: &str, v: &VersionRef) -> Error {
    let name = match v {
        VersionRef::Number(n) => version_name(ds, *n),
        VersionRef::Latest => format!("datasets/{ds}/versions/latest"),
    };
    Error::not_found("DATASET_VERSION_NOT_FOUND", name)
}

fn pending_only(v: &DatasetVersion) -> Result<(), Error> {
    if v.state != VersionState::Pending {
        return Err(Error::failed_precondition(
            "DATASET_VERSION_COMMITTED",
            format!(
                "{} is committed and immutable; create a new version",
                v.name()
            ),
        ));
    }
    Ok(())
}

fn committed_only(v: &DatasetVersion) -> Result<(), Error> {
    if v.state != VersionState::Committed {
        return Err(Error::failed_precondition(
            "DATASET_VERSION_PENDING",
            format!("{} is not committed yet", v.name()),
        ));
    }
    Ok(())
}

impl Tracking {
    /// Creates a version: PENDING for uploads, or COMMITTED at once for a verified external
    /// reference.
    pub async fn create_dataset_version(
        &self,
        ctx: &Ctx,
        new: NewVersion,
        request_id: &str,
    ) -> Result<DatasetVersion, Error> {
        let key = IdemKey::new(
            SERVICE,
            "CreateDatasetVersion",
            request_id,
            &super::canonical(&new),
        )?;
        let external = match &new.external {
            Some(e) => Some(super::dsv_external::verify(self.objects.as_ref(), e).await?),
            None => None,
        };
        let now = steward_common::time::now_ms();
        with_write_tx!(self.db, "create_dataset_version", |tx| {
            if let Some(v) = replay::<(String, i64)>(&tx, key.as_ref()).await? {
                return store::get_version(&*tx, &v.0, &VersionRef::Number(v.1))
                    .await?
                    .ok_or_else(|| not_found(&v.0, &VersionRef::Number(v.1)));
            }
            let n = store::next_version(&tx, &new.dataset, now).await?;
            let mut v = DatasetVersion {
                dataset: new.dataset.clone(),
                version: n,
                state: VersionState::Pending,
                digest: String::new(),
                description: new.description.clone(),
                tags: new.tags.clone(),
                creator: ctx.actor.clone(),
                create_time: now,
                commit_time: None,
                file_count: 0,
                size_bytes: 0,
                new_bytes: 0,
                schema_json: String::new(),
                profile: Vec::new(),
                external: external.clone(),
            };
            if let Some(e) = &external {
                let file = file_name_of(&e.uri);
                v.state = VersionState::Committed;
                v.commit_time = Some(now);
                v.file_count = 1;
                v.size_bytes = e.size_bytes;
                v.digest = steward_cas::manifest_digest(&[ManifestEntry {
                    path: &file,
                    size: e.size_bytes as u64,
                    sha256: &e.sha256,
                }]);
                store::insert_version(&tx, &v).await?;
                store::insert_file(
                    &tx,
                    &v.dataset,
                    n,
                    &DatasetFile {
                        size_bytes: e.size_bytes,
                        sha256: e.sha256.clone(),
                        ..DatasetFile::empty(&file, now)
                    },
                )
                .await?;
            } else {
                store::insert_version(&tx, &v).await?;
            }
            audit(
                &tx,
                ctx,
                "tracking.datasets.create_version",
                v.name(),
                request_id,
                None::<&()>,
                Some(&v),
            )
            .await?;
            remember(&tx, key.as_ref(), &(v.dataset.clone(), v.version)).await?;
            Ok(v)
        })
    }

    async fn version_of<C: sea_orm::ConnectionTrait>(
        c: &C,
        ds: &str,
        v: &VersionRef,
    ) -> Result<DatasetVersion, Error> {
        store::get_version(c, ds, v)
            .await?
            .ok_or_else(|| not_found(ds, v))
    }

    /// Streams one file into a PENDING version.
    pub async fn upload_dataset_file(
        &self,
        ctx: &Ctx,
        h: FileHeader,
        data: ByteStream,
    ) -> Result<DatasetFile, Error> {
        let (ds, ver, path) = (h.dataset.as_str(), h.version, h.path.as_str());
        let now = steward_common::time::now_ms();
        let stale = with_write_tx!(self.db, "reserve_dataset_file", |tx| {
            let v = Self::version_of(&*tx, ds, &VersionRef::Number(ver)).await?;
            pending_only(&v)?;
            let mut stale = Vec::new();
            if let Some(f) = store::get_file(&*tx, ds, ver, path).await? {
                if !f.sha256.is_empty() {
                    return Err(Error::already_exists(
                        "DATASET_FILE_EXISTS",
                        format!("{} already has a file {path:?}", v.name()),
                    )
                    .with_violation("header.path", "already uploaded in this version"));
                }
                if now - f.create_time < FILE_RESERVATION_TTL_MS {
                    return Err(Error::new(
                        ErrorKind::Aborted,
                        "DATASET_UPLOAD_IN_PROGRESS",
                        format!("another upload of {path:?} to {} is in progress", v.name()),
                    ));
                }
                stale = store::delete_file(&tx, ds, ver, path).await?;
            }
            let count = store::count_files(&*tx, ds, ver).await?;
            if count >= MAX_FILES_PER_VERSION {
                return Err(Error::limit(
                    "header.path",
                    format!("a version holds at most {MAX_FILES_PER_VERSION} files"),
                ));
            }
            store::insert_file(&tx, ds, ver, &DatasetFile::empty(path, now)).await?;
            Ok(stale)
        })?;
        self.collect(stale).await;
        // If the call is dropped (the client went away), the reservation and the chunks only it
        // used are removed in the background.
        let mut guard = AbandonOnDrop {
            app: Some(self.clone()),
            ds: ds.to_string(),
            ver,
            path: path.to_string(),
            reserved: now,
        };
        let result = self.receive_file(ctx, &h, now, data).await;
        guard.app = None;
        if let Err(e) = &result
            && e.reason != "DATASET_UPLOAD_SUPERSEDED"
        {
            self.abandon_file(ds, ver, path, now).await;
        }
        result
    }

    /// Streams the bytes of a reserved file, checks them, and records the file.
    async fn receive_file(
        &self,
        ctx: &Ctx,
        h: &FileHeader,
        reserved: i64,
        data: ByteStream,
    ) -> Result<DatasetFile, Error> {
        let (ds, ver, path) = (h.dataset.as_str(), h.version, h.path.as_str());
        let f = self.store_stream(ds, ver, path, data).await?;
        if let Some(want) = &h.expected_sha256
            && *want != f.sha256
        {
            return Err(Error::invalid_field(
                "header.expected_sha256",
                format!(
                    "the uploaded content has sha256 {}; nothing was stored",
                    f.sha256
                ),
            ));
        }
        if let Some(size) = h.expected_size
            && size != f.size_bytes
        {
            return Err(Error::invalid_field(
                "header.expected_size",
                format!(
                    "the upload carried {} bytes, not {size}; nothing was stored",
                    f.size_bytes
                ),
            ));
        }
        with_write_tx!(self.db, "finish_dataset_file", |tx| {
            let v = Self::version_of(&*tx, ds, &VersionRef::Number(ver)).await?;
            pending_only(&v)?;
            match store::get_file(&*tx, ds, ver, path).await? {
                Some(r) if r.create_time == reserved && r.sha256.is_empty() => {}
                _ => {
                    return Err(Error::new(
                        ErrorKind::Aborted,
                        "DATASET_UPLOAD_SUPERSEDED",
                        format!("the upload of {path:?} expired and was replaced"),
                    ));
                }
            }
            store::finish_file(&tx, ds, ver, &f).await?;
            audit(
                &tx,
                ctx,
                "tracking.datasets.upload_file",
                format!("{}/files/{path}", v.name()),
                "",
                None::<&()>,
                Some(&f),
            )
            .await?;
            Ok(())
        })?;
        Ok(f)
    }

    /// Removes the unfinished upload reserved at `reserved` and collects the chunks only it
    /// used. References left under the path with no file row (the version was deleted
    /// meanwhile) are removed too; another upload's reservation is left alone.
    async fn abandon_file(&self, ds: &str, ver: i64, path: &str, reserved: i64) {
        let removed = with_write_tx!(self.db, "abandon_dataset_file", |tx| {
            match store::get_file(&*tx, ds, ver, path).await? {
                Some(f) if f.sha256.is_empty() && f.create_time == reserved => {
                    store::delete_file(&tx, ds, ver, path).await
                }
                None => store::delete_file(&tx, ds, ver, path).await,
                _ => Ok(Vec::new()),
            }
        });
        match removed {
            Ok(d) => {
                self.collect(d).await;
            }
            Err(e) => tracing::warn!(error = %e, path, "could not remove an abandoned upload"),
        }
    }

    /// Cuts `data` into chunks, stores the new ones, and returns the file (not yet recorded).
    async fn store_stream(
        &self,
        ds: &str,
        ver: i64,
        path: &str,
        mut data: ByteStream,
    ) -> Result<DatasetFile, Error> {
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(8);
        let (sum_tx, mut sum_rx) = mpsc::channel::<Bytes>(8);
        let (out_tx, out_rx) = mpsc::channel::<(ChunkRef, Bytes)>(8);
        // Two blocking threads: one hashes the whole file, the other cuts chunks and hashes
        // each; the stream is read here and its pieces (shared, not copied) go to both.
        let summer = tokio::task::spawn_blocking(move || {
            let mut whole = sha2::Sha256::new();
            let mut size = 0u64;
            while let Some(b) = sum_rx.blocking_recv() {
                whole.update(&b);
                size += b.len() as u64;
            }
            (hex::encode(whole.finalize()), size)
        });
        let cpu = tokio::task::spawn_blocking(move || {
            let mut chunker = Chunker::new(ChunkParams::DATASETS).expect("valid chunk params");
            let send = |c: Bytes| {
                let d: [u8; 32] = sha2::Sha256::digest(&c).into();
                let r = ChunkRef {
                    sha256: d,
                    size: c.len() as u64,
                };
                out_tx.blocking_send((r, c)).is_ok()
            };
            while let Some(b) = in_rx.blocking_recv() {
                for c in chunker.push(&b) {
                    if !send(c) {
                        return false;
                    }
                }
            }
            for c in chunker.finish() {
                if !send(c) {
                    return false;
                }
            }
            true
        });
        let reader = async move {
            while let Some(b) = data.next().await {
                let b = b?;
                if sum_tx.send(b.clone()).await.is_err() || in_tx.send(b).await.is_err() {
                    break;
                }
            }
            Ok::<(), Error>(())
        };
        let objects = self.objects.clone();
        let writer = tokio_stream::wrappers::ReceiverStream::new(out_rx)
            .ready_chunks(BATCH)
            .map(|batch| self.store_batch(objects.clone(), ds, ver, path, batch))
            .buffered(BATCHES_IN_FLIGHT)
            .try_fold((Vec::new(), 0i64), |(mut refs, new), (b, n)| async move {
                refs.extend(b);
                Ok((refs, new + n))
            });
        let (read, written) = futures::join!(reader, writer);
        let chunked = cpu.await.map_err(Error::internal)?;
        let (sha256, size) = summer.await.map_err(Error::internal)?;
        read?;
        let (refs, new_bytes) = written?;
        if !chunked {
            return Err(Error::internal("chunker stopped early"));
        }
        Ok(DatasetFile {
            size_bytes: size as i64,
            sha256,
            chunks: steward_cas::encode_chunks(&refs),
            new_bytes,
            ..DatasetFile::empty(path, 0)
        })
    }

    /// Registers a batch of chunks for a file, writes those not stored yet, marks them stored.
    async fn store_batch(
        &self,
        objects: Arc<dyn ObjectStore>,
        ds: &str,
        ver: i64,
        path: &str,
        batch: Vec<(ChunkRef, Bytes)>,
    ) -> Result<(Vec<ChunkRef>, i64), Error> {
        let refs: Vec<ChunkRef> = batch.iter().map(|(r, _)| *r).collect();
        let now = steward_common::time::now_ms();
        let stored = with_write_tx!(self.db, "register_chunks", |tx| {
            store::register_chunks(&tx, ds, ver, path, &refs, now).await
        })?;
        let mut todo: BTreeMap<String, Bytes> = BTreeMap::new();
        for (r, bytes) in batch {
            let hex = r.hex();
            if stored.get(&hex) == Some(&false) {
                todo.insert(hex, bytes);
            }
        }
        let new_bytes: i64 = todo.values().map(|b| b.len() as i64).sum();
        let mut items = Vec::with_capacity(todo.len());
        let mut written = Vec::with_capacity(todo.len());
        for (hex, bytes) in todo {
            items.push((ObjectKey::for_chunk(&hex)?, bytes));
            written.push(hex);
        }
        if !items.is_empty() {
            objects.put_known_many(items).await?;
        }
        if !written.is_empty() {
            with_write_tx!(self.db, "mark_chunks_stored", |tx| {
                store::mark_stored(&tx, &written).await
            })?;
        }
        Ok((refs, new_bytes))
    }

    /// Deletes the chunks among `digests` that no file references any more; returns (chunks,
    /// bytes) reclaimed. Failures are logged: a chunk left behind is only wasted space, found
    /// again by the next collection that names it.
    pub(crate) async fn collect(&self, digests: Vec<String>) -> (i64, i64) {
        let mut reclaimed = (0i64, 0i64);
        let unique: BTreeSet<String> = digests.into_iter().collect();
        for d in unique {
            let objects = self.objects.clone();
            let r = with_write_tx!(self.db, "collect_chunk", |tx| {
                match store::collect_chunk(&tx, &d).await? {
                    Some(size) => {
                        // Deleted inside the transaction that holds the row: an upload that
                        // wants this chunk waits and then writes it again.
                        objects.delete(&ObjectKey::for_chunk(&d)?).await?;
                        Ok(Some(size))
                    }
                    None => Ok(None),
                }
            });
            match r {
                Ok(Some(size)) => {
                    reclaimed.0 += 1;
                    reclaimed.1 += size;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, chunk = %d, "could not collect a chunk"),
            }
        }
        reclaimed
    }

    /// Commits a PENDING version: checks it, profiles its tabular files, freezes its digest.
    pub async fn commit_dataset_version(
        &self,
        ctx: &Ctx,
        ds: &str,
        ver: i64,
        check: CommitCheck,
        request_id: &str,
    ) -> Result<DatasetVersion, Error> {
        let key = IdemKey::new(
            SERVICE,
            "CommitDatasetVersion",
            request_id,
            &super::canonical(&(ds, ver, &check)),
        )?;
        let conn = self.db.conn();
        if key.is_some() {
            let v = Self::version_of(conn, ds, &VersionRef::Number(ver)).await?;
            if v.state == VersionState::Committed {
                // A retry after success answers from the idempotency record below.
                let replayed = with_write_tx!(self.db, "commit_replay", |tx| {
                    replay::<i64>(&tx, key.as_ref()).await
                })?;
                if replayed.is_some() {
                    return Ok(v);
                }
            }
        }
        let v = Self::version_of(conn, ds, &VersionRef::Number(ver)).await?;
        pending_only(&v)?;
        let files = store::list_files(conn, ds, ver, None, 0).await?;
        let digest = check_files(&v, &files, &check)?;
        let profiles = if check.skip_profile {
            (Vec::new(), String::new(), Vec::new())
        } else {
            super::dsv_profile::profile_version(self, &files).await?
        };
        let now = steward_common::time::now_ms();
        let (v, stray) = with_write_tx!(self.db, "commit_dataset_version", |tx| {
            let mut v = Self::version_of(&*tx, ds, &VersionRef::Number(ver)).await?;
            pending_only(&v)?;
            let files = store::list_files(&*tx, ds, ver, None, 0).await?;
            if check_files(&v, &files, &check)? != digest {
                return Err(Error::new(
                    ErrorKind::Aborted,
                    "DATASET_VERSION_CHANGED",
                    format!("files of {} changed during the commit; retry", v.name()),
                ));
            }
            for (path, schema, profile) in &profiles.0 {
                store::set_file_profile(&tx, ds, ver, path, schema, profile).await?;
            }
            let stray = store::prune_refs(&tx, ds, ver, &files).await?;
            v.state = VersionState::Committed;
            v.digest = digest.clone();
            v.commit_time = Some(now);
            v.file_count = files.len() as i64;
            v.size_bytes = files.iter().map(|f| f.size_bytes).sum();
            v.new_bytes = files.iter().map(|f| f.new_bytes).sum();
            v.schema_json = profiles.1.clone();
            v.profile = profiles.2.clone();
            store::commit_version(&tx, &v).await?;
            audit(
                &tx,
                ctx,
                "tracking.datasets.commit_version",
                v.name(),
                request_id,
                None::<&()>,
                Some(&v),
            )
            .await?;
            remember(&tx, key.as_ref(), &ver).await?;
            Ok((v, stray))
        })?;
        self.collect(stray).await;
        Ok(v)
    }

    /// A version by number or `latest`.
    pub async fn dataset_version(&self, ds: &str, v: &VersionRef) -> Result<DatasetVersion, Error> {
        Self::version_of(self.db.conn(), ds, v).await
    }

    /// Versions of a dataset, newest first; the cursor is the last version returned.
    pub async fn list_dataset_versions(
        &self,
        ds: &str,
        show_pending: bool,
        before: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<DatasetVersion>, Option<i64>), Error> {
        let mut items =
            store::list_versions(self.db.conn(), ds, show_pending, before, limit + 1).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|v| v.version)
        } else {
            None
        };
        Ok((items, next))
    }

    /// Datasets by id with their committed version count and newest committed version.
    #[allow(clippy::type_complexity)]
    pub async fn list_datasets(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<
        (
            Vec<(String, i64, i64, Option<DatasetVersion>)>,
            Option<String>,
        ),
        Error,
    > {
        let c = self.db.conn();
        let mut ids = store::list_datasets(c, after, limit + 1).await?;
        let next = if ids.len() > limit {
            ids.truncate(limit);
            ids.last().map(|(id, _)| id.clone())
        } else {
            None
        };
        let mut out = Vec::with_capacity(ids.len());
        for (id, created) in ids {
            let count = store::committed_count(c, &id).await?;
            let latest = store::get_version(c, &id, &VersionRef::Latest).await?;
            out.push((id, created, count, latest));
        }
        Ok((out, next))
    }

    /// Files of a version by path (finished ones).
    pub async fn list_dataset_files(
        &self,
        ds: &str,
        v: &VersionRef,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(DatasetVersion, Vec<DatasetFile>, Option<String>), Error> {
        let c = self.db.conn();
        let v = Self::version_of(c, ds, v).await?;
        let mut files = store::list_files(c, ds, v.version, after, limit + 1).await?;
        let next = if files.len() > limit {
            files.truncate(limit);
            files.last().map(|f| f.path.clone())
        } else {
            None
        };
        files.retain(|f| !f.sha256.is_empty());
        Ok((v, files, next))
    }

    /// Opens a file of a committed version: its bytes, each chunk checked against its digest.
    pub async fn open_dataset_file(
        &self,
        ds: &str,
        v: &VersionRef,
        path: &str,
    ) -> Result<(DatasetVersion, DatasetFile, ByteStream), Error> {
        let c = self.db.conn();
        let v = Self::version_of(c, ds, v).await?;
        committed_only(&v)?;
        let f = store::get_file(c, ds, v.version, path)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "DATASET_FILE_NOT_FOUND",
                    format!("{}/files/{path}", v.name()),
                )
            })?;
        if let Some(e) = &v.external {
            return Err(Error::failed_precondition(
                "DATASET_VERSION_EXTERNAL",
                format!(
                    "{} references external data; read it from {}{}",
                    v.name(),
                    e.uri,
                    if e.version_id.is_empty() {
                        String::new()
                    } else {
                        format!(" at version {}", e.version_id)
                    }
                ),
            ));
        }
        let chunks = steward_cas::decode_chunks(&f.chunks)
            .ok_or_else(|| Error::internal("corrupt chunk list"))?;
        let stream = chunk_stream(self.objects.clone(), chunks);
        Ok((v, f, stream))
    }

    /// Deletes a version and reclaims the chunks no other version uses. Refused while a model
    /// version's lineage names the version's digest (and no other committed version holds the
    /// same digest).
    pub async fn delete_dataset_version(
        &self,
        ctx: &Ctx,
        ds: &str,
        ver: i64,
        request_id: &str,
    ) -> Result<(i64, i64), Error> {
        let key = IdemKey::new(
            SERVICE,
            "DeleteDatasetVersion",
            request_id,
            &super::canonical(&(ds, ver)),
        )?;
        let removed = with_write_tx!(self.db, "delete_dataset_version", |tx| {
            if let Some(r) = replay::<(i64, i64)>(&tx, key.as_ref()).await? {
                return Ok(Err(r));
            }
            let v = Self::version_of(&*tx, ds, &VersionRef::Number(ver)).await?;
            if v.state == VersionState::Committed {
                // Refused while a model version was trained on it: by name, or by digest when
                // no other committed version holds the same files.
                let twins = store::versions_with_digest(&*tx, &v.digest).await?;
                let users = store::model_versions_using(&*tx, &v.digest).await?;
                if let Some((mv, _)) = users
                    .iter()
                    .find(|(_, uri)| *uri == v.name() || twins.len() <= 1)
                {
                    return Err(Error::failed_precondition(
                        "DATASET_VERSION_IN_USE",
                        format!(
                            "{} ({}) is in the lineage of {mv}; a model version's training data cannot be deleted",
                            v.name(),
                            v.digest
                        ),
                    ));
                }
            }
            let digests = store::delete_version(&tx, ds, ver).await?;
            audit(
                &tx,
                ctx,
                "tracking.datasets.delete_version",
                v.name(),
                request_id,
                Some(&v),
                None::<&()>,
            )
            .await?;
            Ok(Ok(digests))
        })?;
        let reclaimed = match removed {
            Err(replayed) => return Ok(replayed),
            Ok(digests) => self.collect(digests).await,
        };
        if key.is_some() {
            with_write_tx!(self.db, "delete_dataset_version_result", |tx| {
                remember(&tx, key.as_ref(), &reclaimed).await
            })?;
        }
        Ok(reclaimed)
    }

    /// All files of a committed version (for diff and lineage).
    pub async fn dataset_files(
        &self,
        ds: &str,
        v: &VersionRef,
    ) -> Result<(DatasetVersion, Vec<DatasetFile>), Error> {
        let c = self.db.conn();
        let v = Self::version_of(c, ds, v).await?;
        committed_only(&v)?;
        let files = store::list_files(c, ds, v.version, None, 0).await?;
        Ok((v, files))
    }
}

/// The manifest digest of `files`, after checking they can be committed.
fn check_files(
    v: &DatasetVersion,
    files: &[DatasetFile],
    check: &CommitCheck,
) -> Result<String, Error> {
    if files.is_empty() {
        return Err(Error::failed_precondition(
            "DATASET_VERSION_EMPTY",
            format!(
                "{} has no files; upload at least one before committing",
                v.name()
            ),
        ));
    }
    if let Some(f) = files.iter().find(|f| f.sha256.is_empty()) {
        return Err(Error::failed_precondition(
            "DATASET_UPLOAD_UNFINISHED",
            format!(
                "the upload of {:?} to {} has not finished",
                f.path,
                v.name()
            ),
        ));
    }
    if check.file_count > 0 && check.file_count != files.len() as i64 {
        return Err(Error::failed_precondition(
            "DATASET_VERSION_INCOMPLETE",
            format!(
                "{} has {} files, not the {} expected",
                v.name(),
                files.len(),
                check.file_count
            ),
        )
        .with_violation("expected_file_count", "does not match the uploaded files"));
    }
    let entries: Vec<ManifestEntry<'_>> = files
        .iter()
        .map(|f| ManifestEntry {
            path: &f.path,
            size: f.size_bytes as u64,
            sha256: &f.sha256,
        })
        .collect();
    let digest = steward_cas::manifest_digest(&entries);
    if !check.digest.is_empty() && check.digest != digest {
        return Err(Error::failed_precondition(
            "DATASET_DIGEST_MISMATCH",
            format!(
                "{} has digest {digest}, not {}; a file is missing, extra or different",
                v.name(),
                check.digest
            ),
        )
        .with_violation("expected_digest", "does not match the uploaded files"));
    }
    Ok(digest)
}

/// The last path segment of an `s3://bucket/key` URI (the file name of an external version).
fn file_name_of(uri: &str) -> String {
    uri.rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("data")
        .to_string()
}

/// The bytes of `chunks` in order, read ahead a few at a time, each checked against its digest.
pub(crate) fn chunk_stream(objects: Arc<dyn ObjectStore>, chunks: Vec<ChunkRef>) -> ByteStream {
    // Each read (and its digest check) is its own task, so reads ahead run on every core
    // while earlier chunks are being sent.
    let s = futures::stream::iter(chunks)
        .map(move |c| {
            let objects = objects.clone();
            let task = tokio::spawn(async move { read_chunk(objects.as_ref(), &c).await });
            async move { task.await.map_err(Error::internal)? }
        })
        .buffered(READ_AHEAD);
    Box::pin(s)
}

async fn read_chunk(objects: &dyn ObjectStore, c: &ChunkRef) -> Result<Bytes, Error> {
    let hex = c.hex();
    let lost = |what: String| {
        tracing::error!(chunk = %hex, what = %what, "dataset chunk lost or corrupt");
        Error::new(
            ErrorKind::DataLoss,
            "DATASET_CHUNK_CORRUPT",
            format!("stored chunk {hex} {what}; restore the artifact store from a backup"),
        )
    };
    let buf = match objects.get_bytes(&ObjectKey::for_chunk(&hex)?).await {
        Ok(x) => x,
        Err(e) if e.kind == ErrorKind::NotFound => return Err(lost("is missing".into())),
        Err(e) => return Err(e),
    };
    let got: [u8; 32] = sha2::Sha256::digest(&buf).into();
    if got != c.sha256 || buf.len() as u64 != c.size {
        return Err(lost("does not match its digest".into()));
    }
    Ok(buf)
}

/// Abandons a reserved upload when the call is dropped before it finished.
struct AbandonOnDrop {
    app: Option<Tracking>,
    ds: String,
    ver: i64,
    path: String,
    reserved: i64,
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        if let Some(app) = self.app.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (ds, path) = (std::mem::take(&mut self.ds), std::mem::take(&mut self.path));
            let (ver, reserved) = (self.ver, self.reserved);
            rt.spawn(async move { app.abandon_file(&ds, ver, &path, reserved).await });
        }
    }
}
