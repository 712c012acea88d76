//! `decision_records`: written in batches by the group-commit writer.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, OnConflict, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::direct::{DirectTx, sqlite_err};
use steward_storage::schema::DecisionRecords as T;

use super::{WriteTx, fetch_all, fetch_one, get};
use crate::domain::Decision;

const COLS: [T; 15] = [
    T::RequestId,
    T::Time,
    T::Deployment,
    T::Revision,
    T::Variant,
    T::Model,
    T::Version,
    T::Kind,
    T::InputDigest,
    T::InputsJson,
    T::InputsErased,
    T::OutputsJson,
    T::LatencyUs,
    T::Error,
    T::RoutingKey,
];

fn from_row(r: &sea_orm::QueryResult) -> Result<Decision, Error> {
    Ok(Decision {
        request_id: get(r, "request_id")?,
        time: get(r, "time")?,
        deployment: get(r, "deployment")?,
        revision: get(r, "revision")?,
        variant: get(r, "variant")?,
        model: get(r, "model")?,
        version: get(r, "version")?,
        kind: get(r, "kind")?,
        input_digest: get(r, "input_digest")?,
        inputs_json: get(r, "inputs_json")?,
        inputs_erased: get::<i16>(r, "inputs_erased")? != 0,
        event_inputs_json: String::new(),
        outputs_json: get(r, "outputs_json")?,
        latency_us: get(r, "latency_us")?,
        error: get(r, "error")?,
        routing_key: get(r, "routing_key")?,
    })
}

/// Inserts decisions, skipping request ids already recorded; returns the ids inserted.
pub async fn insert_many(tx: &WriteTx, ds: &[Decision]) -> Result<Vec<String>, Error> {
    let mut inserted = Vec::with_capacity(ds.len());
    for chunk in steward_storage::rows::pow2_chunks(ds, 256) {
        let mut q = Query::insert()
            .into_table(T::Table)
            .columns(COLS)
            .on_conflict(OnConflict::column(T::RequestId).do_nothing().to_owned())
            .returning_col(T::RequestId)
            .to_owned();
        for d in chunk {
            q.values_panic([
                d.request_id.as_str().into(),
                d.time.into(),
                d.deployment.as_str().into(),
                d.revision.into(),
                d.variant.as_str().into(),
                d.model.as_str().into(),
                d.version.into(),
                d.kind.as_str().into(),
                d.input_digest.as_str().into(),
                d.inputs_json.clone().into(),
                (d.inputs_erased as i16).into(),
                d.outputs_json.as_str().into(),
                d.latency_us.into(),
                d.error.as_str().into(),
                d.routing_key.as_str().into(),
            ]);
        }
        for row in tx.query_all(&q).await.map_err(db_err)? {
            inserted.push(get::<String>(&row, "request_id")?);
        }
    }
    Ok(inserted)
}

/// Inserts `d` on a writer thread's own SQLite connection unless its request id is recorded;
/// whether it was inserted.
pub fn insert_direct(tx: &DirectTx<'_>, d: &Decision) -> Result<bool, Error> {
    let n = tx
        .prepare_cached(
            "INSERT INTO decision_records (request_id, time, deployment, revision, variant, \
             model, version, kind, input_digest, inputs_json, inputs_erased, outputs_json, \
             latency_us, error, routing_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
             ON CONFLICT (request_id) DO NOTHING",
        )?
        .execute(rusqlite::params![
            d.request_id,
            d.time,
            d.deployment,
            d.revision,
            d.variant,
            d.model,
            d.version,
            d.kind,
            d.input_digest,
            d.inputs_json,
            i16::from(d.inputs_erased),
            d.outputs_json,
            d.latency_us,
            d.error,
            d.routing_key,
        ])
        .map_err(sqlite_err)?;
    Ok(n == 1)
}

/// One decision.
pub async fn get_one<C: ConnectionTrait>(
    c: &C,
    request_id: &str,
) -> Result<Option<Decision>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(T::Table)
        .and_where(Expr::col(T::RequestId).eq(request_id))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// Erases sampled inputs (keeps the digest); returns how many were erased.
pub async fn erase_inputs(tx: &WriteTx, ids: &[String]) -> Result<u64, Error> {
    let q = Query::update()
        .table(T::Table)
        .value(T::InputsJson, Option::<String>::None)
        .value(T::InputsErased, 1i16)
        .and_where(Expr::col(T::RequestId).is_in(ids.iter().map(String::as_str)))
        .and_where(Expr::col(T::InputsErased).eq(0i16))
        .to_owned();
    Ok(tx.execute(&q).await.map_err(db_err)?.rows_affected())
}

/// Drops sampled inputs older than `before` (retention); keeps digests.
pub async fn expire_inputs(tx: &WriteTx, before: i64) -> Result<u64, Error> {
    let q = Query::update()
        .table(T::Table)
        .value(T::InputsJson, Option::<String>::None)
        .and_where(Expr::col(T::Time).lt(before))
        .and_where(Expr::col(T::InputsJson).is_not_null())
        .to_owned();
    Ok(tx.execute(&q).await.map_err(db_err)?.rows_affected())
}

/// Health of one variant since `since`: (decisions, errors, p99 latency µs).
pub async fn health<C: ConnectionTrait>(
    c: &C,
    deployment: &str,
    variant: &str,
    since: i64,
) -> Result<(i64, i64, i64), Error> {
    let base = |q: &mut sea_orm::sea_query::SelectStatement| {
        q.from(T::Table)
            .and_where(Expr::col(T::Deployment).eq(deployment))
            .and_where(Expr::col(T::Variant).eq(variant))
            .and_where(Expr::col(T::Time).gte(since))
            .and_where(Expr::col(T::Kind).ne("shadow"));
    };
    let mut q = Query::select();
    q.expr_as(Func::count(Expr::col(T::RequestId)), Alias::new("n"));
    base(&mut q);
    let n: i64 = c
        .query_one(&q)
        .await
        .map_err(db_err)?
        .map(|r| get(&r, "n"))
        .transpose()?
        .unwrap_or(0);
    if n == 0 {
        return Ok((0, 0, 0));
    }
    let mut q = Query::select();
    q.expr_as(Func::count(Expr::col(T::RequestId)), Alias::new("n"));
    base(&mut q);
    q.and_where(Expr::col(T::Error).ne(""));
    let errors: i64 = c
        .query_one(&q)
        .await
        .map_err(db_err)?
        .map(|r| get(&r, "n"))
        .transpose()?
        .unwrap_or(0);
    let mut q = Query::select();
    q.column(T::LatencyUs);
    base(&mut q);
    q.order_by(T::LatencyUs, Order::Desc)
        .limit(1)
        .offset((n / 100) as u64);
    let p99 = fetch_all(c, &q, |r| get::<i64>(r, "latency_us"))
        .await?
        .pop()
        .unwrap_or(0);
    Ok((n, errors, p99))
}

/// Assignment counts per variant of a deployment revision since `since` (non-shadow).
pub async fn assigned<C: ConnectionTrait>(
    c: &C,
    deployment: &str,
    revision: i64,
    since: i64,
) -> Result<std::collections::BTreeMap<String, i64>, Error> {
    let mut q = Query::select();
    q.column(T::Variant)
        .expr_as(Func::count(Expr::col(T::RequestId)), Alias::new("n"))
        .from(T::Table)
        .and_where(Expr::col(T::Deployment).eq(deployment))
        .and_where(Expr::col(T::Revision).eq(revision))
        .and_where(Expr::col(T::Time).gte(since))
        .and_where(Expr::col(T::Kind).ne("shadow"))
        .group_by_col(T::Variant);
    let rows = fetch_all(c, &q, |r| {
        Ok((get::<String>(r, "variant")?, get::<i64>(r, "n")?))
    })
    .await?;
    Ok(rows.into_iter().collect())
}
