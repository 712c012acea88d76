//! `environments`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::idempotency::is_unique_violation;
use steward_storage::schema::Environments as E;

use super::{WriteTx, fetch_all, fetch_one, get};
use crate::domain::Environment;

const COLS: [E; 10] = [
    E::Name,
    E::Ord,
    E::Description,
    E::RequireApproved,
    E::RequirePreviousEnv,
    E::RequireReproducible,
    E::UpstreamUrl,
    E::CreateTime,
    E::UpdateTime,
    E::Revision,
];

fn from_row(r: &sea_orm::QueryResult) -> Result<Environment, Error> {
    Ok(Environment {
        name: get(r, "name")?,
        order: get(r, "ord")?,
        description: get(r, "description")?,
        require_approved: get::<i16>(r, "require_approved")? != 0,
        require_previous_env: get(r, "require_previous_env")?,
        require_reproducible: get::<i16>(r, "require_reproducible")? != 0,
        upstream_url: get(r, "upstream_url")?,
        create_time: get(r, "create_time")?,
        update_time: get(r, "update_time")?,
        revision: get(r, "revision")?,
    })
}

/// Inserts an environment; a taken name is `ALREADY_EXISTS`.
pub async fn insert(tx: &WriteTx, e: &Environment) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(E::Table)
        .columns(COLS)
        .values_panic([
            e.name.as_str().into(),
            e.order.into(),
            e.description.as_str().into(),
            (e.require_approved as i16).into(),
            e.require_previous_env.as_str().into(),
            (e.require_reproducible as i16).into(),
            e.upstream_url.as_str().into(),
            e.create_time.into(),
            e.update_time.into(),
            e.revision.into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => Err(Error::already_exists(
            "ENVIRONMENT_ALREADY_EXISTS",
            format!("environments/{} already exists", e.name),
        )
        .with_violation("environment.name", "already used")),
        Err(err) => Err(db_err(err)),
    }
}

/// Rewrites an environment's mutable fields.
pub async fn update(tx: &WriteTx, e: &Environment) -> Result<(), Error> {
    let q = Query::update()
        .table(E::Table)
        .value(E::Ord, e.order)
        .value(E::Description, e.description.as_str())
        .value(E::RequireApproved, e.require_approved as i16)
        .value(E::RequirePreviousEnv, e.require_previous_env.as_str())
        .value(E::RequireReproducible, e.require_reproducible as i16)
        .value(E::UpstreamUrl, e.upstream_url.as_str())
        .value(E::UpdateTime, e.update_time)
        .value(E::Revision, e.revision)
        .and_where(Expr::col(E::Name).eq(e.name.as_str()))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// One environment.
pub async fn get_one<C: ConnectionTrait>(c: &C, name: &str) -> Result<Option<Environment>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(E::Table)
        .and_where(Expr::col(E::Name).eq(name))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// Every environment in promotion order.
pub async fn list<C: ConnectionTrait>(c: &C) -> Result<Vec<Environment>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(E::Table)
        .order_by(E::Ord, Order::Asc)
        .order_by(E::Name, Order::Asc)
        .to_owned();
    fetch_all(c, &q, from_row).await
}
