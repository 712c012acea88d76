//! `monitor_predictions`, `monitor_feedback` and `monitor_kpis`: the data-plane records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, JoinType, OnConflict, Query};
use sea_orm::{ConnectionTrait, Statement};
use steward_common::Error;
use steward_storage::rows::pow2_chunks;
use steward_storage::schema::{MonitorFeedback as F, MonitorKpis as K, MonitorPredictions as P};
use steward_storage::{Backend, db_err};

use super::{WriteTx, get};
use crate::domain::columns::{Column, Value};
use crate::domain::perf::Joined;

fn split(v: &Value) -> (Option<f64>, Option<String>) {
    match v {
        Value::Num(x) if !x.is_nan() => (Some(*x), None),
        Value::Cat(s) => (None, Some(s.clone())),
        _ => (None, None),
    }
}

fn join(num: Option<f64>, cat: Option<String>) -> Value {
    match (num, cat) {
        (Some(x), _) => Value::Num(x),
        (None, Some(s)) => Value::Cat(s),
        _ => Value::Missing,
    }
}

/// New predictions as columns (row `i` of each slice is one prediction).
pub struct NewPredictions<'a> {
    /// Request ids.
    pub ids: &'a [String],
    /// ms.
    pub times: &'a [i64],
    /// The outputs.
    pub prediction: &'a Column,
    /// Distinct (variant, model version) pairs.
    pub labels: &'a [(String, String)],
    /// Each row's pair.
    pub label_of: &'a [u32],
    /// µs.
    pub latency_us: &'a [i64],
    /// Failed.
    pub errors: &'a [bool],
}

const PREDICTION_COLS: [&str; 10] = [
    "monitor",
    "request_id",
    "time",
    "window",
    "variant",
    "model_version",
    "pred_num",
    "pred_cat",
    "latency_us",
    "error",
];

/// The multi-row insert of `rows` predictions for `backend`, rendered once per size.
fn insert_sql(backend: Backend, rows: usize) -> Arc<str> {
    type Cache = Mutex<HashMap<(bool, usize), Arc<str>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let pg = backend == Backend::Postgres;
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry((pg, rows))
        .or_insert_with(|| {
            let cols = PREDICTION_COLS
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let mut sql = format!("INSERT INTO \"monitor_predictions\" ({cols}) VALUES ");
            let mut p = 0;
            for r in 0..rows {
                if r > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for c in 0..PREDICTION_COLS.len() {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    p += 1;
                    if pg {
                        sql.push_str(&format!("${p}"));
                    } else {
                        sql.push('?');
                    }
                }
                sql.push(')');
            }
            sql.push_str(
                " ON CONFLICT (\"monitor\", \"request_id\") DO NOTHING RETURNING \"request_id\"",
            );
            Arc::from(sql)
        })
        .clone()
}

/// Inserts predictions `rows` (indices into `p`) with their windows; returns the request ids
/// that were new (a stored id is skipped).
pub async fn insert_predictions(
    tx: &WriteTx,
    monitor: &str,
    p: &NewPredictions<'_>,
    rows: &[usize],
    windows: &[i64],
) -> Result<HashSet<String>, Error> {
    let mut inserted = HashSet::with_capacity(rows.len());
    let mut at = 0;
    for chunk in pow2_chunks(rows, 1024) {
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 10);
        for &i in chunk {
            let (num, cat) = split(&p.prediction.value(i));
            let (variant, version) = &p.labels[p.label_of[i] as usize];
            values.extend([
                monitor.into(),
                p.ids[i].as_str().into(),
                p.times[i].into(),
                windows[at].into(),
                variant.as_str().into(),
                version.as_str().into(),
                num.into(),
                cat.into(),
                p.latency_us[i].into(),
                (p.errors[i] as i16).into(),
            ]);
            at += 1;
        }
        let stmt = Statement::from_sql_and_values(
            tx.get_database_backend(),
            insert_sql(tx.backend(), chunk.len()).as_ref(),
            values,
        );
        for row in tx.query_all_raw(stmt).await.map_err(db_err)? {
            inserted.insert(get::<String>(&row, "request_id")?);
        }
    }
    Ok(inserted)
}

/// Moves a stored prediction to window `window`.
pub async fn set_window(
    tx: &WriteTx,
    monitor: &str,
    request_id: &str,
    window: i64,
) -> Result<(), Error> {
    let q = Query::update()
        .table(P::Table)
        .value(P::Window, window)
        .and_where(Expr::col(P::Monitor).eq(monitor))
        .and_where(Expr::col(P::RequestId).eq(request_id))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Stores labels (a later label for the same request replaces the earlier one); returns how
/// many have no prediction yet.
pub async fn upsert_feedback(
    tx: &WriteTx,
    monitor: &str,
    rows: &[(String, Value)],
    now: i64,
) -> Result<i64, Error> {
    for chunk in pow2_chunks(rows, 256) {
        let mut q = Query::insert()
            .into_table(F::Table)
            .columns([F::Monitor, F::RequestId, F::LabelNum, F::LabelCat, F::Time])
            .on_conflict(
                OnConflict::columns([F::Monitor, F::RequestId])
                    .update_columns([F::LabelNum, F::LabelCat, F::Time])
                    .to_owned(),
            )
            .to_owned();
        for (id, label) in chunk {
            let (num, cat) = split(label);
            q.values_panic([
                monitor.into(),
                id.as_str().into(),
                num.into(),
                cat.into(),
                now.into(),
            ]);
        }
        tx.execute(&q).await.map_err(db_err)?;
    }
    let mut matched = 0i64;
    for chunk in rows.chunks(500) {
        let q = Query::select()
            .expr_as(Func::count(Expr::col(P::RequestId)), Alias::new("n"))
            .from(P::Table)
            .and_where(Expr::col(P::Monitor).eq(monitor))
            .and_where(Expr::col(P::RequestId).is_in(chunk.iter().map(|(id, _)| id.as_str())))
            .to_owned();
        if let Some(r) = tx.query_one(&q).await.map_err(db_err)? {
            matched += get::<i64>(&r, "n")?;
        }
    }
    Ok(rows.len() as i64 - matched)
}

/// A KPI value.
#[derive(Debug, Clone)]
pub struct KpiRow {
    /// Name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Request it belongs to ("" for a windowed value).
    pub request_id: String,
    /// ms.
    pub time: i64,
}

/// Appends KPI values.
pub async fn insert_kpis(tx: &WriteTx, monitor: &str, rows: &[KpiRow]) -> Result<(), Error> {
    for chunk in pow2_chunks(rows, 256) {
        let mut q = Query::insert()
            .into_table(K::Table)
            .columns([K::Monitor, K::Name, K::Value, K::RequestId, K::Time])
            .to_owned();
        for k in chunk {
            q.values_panic([
                monitor.into(),
                k.name.as_str().into(),
                k.value.into(),
                k.request_id.as_str().into(),
                k.time.into(),
            ]);
        }
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}

/// Most predictions (and KPI values) one performance evaluation reads: the latest this many in
/// its range.
pub const MAX_JOINED: u64 = 1_000_000;

/// Predictions in `[from, to)` with their labels, if any (the latest [`MAX_JOINED`]).
pub async fn joined<C: ConnectionTrait>(
    c: &C,
    monitor: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Joined>, Error> {
    let q = Query::select()
        .column((P::Table, P::Variant))
        .column((P::Table, P::PredNum))
        .column((P::Table, P::PredCat))
        .column((P::Table, P::LatencyUs))
        .column((P::Table, P::Error))
        .column((F::Table, F::LabelNum))
        .column((F::Table, F::LabelCat))
        .from(P::Table)
        .join(
            JoinType::LeftJoin,
            F::Table,
            Expr::col((F::Table, F::Monitor))
                .equals((P::Table, P::Monitor))
                .and(Expr::col((F::Table, F::RequestId)).equals((P::Table, P::RequestId))),
        )
        .and_where(Expr::col((P::Table, P::Monitor)).eq(monitor))
        .and_where(Expr::col((P::Table, P::Time)).gte(from))
        .and_where(Expr::col((P::Table, P::Time)).lt(to))
        .order_by((P::Table, P::Time), sea_orm::sea_query::Order::Desc)
        .limit(MAX_JOINED)
        .to_owned();
    c.query_all(&q)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            Ok(Joined {
                variant: get(r, "variant")?,
                prediction: join(get(r, "pred_num")?, get(r, "pred_cat")?),
                label: join(get(r, "label_num")?, get(r, "label_cat")?),
                latency_us: get(r, "latency_us")?,
                error: get::<i16>(r, "error")? != 0,
            })
        })
        .collect()
}

/// Mean of each KPI in `[from, to)`, per variant of the request it belongs to ("" for every
/// value together, including windowed ones).
pub async fn kpi_means<C: ConnectionTrait>(
    c: &C,
    monitor: &str,
    from: i64,
    to: i64,
) -> Result<BTreeMap<String, BTreeMap<String, f64>>, Error> {
    let q = Query::select()
        .column((K::Table, K::Name))
        .column((K::Table, K::Value))
        .column((P::Table, P::Variant))
        .from(K::Table)
        .join(
            JoinType::LeftJoin,
            P::Table,
            Expr::col((P::Table, P::Monitor))
                .equals((K::Table, K::Monitor))
                .and(Expr::col((P::Table, P::RequestId)).equals((K::Table, K::RequestId))),
        )
        .and_where(Expr::col((K::Table, K::Monitor)).eq(monitor))
        .and_where(Expr::col((K::Table, K::Time)).gte(from))
        .and_where(Expr::col((K::Table, K::Time)).lt(to))
        .order_by((K::Table, K::Time), sea_orm::sea_query::Order::Desc)
        .limit(MAX_JOINED)
        .to_owned();
    let mut sums: BTreeMap<String, BTreeMap<String, (f64, f64)>> = BTreeMap::new();
    for r in c.query_all(&q).await.map_err(db_err)? {
        let name: String = get(&r, "name")?;
        let value: f64 = get(&r, "value")?;
        let variant: Option<String> = get(&r, "variant")?;
        let per = sums.entry(String::new()).or_default();
        let e = per.entry(name.clone()).or_insert((0.0, 0.0));
        e.0 += value;
        e.1 += 1.0;
        if let Some(v) = variant {
            let e = sums.entry(v).or_default().entry(name).or_insert((0.0, 0.0));
            e.0 += value;
            e.1 += 1.0;
        }
    }
    Ok(sums
        .into_iter()
        .map(|(v, m)| (v, m.into_iter().map(|(k, (s, n))| (k, s / n)).collect()))
        .collect())
}

/// Deletes every record of a monitor.
pub async fn delete_all(tx: &WriteTx, monitor: &str) -> Result<(), Error> {
    for q in [
        Query::delete()
            .from_table(P::Table)
            .and_where(Expr::col(P::Monitor).eq(monitor))
            .to_owned(),
        Query::delete()
            .from_table(F::Table)
            .and_where(Expr::col(F::Monitor).eq(monitor))
            .to_owned(),
        Query::delete()
            .from_table(K::Table)
            .and_where(Expr::col(K::Monitor).eq(monitor))
            .to_owned(),
    ] {
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}

/// Deletes predictions, labels and KPI values older than `before` (ms); returns the rows.
pub async fn expire(tx: &WriteTx, before: i64) -> Result<u64, Error> {
    let mut n = 0;
    for q in [
        Query::delete()
            .from_table(P::Table)
            .and_where(Expr::col(P::Time).lt(before))
            .to_owned(),
        Query::delete()
            .from_table(F::Table)
            .and_where(Expr::col(F::Time).lt(before))
            .to_owned(),
        Query::delete()
            .from_table(K::Table)
            .and_where(Expr::col(K::Time).lt(before))
            .to_owned(),
    ] {
        n += tx.execute(&q).await.map_err(db_err)?.rows_affected();
    }
    Ok(n)
}
