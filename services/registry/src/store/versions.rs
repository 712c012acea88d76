//! `model_versions` and `model_version_tags`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde::{Deserialize, Serialize};
use steward_common::Error;
use steward_common::filter::Filter;
use steward_storage::db_err;
use steward_storage::rows::{SortVal, after};
use steward_storage::schema::{ModelAliases as A, ModelVersionTags as T, ModelVersions as V};

use super::{WriteTx, fetch_one, get, iden, read_tags, write_tags};
use crate::domain::{ApprovalState, Lineage, ModelVersion, Review, VersionStatus};

const COLS: [V; 20] = [
    V::Model,
    V::Version,
    V::SourceRun,
    V::ArtifactPath,
    V::SourceUri,
    V::ArtifactUri,
    V::ContentDigest,
    V::SignatureJson,
    V::Format,
    V::Status,
    V::StatusMessage,
    V::Description,
    V::ApprovalState,
    V::ReviewReviewer,
    V::ReviewComment,
    V::ReviewTime,
    V::Creator,
    V::CreateTime,
    V::UpdateTime,
    V::Revision,
];

fn corrupt(what: &str) -> Error {
    Error::internal(format!("corrupt model_versions row: {what}"))
}

fn from_row(r: &sea_orm::QueryResult) -> Result<ModelVersion, Error> {
    let status: String = get(r, "status")?;
    let approval: String = get(r, "approval_state")?;
    let approval = ApprovalState::from_name(&approval).ok_or_else(|| corrupt("approval_state"))?;
    let review_time: Option<i64> = get(r, "review_time")?;
    let sig: String = get(r, "signature_json")?;
    Ok(ModelVersion {
        model: get(r, "model")?,
        version: get(r, "version")?,
        source_run: get(r, "source_run")?,
        artifact_path: get(r, "artifact_path")?,
        source_uri: get(r, "source_uri")?,
        artifact_uri: get(r, "artifact_uri")?,
        content_digest: get(r, "content_digest")?,
        signature: serde_json::from_str(&sig).map_err(|_| corrupt("signature_json"))?,
        format: get(r, "format")?,
        status: VersionStatus::from_name(&status).ok_or_else(|| corrupt("status"))?,
        status_message: get(r, "status_message")?,
        description: get(r, "description")?,
        tags: Default::default(),
        approval,
        last_review: match review_time {
            Some(time) => Some(Review {
                state: approval,
                reviewer: get(r, "review_reviewer")?,
                comment: get(r, "review_comment")?,
                time,
            }),
            None => None,
        },
        aliases: Vec::new(),
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
        update_time: get(r, "update_time")?,
        revision: get(r, "revision")?,
    })
}

fn values(v: &ModelVersion) -> Result<Vec<Expr>, Error> {
    let sig = serde_json::to_string(&v.signature).map_err(Error::internal)?;
    let review = v.last_review.as_ref();
    Ok(vec![
        Expr::val(v.model.as_str()),
        Expr::val(v.version),
        Expr::val(v.source_run.as_str()),
        Expr::val(v.artifact_path.as_str()),
        Expr::val(v.source_uri.as_str()),
        Expr::val(v.artifact_uri.as_str()),
        Expr::val(v.content_digest.as_str()),
        Expr::val(sig),
        Expr::val(v.format.as_str()),
        Expr::val(v.status.name()),
        Expr::val(v.status_message.as_str()),
        Expr::val(v.description.as_str()),
        Expr::val(v.approval.name()),
        Expr::val(review.map(|r| r.reviewer.clone()).unwrap_or_default()),
        Expr::val(review.map(|r| r.comment.clone()).unwrap_or_default()),
        Expr::val(review.map(|r| r.time)),
        Expr::val(v.creator.as_str()),
        Expr::val(v.create_time),
        Expr::val(v.update_time),
        Expr::val(v.revision),
    ])
}

async fn write_version_tags(tx: &WriteTx, v: &ModelVersion) -> Result<(), Error> {
    write_tags(
        tx,
        iden(T::Table),
        &[
            (iden(T::Model), v.model.as_str().into()),
            (iden(T::Version), v.version.into()),
        ],
        iden(T::Key),
        iden(T::Value),
        &v.tags,
    )
    .await
}

/// Inserts new versions with their frozen lineage and tags (multi-row inserts).
pub async fn insert_many(tx: &WriteTx, rows: &[(&ModelVersion, &Lineage)]) -> Result<(), Error> {
    let mut cols: Vec<V> = COLS.to_vec();
    cols.push(V::LineageJson);
    for chunk in steward_storage::rows::pow2_chunks(rows, 256) {
        let mut q = Query::insert()
            .into_table(V::Table)
            .columns(cols.clone())
            .to_owned();
        for (v, lineage) in chunk {
            let mut vals = values(v)?;
            vals.push(Expr::val(
                serde_json::to_string(lineage).map_err(Error::internal)?,
            ));
            q.values_panic(vals);
        }
        tx.execute(&q).await.map_err(db_err)?;
    }
    write_datasets(tx, rows).await?;
    let tagged: Vec<(&str, i64, &str, &str)> = rows
        .iter()
        .flat_map(|(v, _)| {
            v.tags
                .iter()
                .map(move |(k, val)| (v.model.as_str(), v.version, k.as_str(), val.as_str()))
        })
        .collect();
    for chunk in steward_storage::rows::pow2_chunks(&tagged, 512) {
        let mut q = Query::insert()
            .into_table(T::Table)
            .columns([T::Model, T::Version, T::Key, T::Value])
            .to_owned();
        for (m, n, k, val) in chunk {
            q.values_panic([(*m).into(), (*n).into(), (*k).into(), (*val).into()]);
        }
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}

/// Rewrites the mutable fields (status, digest, description, approval, review, times,
/// revision) and the tags. Source, signature and lineage never change.
pub async fn update(tx: &WriteTx, v: &ModelVersion) -> Result<(), Error> {
    let review = v.last_review.as_ref();
    let q = Query::update()
        .table(V::Table)
        .value(V::ContentDigest, v.content_digest.as_str())
        .value(V::Status, v.status.name())
        .value(V::StatusMessage, v.status_message.as_str())
        .value(V::Description, v.description.as_str())
        .value(V::ApprovalState, v.approval.name())
        .value(
            V::ReviewReviewer,
            review.map(|r| r.reviewer.clone()).unwrap_or_default(),
        )
        .value(
            V::ReviewComment,
            review.map(|r| r.comment.clone()).unwrap_or_default(),
        )
        .value(V::ReviewTime, review.map(|r| r.time))
        .value(V::UpdateTime, v.update_time)
        .value(V::Revision, v.revision)
        .and_where(Expr::col(V::Model).eq(v.model.as_str()))
        .and_where(Expr::col(V::Version).eq(v.version))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    write_version_tags(tx, v).await
}

/// A version with its tags and aliases.
pub async fn get_full<C: ConnectionTrait>(
    c: &C,
    model: &str,
    version: i64,
) -> Result<Option<ModelVersion>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(V::Table)
        .and_where(Expr::col(V::Model).eq(model))
        .and_where(Expr::col(V::Version).eq(version))
        .to_owned();
    let Some(mut v) = fetch_one(c, &q, from_row).await? else {
        return Ok(None);
    };
    load_details(c, std::slice::from_mut(&mut v)).await?;
    Ok(Some(v))
}

async fn load_details<C: ConnectionTrait>(c: &C, vs: &mut [ModelVersion]) -> Result<(), Error> {
    for v in vs.iter_mut() {
        let q = Query::select()
            .columns([T::Key, T::Value])
            .from(T::Table)
            .and_where(Expr::col(T::Model).eq(v.model.as_str()))
            .and_where(Expr::col(T::Version).eq(v.version))
            .to_owned();
        v.tags = read_tags(c, &q).await?;
        let q = Query::select()
            .column(A::Alias)
            .from(A::Table)
            .and_where(Expr::col(A::Model).eq(v.model.as_str()))
            .and_where(Expr::col(A::Version).eq(v.version))
            .order_by(A::Alias, Order::Asc)
            .to_owned();
        let rows = c.query_all(&q).await.map_err(db_err)?;
        v.aliases = rows
            .iter()
            .map(|r| get(r, "alias"))
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// The frozen lineage of a version.
pub async fn lineage<C: ConnectionTrait>(
    c: &C,
    model: &str,
    version: i64,
) -> Result<Option<Lineage>, Error> {
    let q = Query::select()
        .column(V::LineageJson)
        .from(V::Table)
        .and_where(Expr::col(V::Model).eq(model))
        .and_where(Expr::col(V::Version).eq(version))
        .to_owned();
    let Some(row) = c.query_one(&q).await.map_err(db_err)? else {
        return Ok(None);
    };
    let text: String = get(&row, "lineage_json")?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|_| corrupt("lineage_json"))
}

/// Sortable version columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// version
    Version,
    /// create_time
    CreateTime,
    /// update_time
    UpdateTime,
}

/// Keyset position in a version listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionCursor {
    /// Sort value of the last row.
    pub sort: SortVal,
    /// Number of the last row.
    pub version: i64,
}

/// Lists the versions of `model` matching `filter`.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    model: &str,
    filter: Option<&Filter>,
    sort: SortBy,
    desc: bool,
    cursor: Option<&VersionCursor>,
    limit: usize,
) -> Result<(Vec<ModelVersion>, Option<VersionCursor>), Error> {
    let v = Alias::new("v");
    let col = match sort {
        SortBy::Version => V::Version,
        SortBy::CreateTime => V::CreateTime,
        SortBy::UpdateTime => V::UpdateTime,
    };
    let mut q = Query::select();
    for cname in COLS {
        q.column((v.clone(), cname));
    }
    q.from_as(V::Table, v.clone())
        .and_where(Expr::col((v.clone(), V::Model)).eq(model));
    if let Some(f) = filter {
        q.cond_where(super::filter::version_condition(f, &v, &mut 0)?);
    }
    if let Some(cur) = cursor {
        q.and_where(after(
            Expr::col((v.clone(), col)),
            Expr::col((v.clone(), V::Version)),
            &cur.sort,
            Expr::val(cur.version),
            desc,
        ));
    }
    let order = if desc { Order::Desc } else { Order::Asc };
    q.order_by((v.clone(), col), order.clone())
        .order_by((v.clone(), V::Version), order)
        .limit(limit as u64 + 1);
    let rows = c.query_all(&q).await.map_err(db_err)?;
    let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let next = if out.len() > limit {
        out.truncate(limit);
        let last = out.last().expect("limit > 0");
        Some(VersionCursor {
            sort: match sort {
                SortBy::Version => SortVal::Int(last.version),
                SortBy::CreateTime => SortVal::Int(last.create_time),
                SortBy::UpdateTime => SortVal::Int(last.update_time),
            },
            version: last.version,
        })
    } else {
        None
    };
    load_details(c, &mut out).await?;
    Ok((out, next))
}

/// Records the datasets of each version's frozen lineage in `model_version_datasets`.
async fn write_datasets(tx: &WriteTx, rows: &[(&ModelVersion, &Lineage)]) -> Result<(), Error> {
    use steward_storage::schema::ModelVersionDatasets as D;
    let mut all = std::collections::BTreeSet::new();
    for (v, l) in rows {
        for d in &l.datasets {
            all.insert((
                v.model.as_str(),
                v.version,
                d.name.as_str(),
                d.digest.as_str(),
                d.context.as_str(),
                d.source_uri.as_str(),
            ));
        }
    }
    let all: Vec<_> = all.into_iter().collect();
    for chunk in steward_storage::rows::pow2_chunks(&all, 128) {
        let mut q = Query::insert()
            .into_table(D::Table)
            .columns([
                D::Model,
                D::Version,
                D::Name,
                D::Digest,
                D::Context,
                D::SourceUri,
            ])
            .to_owned();
        for (m, n, name, digest, context, uri) in chunk {
            q.values_panic([
                (*m).into(),
                (*n).into(),
                (*name).into(),
                (*digest).into(),
                (*context).into(),
                (*uri).into(),
            ]);
        }
        q.on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                D::Model,
                D::Version,
                D::Name,
                D::Digest,
                D::Context,
            ])
            .do_nothing()
            .to_owned(),
        );
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}
