//! `model_aliases` and `model_alias_history`.

use std::collections::BTreeMap;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::{ModelAliasHistory as H, ModelAliases as A};

use super::{WriteTx, fetch_all, get};
use crate::domain::AliasMove;

/// Alias -> version of a model.
pub async fn for_model<C: ConnectionTrait>(
    c: &C,
    model: &str,
) -> Result<BTreeMap<String, i64>, Error> {
    let q = Query::select()
        .columns([A::Alias, A::Version])
        .from(A::Table)
        .and_where(Expr::col(A::Model).eq(model))
        .to_owned();
    let rows = c.query_all(&q).await.map_err(db_err)?;
    rows.iter()
        .map(|r| Ok((get::<String>(r, "alias")?, get::<i64>(r, "version")?)))
        .collect()
}

/// The version an alias points at.
pub async fn target<C: ConnectionTrait>(
    c: &C,
    model: &str,
    alias: &str,
) -> Result<Option<i64>, Error> {
    let q = Query::select()
        .column(A::Version)
        .from(A::Table)
        .and_where(Expr::col(A::Model).eq(model))
        .and_where(Expr::col(A::Alias).eq(alias))
        .to_owned();
    match c.query_one(&q).await.map_err(db_err)? {
        Some(r) => Ok(Some(get(&r, "version")?)),
        None => Ok(None),
    }
}

/// Points `alias` at `version` (insert or move).
pub async fn upsert(tx: &WriteTx, mv: &AliasMove) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(A::Table)
        .columns([A::Model, A::Alias, A::Version, A::UpdateTime, A::Updater])
        .values_panic([
            mv.model.as_str().into(),
            mv.alias.as_str().into(),
            mv.version.into(),
            mv.time.into(),
            mv.actor.as_str().into(),
        ])
        .on_conflict(
            OnConflict::columns([A::Model, A::Alias])
                .update_columns([A::Version, A::UpdateTime, A::Updater])
                .to_owned(),
        )
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Removes an alias.
pub async fn delete(tx: &WriteTx, model: &str, alias: &str) -> Result<(), Error> {
    let q = Query::delete()
        .from_table(A::Table)
        .and_where(Expr::col(A::Model).eq(model))
        .and_where(Expr::col(A::Alias).eq(alias))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Appends a move to the history.
pub async fn record_move(tx: &WriteTx, mv: &AliasMove) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(H::Table)
        .columns([
            H::Model,
            H::Alias,
            H::Version,
            H::PreviousVersion,
            H::Actor,
            H::Time,
            H::RequestId,
        ])
        .values_panic([
            mv.model.as_str().into(),
            mv.alias.as_str().into(),
            mv.version.into(),
            mv.previous_version.into(),
            mv.actor.as_str().into(),
            mv.time.into(),
            mv.request_id.as_str().into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

fn from_row(r: &sea_orm::QueryResult) -> Result<(i64, AliasMove), Error> {
    Ok((
        get(r, "id")?,
        AliasMove {
            model: get(r, "model")?,
            alias: get(r, "alias")?,
            version: get(r, "version")?,
            previous_version: get(r, "previous_version")?,
            actor: get(r, "actor")?,
            time: get(r, "time")?,
            request_id: get(r, "request_id")?,
        },
    ))
}

/// History of a model's aliases (optionally one alias), newest first, with ids for paging.
/// With `as_of`, only the last move at or before that time.
pub async fn history<C: ConnectionTrait>(
    c: &C,
    model: &str,
    alias: Option<&str>,
    as_of: Option<i64>,
    before_id: Option<i64>,
    limit: usize,
) -> Result<Vec<(i64, AliasMove)>, Error> {
    let mut q = Query::select()
        .columns([
            H::Id,
            H::Model,
            H::Alias,
            H::Version,
            H::PreviousVersion,
            H::Actor,
            H::Time,
            H::RequestId,
        ])
        .from(H::Table)
        .and_where(Expr::col(H::Model).eq(model))
        .to_owned();
    if let Some(a) = alias {
        q.and_where(Expr::col(H::Alias).eq(a));
    }
    if let Some(t) = as_of {
        q.and_where(Expr::col(H::Time).lte(t));
        q.order_by(H::Time, Order::Desc);
    }
    if let Some(id) = before_id {
        q.and_where(Expr::col(H::Id).lt(id));
    }
    q.order_by(H::Id, Order::Desc).limit(limit as u64);
    fetch_all(c, &q, from_row).await
}
