//! Dataset versions: `dataset_heads`, `dataset_versions`, `dataset_files`,
//! `dataset_version_chunks` and `cas_chunks`.
//!
//! Chunk lifetime. A chunk row is created (or touched) and referenced by the uploading file in
//! one transaction *before* its bytes are written, and the upsert updates the row, so it waits
//! for a collector holding the row. The collector locks the row (`FOR UPDATE`), checks that no
//! file references it, and deletes the row and then the object inside that same transaction. So
//! a chunk is either referenced (and kept) or gone before an upload could rely on it, and an
//! upload that finds the row gone inserts it again and writes the bytes.

use std::collections::BTreeMap;

use sea_orm::sea_query::{DynIden, Expr, ExprTrait, IntoIden, LockType, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use steward_cas::ChunkRef;
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::rows::{fetch_all, fetch_one, from_json, to_json};
use steward_storage::schema::{
    CasChunks as C, DatasetFiles as F, DatasetHeads as H, DatasetVersionChunks as R,
    DatasetVersions as V, ModelVersionDatasets as MVD,
};

use super::{IN_CHUNK, WriteTx, get};
use crate::domain::datasets::{DatasetFile, DatasetVersion, VersionRef, VersionState};

/// The next version number of `dataset`, creating the dataset on first use.
pub async fn next_version(tx: &WriteTx, dataset: &str, now: i64) -> Result<i64, Error> {
    let ins = Query::insert()
        .into_table(H::Table)
        .columns([H::Id, H::NextVersion, H::CreateTime])
        .values_panic([dataset.into(), 1i64.into(), now.into()])
        .on_conflict(OnConflict::column(H::Id).do_nothing().to_owned())
        .to_owned();
    tx.execute(&ins).await.map_err(db_err)?;
    let sel = Query::select()
        .column(H::NextVersion)
        .from(H::Table)
        .and_where(Expr::col(H::Id).eq(dataset))
        .to_owned();
    let row = tx
        .query_one(&sel)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::internal("dataset head vanished"))?;
    let n: i64 = get(&row, "next_version")?;
    let up = Query::update()
        .table(H::Table)
        .value(H::NextVersion, n + 1)
        .and_where(Expr::col(H::Id).eq(dataset))
        .to_owned();
    tx.execute(&up).await.map_err(db_err)?;
    Ok(n)
}

/// Inserts a version row.
pub async fn insert_version(tx: &WriteTx, v: &DatasetVersion) -> Result<(), Error> {
    let ext = match &v.external {
        Some(e) => to_json(e)?,
        None => String::new(),
    };
    let q = Query::insert()
        .into_table(V::Table)
        .columns([
            V::Dataset,
            V::Version,
            V::State,
            V::Digest,
            V::Description,
            V::TagsJson,
            V::Creator,
            V::CreateTime,
            V::CommitTime,
            V::FileCount,
            V::SizeBytes,
            V::NewBytes,
            V::SchemaJson,
            V::Profile,
            V::ExternalJson,
        ])
        .values_panic([
            v.dataset.as_str().into(),
            v.version.into(),
            v.state.code().into(),
            v.digest.as_str().into(),
            v.description.as_str().into(),
            to_json(&v.tags)?.into(),
            v.creator.as_str().into(),
            v.create_time.into(),
            v.commit_time.into(),
            v.file_count.into(),
            v.size_bytes.into(),
            v.new_bytes.into(),
            v.schema_json.as_str().into(),
            v.profile.clone().into(),
            ext.into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Marks a version committed with its manifest figures, schema and profile.
pub async fn commit_version(tx: &WriteTx, v: &DatasetVersion) -> Result<(), Error> {
    let q = Query::update()
        .table(V::Table)
        .value(V::State, VersionState::Committed.code())
        .value(V::Digest, v.digest.as_str())
        .value(V::CommitTime, v.commit_time)
        .value(V::FileCount, v.file_count)
        .value(V::SizeBytes, v.size_bytes)
        .value(V::NewBytes, v.new_bytes)
        .value(V::SchemaJson, v.schema_json.as_str())
        .value(V::Profile, v.profile.clone())
        .and_where(Expr::col(V::Dataset).eq(v.dataset.as_str()))
        .and_where(Expr::col(V::Version).eq(v.version))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

fn version_row(r: &QueryResult) -> Result<DatasetVersion, Error> {
    let ext: String = get(r, "external_json")?;
    let state: i16 = get(r, "state")?;
    Ok(DatasetVersion {
        dataset: get(r, "dataset")?,
        version: get(r, "version")?,
        state: VersionState::from_code(state)
            .ok_or_else(|| Error::internal("corrupt dataset version state"))?,
        digest: get(r, "digest")?,
        description: get(r, "description")?,
        tags: from_json::<BTreeMap<String, String>>(&get::<String>(r, "tags_json")?, "tags_json")?,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
        commit_time: get(r, "commit_time")?,
        file_count: get(r, "file_count")?,
        size_bytes: get(r, "size_bytes")?,
        new_bytes: get(r, "new_bytes")?,
        schema_json: get(r, "schema_json")?,
        profile: get(r, "profile")?,
        external: if ext.is_empty() {
            None
        } else {
            Some(from_json(&ext, "external_json")?)
        },
    })
}

fn version_select() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([
            V::Dataset,
            V::Version,
            V::State,
            V::Digest,
            V::Description,
            V::TagsJson,
            V::Creator,
            V::CreateTime,
            V::CommitTime,
            V::FileCount,
            V::SizeBytes,
            V::NewBytes,
            V::SchemaJson,
            V::Profile,
            V::ExternalJson,
        ])
        .from(V::Table)
        .to_owned()
}

/// A version by number, or the newest committed one.
pub async fn get_version<C: ConnectionTrait>(
    c: &C,
    dataset: &str,
    v: &VersionRef,
) -> Result<Option<DatasetVersion>, Error> {
    let mut q = version_select();
    q.and_where(Expr::col(V::Dataset).eq(dataset));
    match v {
        VersionRef::Number(n) => {
            q.and_where(Expr::col(V::Version).eq(*n));
        }
        VersionRef::Latest => {
            q.and_where(Expr::col(V::State).eq(VersionState::Committed.code()))
                .order_by(V::Version, Order::Desc)
                .limit(1);
        }
    }
    fetch_one(c, &q, version_row).await
}

/// Versions of a dataset, newest first, below `before` (a version number) if given.
pub async fn list_versions<C: ConnectionTrait>(
    c: &C,
    dataset: &str,
    show_pending: bool,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<DatasetVersion>, Error> {
    let mut q = version_select();
    q.and_where(Expr::col(V::Dataset).eq(dataset));
    if !show_pending {
        q.and_where(Expr::col(V::State).eq(VersionState::Committed.code()));
    }
    if let Some(b) = before {
        q.and_where(Expr::col(V::Version).lt(b));
    }
    q.order_by(V::Version, Order::Desc).limit(limit as u64);
    fetch_all(c, &q, version_row).await
}

/// Committed versions whose digest is `digest`, oldest first.
pub async fn versions_with_digest<C: ConnectionTrait>(
    c: &C,
    digest: &str,
) -> Result<Vec<DatasetVersion>, Error> {
    let mut q = version_select();
    q.and_where(Expr::col(V::Digest).eq(digest))
        .and_where(Expr::col(V::State).eq(VersionState::Committed.code()))
        .order_by(V::Dataset, Order::Asc)
        .order_by(V::Version, Order::Asc);
    fetch_all(c, &q, version_row).await
}

/// Dataset ids after `after`, by id, with their creation time.
pub async fn list_datasets<C: ConnectionTrait>(
    c: &C,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, i64)>, Error> {
    let mut q = Query::select()
        .columns([H::Id, H::CreateTime])
        .from(H::Table)
        .to_owned();
    if let Some(a) = after {
        q.and_where(Expr::col(H::Id).gt(a));
    }
    q.order_by(H::Id, Order::Asc).limit(limit as u64);
    let rows = c.query_all(&q).await.map_err(db_err)?;
    rows.iter()
        .map(|r| Ok((get(r, "id")?, get(r, "create_time")?)))
        .collect()
}

/// Number of committed versions of `dataset`.
pub async fn committed_count<C: ConnectionTrait>(c: &C, dataset: &str) -> Result<i64, Error> {
    let q = Query::select()
        .expr_as(Expr::col(V::Version).count(), "n")
        .from(V::Table)
        .and_where(Expr::col(V::Dataset).eq(dataset))
        .and_where(Expr::col(V::State).eq(VersionState::Committed.code()))
        .to_owned();
    let row = c.query_one(&q).await.map_err(db_err)?;
    match row {
        Some(r) => get(&r, "n"),
        None => Ok(0),
    }
}

fn file_row(r: &QueryResult) -> Result<DatasetFile, Error> {
    Ok(DatasetFile {
        path: get(r, "path")?,
        size_bytes: get(r, "size_bytes")?,
        sha256: get(r, "sha256")?,
        chunks: get(r, "chunks")?,
        new_bytes: get(r, "new_bytes")?,
        schema_json: get(r, "schema_json")?,
        profile: get(r, "profile")?,
        create_time: get(r, "create_time")?,
    })
}

fn file_select(dataset: &str, version: i64) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([
            F::Path,
            F::SizeBytes,
            F::Sha256,
            F::Chunks,
            F::NewBytes,
            F::SchemaJson,
            F::Profile,
            F::CreateTime,
        ])
        .from(F::Table)
        .and_where(Expr::col(F::Dataset).eq(dataset))
        .and_where(Expr::col(F::Version).eq(version))
        .to_owned()
}

/// One file of a version (finished or uploading).
pub async fn get_file<C: ConnectionTrait>(
    c: &C,
    dataset: &str,
    version: i64,
    path: &str,
) -> Result<Option<DatasetFile>, Error> {
    let mut q = file_select(dataset, version);
    q.and_where(Expr::col(F::Path).eq(path));
    fetch_one(c, &q, file_row).await
}

/// Files of a version by path, after `after`, at most `limit` (0 = all).
pub async fn list_files<C: ConnectionTrait>(
    c: &C,
    dataset: &str,
    version: i64,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<DatasetFile>, Error> {
    let mut q = file_select(dataset, version);
    if let Some(a) = after {
        q.and_where(Expr::col(F::Path).gt(a));
    }
    q.order_by(F::Path, Order::Asc);
    if limit > 0 {
        q.limit(limit as u64);
    }
    fetch_all(c, &q, file_row).await
}

/// Number of files of a version (finished or uploading).
pub async fn count_files<C: ConnectionTrait>(
    c: &C,
    dataset: &str,
    version: i64,
) -> Result<usize, Error> {
    let q = Query::select()
        .expr_as(Expr::col(F::Path).count(), "n")
        .from(F::Table)
        .and_where(Expr::col(F::Dataset).eq(dataset))
        .and_where(Expr::col(F::Version).eq(version))
        .to_owned();
    let n: i64 = match c.query_one(&q).await.map_err(db_err)? {
        Some(r) => get(&r, "n")?,
        None => 0,
    };
    Ok(n as usize)
}

/// Inserts a file row (an upload in progress has an empty `sha256`).
pub async fn insert_file(
    tx: &WriteTx,
    dataset: &str,
    version: i64,
    f: &DatasetFile,
) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(F::Table)
        .columns([
            F::Dataset,
            F::Version,
            F::Path,
            F::CreateTime,
            F::SizeBytes,
            F::Sha256,
            F::Chunks,
            F::NewBytes,
            F::SchemaJson,
            F::Profile,
        ])
        .values_panic([
            dataset.into(),
            version.into(),
            f.path.as_str().into(),
            f.create_time.into(),
            f.size_bytes.into(),
            f.sha256.as_str().into(),
            f.chunks.clone().into(),
            f.new_bytes.into(),
            f.schema_json.as_str().into(),
            f.profile.clone().into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Records a finished upload.
pub async fn finish_file(
    tx: &WriteTx,
    dataset: &str,
    version: i64,
    f: &DatasetFile,
) -> Result<(), Error> {
    let q = Query::update()
        .table(F::Table)
        .value(F::SizeBytes, f.size_bytes)
        .value(F::Sha256, f.sha256.as_str())
        .value(F::Chunks, f.chunks.clone())
        .value(F::NewBytes, f.new_bytes)
        .and_where(Expr::col(F::Dataset).eq(dataset))
        .and_where(Expr::col(F::Version).eq(version))
        .and_where(Expr::col(F::Path).eq(f.path.as_str()))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Stores a file's schema and profile (at commit).
pub async fn set_file_profile(
    tx: &WriteTx,
    dataset: &str,
    version: i64,
    path: &str,
    schema_json: &str,
    profile: &[u8],
) -> Result<(), Error> {
    let q = Query::update()
        .table(F::Table)
        .value(F::SchemaJson, schema_json)
        .value(F::Profile, profile.to_vec())
        .and_where(Expr::col(F::Dataset).eq(dataset))
        .and_where(Expr::col(F::Version).eq(version))
        .and_where(Expr::col(F::Path).eq(path))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Digests a file (or, with `path` `None`, a whole version) references.
async fn refs_of(
    tx: &WriteTx,
    dataset: &str,
    version: i64,
    path: Option<&str>,
) -> Result<Vec<String>, Error> {
    let mut q = Query::select()
        .distinct()
        .column(R::Digest)
        .from(R::Table)
        .and_where(Expr::col(R::Dataset).eq(dataset))
        .and_where(Expr::col(R::Version).eq(version))
        .to_owned();
    if let Some(p) = path {
        q.and_where(Expr::col(R::Path).eq(p));
    }
    let rows = tx.query_all(&q).await.map_err(db_err)?;
    rows.iter().map(|r| get(r, "digest")).collect()
}

/// Deletes the rows of `table` (with `dataset` and `version` columns, and `path` if given) of
/// one version, or of one file of it.
async fn delete_scoped(
    tx: &WriteTx,
    (table, ds_col, ver_col, path_col): (DynIden, DynIden, DynIden, DynIden),
    dataset: &str,
    version: i64,
    path: Option<&str>,
) -> Result<(), Error> {
    let mut d = Query::delete()
        .from_table(table)
        .and_where(Expr::col(ds_col).eq(dataset))
        .and_where(Expr::col(ver_col).eq(version))
        .to_owned();
    if let Some(p) = path {
        d.and_where(Expr::col(path_col).eq(p));
    }
    tx.execute(&d).await.map_err(db_err)?;
    Ok(())
}

fn refs_cols() -> (DynIden, DynIden, DynIden, DynIden) {
    (
        R::Table.into_iden(),
        R::Dataset.into_iden(),
        R::Version.into_iden(),
        R::Path.into_iden(),
    )
}

fn files_cols() -> (DynIden, DynIden, DynIden, DynIden) {
    (
        F::Table.into_iden(),
        F::Dataset.into_iden(),
        F::Version.into_iden(),
        F::Path.into_iden(),
    )
}

/// Deletes a file row and its chunk references; returns the digests it referenced (candidates
/// for collection).
pub async fn delete_file(
    tx: &WriteTx,
    dataset: &str,
    version: i64,
    path: &str,
) -> Result<Vec<String>, Error> {
    let digests = refs_of(tx, dataset, version, Some(path)).await?;
    delete_scoped(tx, refs_cols(), dataset, version, Some(path)).await?;
    delete_scoped(tx, files_cols(), dataset, version, Some(path)).await?;
    Ok(digests)
}

/// Deletes a version with its files and references; returns the digests it referenced.
pub async fn delete_version(
    tx: &WriteTx,
    dataset: &str,
    version: i64,
) -> Result<Vec<String>, Error> {
    let digests = refs_of(tx, dataset, version, None).await?;
    delete_scoped(tx, refs_cols(), dataset, version, None).await?;
    delete_scoped(tx, files_cols(), dataset, version, None).await?;
    let d = Query::delete()
        .from_table(V::Table)
        .and_where(Expr::col(V::Dataset).eq(dataset))
        .and_where(Expr::col(V::Version).eq(version))
        .to_owned();
    tx.execute(&d).await.map_err(db_err)?;
    Ok(digests)
}

/// Registers `chunks` for a file being uploaded: each chunk row is inserted or touched (which
/// waits for a collector holding it) and referenced by the file. Returns, per distinct digest,
/// whether its bytes are already stored.
pub async fn register_chunks(
    tx: &WriteTx,
    dataset: &str,
    version: i64,
    path: &str,
    chunks: &[ChunkRef],
    now: i64,
) -> Result<BTreeMap<String, bool>, Error> {
    let mut distinct: BTreeMap<String, u64> = BTreeMap::new();
    for c in chunks {
        distinct.insert(c.hex(), c.size);
    }
    let all: Vec<(String, u64)> = distinct.into_iter().collect();
    for part in all.chunks(IN_CHUNK / 4) {
        let mut ins = Query::insert()
            .into_table(C::Table)
            .columns([C::Digest, C::SizeBytes, C::Stored, C::CreateTime])
            .to_owned();
        for (d, size) in part {
            ins.values_panic([
                d.as_str().into(),
                (*size as i64).into(),
                0i16.into(),
                now.into(),
            ]);
        }
        // DO UPDATE (not DO NOTHING): it locks the row, so this waits for a collector that
        // holds it, and sees the row gone afterwards.
        ins.on_conflict(
            OnConflict::column(C::Digest)
                .update_column(C::SizeBytes)
                .to_owned(),
        );
        tx.execute(&ins).await.map_err(db_err)?;
        let mut refs = Query::insert()
            .into_table(R::Table)
            .columns([R::Dataset, R::Version, R::Path, R::Digest])
            .to_owned();
        for (d, _) in part {
            refs.values_panic([
                dataset.into(),
                version.into(),
                path.into(),
                d.as_str().into(),
            ]);
        }
        refs.on_conflict(
            OnConflict::columns([R::Dataset, R::Version, R::Path, R::Digest])
                .do_nothing()
                .to_owned(),
        );
        tx.execute(&refs).await.map_err(db_err)?;
    }
    let mut out = BTreeMap::new();
    for part in all.chunks(IN_CHUNK) {
        let q = Query::select()
            .columns([C::Digest, C::Stored])
            .from(C::Table)
            .and_where(Expr::col(C::Digest).is_in(part.iter().map(|(d, _)| d.clone())))
            .to_owned();
        for r in tx.query_all(&q).await.map_err(db_err)? {
            let stored: i16 = get(&r, "stored")?;
            out.insert(get::<String>(&r, "digest")?, stored == 1);
        }
    }
    Ok(out)
}

/// Marks chunks whose bytes are now durable.
pub async fn mark_stored(tx: &WriteTx, digests: &[String]) -> Result<(), Error> {
    for part in digests.chunks(IN_CHUNK) {
        let q = Query::update()
            .table(C::Table)
            .value(C::Stored, 1i16)
            .and_where(Expr::col(C::Digest).is_in(part.iter().cloned()))
            .to_owned();
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}

/// Collects chunk `digest` if no file references it: locks its row, checks, deletes the row.
/// Returns its size when the row was deleted; the caller deletes the object before committing.
pub async fn collect_chunk(tx: &WriteTx, digest: &str) -> Result<Option<i64>, Error> {
    let lock = Query::select()
        .columns([C::Digest, C::SizeBytes])
        .from(C::Table)
        .and_where(Expr::col(C::Digest).eq(digest))
        .lock(LockType::Update)
        .to_owned();
    let Some(row) = tx.query_one(&lock).await.map_err(db_err)? else {
        return Ok(None);
    };
    let size: i64 = get(&row, "size_bytes")?;
    let used = Query::select()
        .column(R::Digest)
        .from(R::Table)
        .and_where(Expr::col(R::Digest).eq(digest))
        .limit(1)
        .to_owned();
    if tx.query_one(&used).await.map_err(db_err)?.is_some() {
        return Ok(None);
    }
    let d = Query::delete()
        .from_table(C::Table)
        .and_where(Expr::col(C::Digest).eq(digest))
        .to_owned();
    tx.execute(&d).await.map_err(db_err)?;
    Ok(Some(size))
}

/// Removes the chunk references of a version that its files do not use (left by an upload that
/// was replaced or cut off); returns the digests removed.
pub async fn prune_refs(
    tx: &WriteTx,
    dataset: &str,
    version: i64,
    files: &[DatasetFile],
) -> Result<Vec<String>, Error> {
    let mut used: std::collections::BTreeSet<(String, String)> = Default::default();
    for f in files {
        for c in steward_cas::decode_chunks(&f.chunks).unwrap_or_default() {
            used.insert((f.path.clone(), c.hex()));
        }
    }
    let q = Query::select()
        .columns([R::Path, R::Digest])
        .from(R::Table)
        .and_where(Expr::col(R::Dataset).eq(dataset))
        .and_where(Expr::col(R::Version).eq(version))
        .to_owned();
    let mut stray = Vec::new();
    for r in tx.query_all(&q).await.map_err(db_err)? {
        let (p, d): (String, String) = (get(&r, "path")?, get(&r, "digest")?);
        if !used.contains(&(p.clone(), d.clone())) {
            stray.push((p, d));
        }
    }
    for (p, d) in &stray {
        let del = Query::delete()
            .from_table(R::Table)
            .and_where(Expr::col(R::Dataset).eq(dataset))
            .and_where(Expr::col(R::Version).eq(version))
            .and_where(Expr::col(R::Path).eq(p.as_str()))
            .and_where(Expr::col(R::Digest).eq(d.as_str()))
            .to_owned();
        tx.execute(&del).await.map_err(db_err)?;
    }
    Ok(stray.into_iter().map(|(_, d)| d).collect())
}

/// The model versions whose frozen lineage names `digest`, with the source URI they recorded
/// (`registeredModels/{m}/versions/{v}`, source URI).
pub async fn model_versions_using<C2: ConnectionTrait>(
    c: &C2,
    digest: &str,
) -> Result<Vec<(String, String)>, Error> {
    let q = Query::select()
        .columns([MVD::Model, MVD::Version, MVD::SourceUri])
        .from(MVD::Table)
        .and_where(Expr::col(MVD::Digest).eq(digest))
        .order_by(MVD::Model, Order::Asc)
        .order_by(MVD::Version, Order::Asc)
        .limit(1000)
        .to_owned();
    let mut out = Vec::new();
    for r in c.query_all(&q).await.map_err(db_err)? {
        let m: String = get(&r, "model")?;
        let v: i64 = get(&r, "version")?;
        out.push((
            steward_common::names::version_name(&m, v),
            get(&r, "source_uri")?,
        ));
    }
    Ok(out)
}
