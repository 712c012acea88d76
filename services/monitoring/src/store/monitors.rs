//! `monitors`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::idempotency::is_unique_violation;
use steward_storage::schema::Monitors as M;

use super::{WriteTx, fetch_all, fetch_one, from_json, get, json};
use crate::domain::Monitor;

const COLS: [M; 9] = [
    M::Id,
    M::Description,
    M::Deployment,
    M::Baseline,
    M::SpecJson,
    M::Creator,
    M::CreateTime,
    M::UpdateTime,
    M::Revision,
];

fn from_row(r: &sea_orm::QueryResult) -> Result<Monitor, Error> {
    Ok(Monitor {
        id: get(r, "id")?,
        description: get(r, "description")?,
        deployment: get(r, "deployment")?,
        baseline: get(r, "baseline")?,
        spec: from_json(&get::<String>(r, "spec_json")?, "monitor spec")?,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
        update_time: get(r, "update_time")?,
        revision: get(r, "revision")?,
    })
}

/// Inserts a monitor.
pub async fn insert(tx: &WriteTx, m: &Monitor) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(M::Table)
        .columns([
            M::Id,
            M::Description,
            M::Deployment,
            M::Baseline,
            M::SpecJson,
            M::NextSeq,
            M::Creator,
            M::CreateTime,
            M::UpdateTime,
            M::Revision,
        ])
        .values_panic([
            m.id.as_str().into(),
            m.description.as_str().into(),
            m.deployment.as_str().into(),
            m.baseline.as_str().into(),
            json(&m.spec)?.into(),
            0i64.into(),
            m.creator.as_str().into(),
            m.create_time.into(),
            m.update_time.into(),
            m.revision.into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::already_exists(
            "MONITOR_ALREADY_EXISTS",
            format!("monitors/{} already exists", m.id),
        )
        .with_violation("monitor_id", "already used")),
        Err(e) => Err(db_err(e)),
    }
}

/// Rewrites a monitor's mutable fields.
pub async fn update(tx: &WriteTx, m: &Monitor) -> Result<(), Error> {
    let q = Query::update()
        .table(M::Table)
        .value(M::Description, m.description.as_str())
        .value(M::SpecJson, json(&m.spec)?)
        .value(M::UpdateTime, m.update_time)
        .value(M::Revision, m.revision)
        .and_where(Expr::col(M::Id).eq(m.id.as_str()))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Deletes a monitor.
pub async fn delete(tx: &WriteTx, id: &str) -> Result<(), Error> {
    let q = Query::delete()
        .from_table(M::Table)
        .and_where(Expr::col(M::Id).eq(id))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// One monitor.
pub async fn get_one<C: ConnectionTrait>(c: &C, id: &str) -> Result<Option<Monitor>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(M::Table)
        .and_where(Expr::col(M::Id).eq(id))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// A page of monitors by id, optionally of one deployment.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    deployment: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Monitor>, Error> {
    let mut q = Query::select()
        .columns(COLS)
        .from(M::Table)
        .order_by(M::Id, Order::Asc)
        .limit(limit)
        .to_owned();
    if let Some(d) = deployment {
        q.and_where(Expr::col(M::Deployment).eq(d));
    }
    if let Some(a) = after {
        q.and_where(Expr::col(M::Id).gt(a));
    }
    fetch_all(c, &q, from_row).await
}

/// Hands out `n` record sequence numbers of a count-window monitor under the row's lock;
/// returns the first. `None` when the monitor is gone.
pub async fn take_seq(tx: &WriteTx, id: &str, n: i64) -> Result<Option<i64>, Error> {
    let q = Query::update()
        .table(M::Table)
        .value(M::NextSeq, Expr::col(M::NextSeq).add(n))
        .and_where(Expr::col(M::Id).eq(id))
        .returning_col(M::NextSeq)
        .to_owned();
    match tx.query_one(&q).await.map_err(db_err)? {
        Some(row) => Ok(Some(get::<i64>(&row, "next_seq")? - n)),
        None => Ok(None),
    }
}
