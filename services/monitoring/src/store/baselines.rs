//! `monitor_baselines`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::idempotency::is_unique_violation;
use steward_storage::schema::MonitorBaselines as B;

use super::{WriteTx, fetch_all, fetch_one, from_json, get, json};
use crate::domain::Baseline;

#[derive(serde::Serialize, serde::Deserialize)]
struct Summary {
    features: Vec<crate::domain::BaselineFeature>,
    prediction: Option<crate::domain::BaselineFeature>,
}

const COLS: [B; 7] = [
    B::Id,
    B::ModelVersion,
    B::Source,
    B::NumRows,
    B::SummaryJson,
    B::Creator,
    B::CreateTime,
];

fn from_row(r: &sea_orm::QueryResult) -> Result<Baseline, Error> {
    let s: Summary = from_json(&get::<String>(r, "summary_json")?, "baseline summary")?;
    Ok(Baseline {
        id: get(r, "id")?,
        model_version: get(r, "model_version")?,
        source: get(r, "source")?,
        num_rows: get(r, "num_rows")?,
        features: s.features,
        prediction: s.prediction,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
    })
}

/// Inserts a baseline with its exact reference data (an encoded chunk, or empty).
pub async fn insert(tx: &WriteTx, b: &Baseline, data: &[u8]) -> Result<(), Error> {
    let summary = json(&Summary {
        features: b.features.clone(),
        prediction: b.prediction.clone(),
    })?;
    let q = Query::insert()
        .into_table(B::Table)
        .columns([
            B::Id,
            B::ModelVersion,
            B::Source,
            B::NumRows,
            B::SummaryJson,
            B::Data,
            B::Creator,
            B::CreateTime,
        ])
        .values_panic([
            b.id.as_str().into(),
            b.model_version.as_str().into(),
            b.source.as_str().into(),
            b.num_rows.into(),
            summary.into(),
            data.to_vec().into(),
            b.creator.as_str().into(),
            b.create_time.into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::already_exists(
            "BASELINE_ALREADY_EXISTS",
            format!("baselines/{} already exists", b.id),
        )
        .with_violation("baseline_id", "already used")),
        Err(e) => Err(db_err(e)),
    }
}

/// One baseline (summary only).
pub async fn get_one<C: ConnectionTrait>(c: &C, id: &str) -> Result<Option<Baseline>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(B::Table)
        .and_where(Expr::col(B::Id).eq(id))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// The exact reference data of a baseline (empty for profile baselines).
pub async fn data<C: ConnectionTrait>(c: &C, id: &str) -> Result<Vec<u8>, Error> {
    let q = Query::select()
        .column(B::Data)
        .from(B::Table)
        .and_where(Expr::col(B::Id).eq(id))
        .to_owned();
    match c.query_one(&q).await.map_err(db_err)? {
        Some(r) => get(&r, "data"),
        None => Ok(Vec::new()),
    }
}

/// A page of baselines by id after `after`, optionally of one model version.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    model_version: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Baseline>, Error> {
    let mut q = Query::select()
        .columns(COLS)
        .from(B::Table)
        .order_by(B::Id, Order::Asc)
        .limit(limit)
        .to_owned();
    if let Some(mv) = model_version {
        q.and_where(Expr::col(B::ModelVersion).eq(mv));
    }
    if let Some(a) = after {
        q.and_where(Expr::col(B::Id).gt(a));
    }
    fetch_all(c, &q, from_row).await
}
