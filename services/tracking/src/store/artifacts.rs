//! `artifacts`: metadata of artifacts written through the service.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, OnConflict, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::Artifacts as A;

use super::{WriteTx, get};
use crate::domain::ArtifactMeta;

/// Records (or replaces) an artifact's metadata.
pub async fn upsert(tx: &WriteTx, run_id: &str, a: &ArtifactMeta) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(A::Table)
        .columns([
            A::RunId,
            A::Path,
            A::SizeBytes,
            A::Sha256,
            A::ContentType,
            A::CreateTime,
        ])
        .values_panic([
            run_id.into(),
            a.path.as_str().into(),
            a.size_bytes.into(),
            a.sha256.as_str().into(),
            a.content_type.as_str().into(),
            a.create_time.into(),
        ])
        .on_conflict(
            OnConflict::columns([A::RunId, A::Path])
                .update_columns([A::SizeBytes, A::Sha256, A::ContentType, A::CreateTime])
                .to_owned(),
        )
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

fn from_row(r: &sea_orm::QueryResult) -> Result<ArtifactMeta, Error> {
    Ok(ArtifactMeta {
        path: get(r, "path")?,
        size_bytes: get(r, "size_bytes")?,
        sha256: get(r, "sha256")?,
        content_type: get(r, "content_type")?,
        create_time: get(r, "create_time")?,
    })
}

/// One artifact's metadata.
pub async fn get_one<C: ConnectionTrait>(
    c: &C,
    run_id: &str,
    path: &str,
) -> Result<Option<ArtifactMeta>, Error> {
    let q = Query::select()
        .columns([
            A::Path,
            A::SizeBytes,
            A::Sha256,
            A::ContentType,
            A::CreateTime,
        ])
        .from(A::Table)
        .and_where(Expr::col(A::RunId).eq(run_id))
        .and_where(Expr::col(A::Path).eq(path))
        .to_owned();
    super::fetch_one(c, &q, from_row).await
}

/// Artifacts of a run under `prefix`, by path, after `after`; one more than `limit` tells if
/// more follow.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    run_id: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<ArtifactMeta>, Option<String>), Error> {
    let mut q = Query::select()
        .columns([
            A::Path,
            A::SizeBytes,
            A::Sha256,
            A::ContentType,
            A::CreateTime,
        ])
        .from(A::Table)
        .and_where(Expr::col(A::RunId).eq(run_id))
        .order_by(A::Path, Order::Asc)
        .limit(limit as u64 + 1)
        .to_owned();
    if !prefix.is_empty() {
        // LIKE with `%`, `_` and `\` escaped: correct under any collation (a range scan is not).
        let escaped: String = prefix
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        q.and_where(Expr::col(A::Path).like(LikeExpr::new(format!("{escaped}%")).escape('\\')));
    }
    if let Some(a) = after {
        q.and_where(Expr::col(A::Path).gt(a));
    }
    let mut items = c
        .query_all(&q)
        .await
        .map_err(db_err)?
        .iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|a| a.path.clone())
    } else {
        None
    };
    Ok((items, next))
}
