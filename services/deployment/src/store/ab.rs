//! `ab_tests` and `ab_outcomes`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::{AbOutcomes as O, AbTests as T};

use super::{WriteTx, fetch_all, fetch_one, from_json, get, json};
use crate::domain::stats::Summary;
use crate::domain::{AbTest, MetricKind};

const COLS: [T; 13] = [
    T::Id,
    T::Deployment,
    T::VariantsJson,
    T::Metric,
    T::MetricKind,
    T::Alpha,
    T::Sequential,
    T::State,
    T::Winner,
    T::RevisionNumber,
    T::Creator,
    T::CreateTime,
    T::ConcludeTime,
];

fn from_row(r: &sea_orm::QueryResult) -> Result<AbTest, Error> {
    let kind: String = get(r, "metric_kind")?;
    Ok(AbTest {
        id: get(r, "id")?,
        deployment: get(r, "deployment")?,
        variants: from_json(&get::<String>(r, "variants_json")?, "ab variants")?,
        metric: get(r, "metric")?,
        kind: MetricKind::from_name(&kind).ok_or_else(|| Error::internal("corrupt metric kind"))?,
        alpha: get(r, "alpha")?,
        sequential: get::<i16>(r, "sequential")? != 0,
        running: get::<String>(r, "state")? == "RUNNING",
        winner: get(r, "winner")?,
        revision: get(r, "revision_number")?,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
        conclude_time: get(r, "conclude_time")?,
    })
}

/// Inserts a test.
pub async fn insert(tx: &WriteTx, t: &AbTest) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(T::Table)
        .columns(COLS)
        .values_panic([
            t.id.as_str().into(),
            t.deployment.as_str().into(),
            json(&t.variants)?.into(),
            t.metric.as_str().into(),
            t.kind.name().into(),
            t.alpha.into(),
            (t.sequential as i16).into(),
            (if t.running { "RUNNING" } else { "CONCLUDED" }).into(),
            t.winner.as_str().into(),
            t.revision.into(),
            t.creator.as_str().into(),
            t.create_time.into(),
            t.conclude_time.into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Marks a test concluded.
pub async fn conclude(tx: &WriteTx, t: &AbTest) -> Result<(), Error> {
    let q = Query::update()
        .table(T::Table)
        .value(T::State, "CONCLUDED")
        .value(T::Winner, t.winner.as_str())
        .value(T::ConcludeTime, t.conclude_time)
        .and_where(Expr::col(T::Id).eq(t.id.as_str()))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// One test.
pub async fn get_one<C: ConnectionTrait>(c: &C, id: &str) -> Result<Option<AbTest>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(T::Table)
        .and_where(Expr::col(T::Id).eq(id))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// Records an outcome; a second report for the same request is ignored (first wins). Returns
/// whether it was new.
pub async fn record_outcome(
    tx: &WriteTx,
    test: &str,
    request_id: &str,
    variant: &str,
    value: f64,
    now: i64,
) -> Result<bool, Error> {
    let q = Query::insert()
        .into_table(O::Table)
        .columns([O::AbTest, O::RequestId, O::Variant, O::Value, O::Time])
        .values_panic([
            test.into(),
            request_id.into(),
            variant.into(),
            value.into(),
            now.into(),
        ])
        .on_conflict(
            OnConflict::columns([O::AbTest, O::RequestId])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    Ok(tx.execute(&q).await.map_err(db_err)?.rows_affected() == 1)
}

/// Outcome summaries per variant (streamed through Welford's method for accuracy).
pub async fn summaries<C: ConnectionTrait>(
    c: &C,
    test: &str,
) -> Result<std::collections::BTreeMap<String, Summary>, Error> {
    let q = Query::select()
        .columns([O::Variant, O::Value])
        .from(O::Table)
        .and_where(Expr::col(O::AbTest).eq(test))
        .to_owned();
    let rows = fetch_all(c, &q, |r| {
        Ok((get::<String>(r, "variant")?, get::<f64>(r, "value")?))
    })
    .await?;
    let mut out = std::collections::BTreeMap::<String, Summary>::new();
    for (v, x) in rows {
        out.entry(v).or_default().push(x);
    }
    Ok(out)
}
