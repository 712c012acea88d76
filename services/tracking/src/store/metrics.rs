//! Run data: params (write-once), tags, and metric history stored as compressed column chunks
//! per (run, key) beside a `latest_metrics` table that search filters and orders on.

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, OnConflict, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::{
    LatestMetrics as M, MetricChunks as C, RunParams as P, RunTags as T,
};

use super::{IN_CHUNK, WriteTx, get};
use crate::domain::{RunData, Series, chunk};

/// Max points in one stored chunk; bigger series are split.
pub const MAX_CHUNK_POINTS: usize = 50_000;

/// Writes params, tags and metrics of `data` to run `run_id`. Params are write-once: the same
/// value again is accepted; a different one is `FAILED_PRECONDITION` and nothing is written.
pub async fn write_run_data(tx: &WriteTx, run_id: &str, data: &RunData) -> Result<usize, Error> {
    write_params(tx, run_id, &data.params).await?;
    write_tags(tx, run_id, &data.tags).await?;
    write_metrics(tx, run_id, &data.metrics).await
}

async fn write_params(
    tx: &WriteTx,
    run_id: &str,
    params: &[(String, String)],
) -> Result<(), Error> {
    if params.is_empty() {
        return Ok(());
    }
    let mut existing: HashMap<String, String> = HashMap::new();
    for chunk in params.chunks(IN_CHUNK) {
        let q = Query::select()
            .columns([P::Key, P::Value])
            .from(P::Table)
            .and_where(Expr::col(P::RunId).eq(run_id))
            .and_where(Expr::col(P::Key).is_in(chunk.iter().map(|(k, _)| k.clone())))
            .to_owned();
        for r in tx.query_all(&q).await.map_err(db_err)? {
            existing.insert(get(&r, "key")?, get(&r, "value")?);
        }
    }
    let mut ins = Query::insert()
        .into_table(P::Table)
        .columns([P::RunId, P::Key, P::Value])
        .to_owned();
    let mut any = false;
    for (i, (k, v)) in params.iter().enumerate() {
        match existing.get(k) {
            Some(old) if old == v => {}
            Some(old) => {
                return Err(Error::failed_precondition(
                    "PARAM_ALREADY_LOGGED",
                    format!(
                        "param {k:?} was already logged with value {old:?}; params are write-once"
                    ),
                )
                .with_violation(
                    format!("params[{i}].value"),
                    "differs from the value already logged",
                ));
            }
            None => {
                ins.values_panic([run_id.into(), k.as_str().into(), v.as_str().into()]);
                any = true;
            }
        }
    }
    if any {
        tx.execute(&ins).await.map_err(db_err)?;
    }
    Ok(())
}

/// Upserts tags of a run.
pub async fn write_tags(
    tx: &WriteTx,
    run_id: &str,
    tags: &[(String, String)],
) -> Result<(), Error> {
    if tags.is_empty() {
        return Ok(());
    }
    for chunk in tags.chunks(IN_CHUNK) {
        let mut q = Query::insert()
            .into_table(T::Table)
            .columns([T::RunId, T::Key, T::Value])
            .on_conflict(
                OnConflict::columns([T::RunId, T::Key])
                    .update_column(T::Value)
                    .to_owned(),
            )
            .to_owned();
        for (k, v) in chunk {
            q.values_panic([run_id.into(), k.as_str().into(), v.as_str().into()]);
        }
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}

/// NaN is stored as NULL: it never matches a comparison and sorts with the missing values.
fn finite_or_null(v: f64) -> Expr {
    Expr::val(if v.is_nan() { None } else { Some(v) })
}

async fn write_metrics(
    tx: &WriteTx,
    run_id: &str,
    metrics: &[(String, Series)],
) -> Result<usize, Error> {
    let mut total = 0;
    let mut chunks = Query::insert()
        .into_table(C::Table)
        .columns([
            C::RunId,
            C::Key,
            C::NPoints,
            C::MinStep,
            C::MaxStep,
            C::Data,
        ])
        .to_owned();
    let mut latest = Query::insert()
        .into_table(M::Table)
        .columns([M::RunId, M::Key, M::Value, M::Step, M::Timestamp])
        .to_owned();
    let mut rows = 0;
    for (key, s) in metrics {
        if s.is_empty() {
            continue;
        }
        total += s.len();
        let mut from = 0;
        while from < s.len() {
            let to = (from + MAX_CHUNK_POINTS).min(s.len());
            let mut part = Series::default();
            part.extend_range(s, from, to);
            let min = *part.steps.iter().min().expect("non-empty");
            let max = *part.steps.iter().max().expect("non-empty");
            chunks.values_panic([
                run_id.into(),
                key.as_str().into(),
                (part.len() as i32).into(),
                min.into(),
                max.into(),
                Expr::val(chunk::encode(&part)),
            ]);
            rows += 1;
            if rows == 64 {
                tx.execute(&chunks).await.map_err(db_err)?;
                chunks = Query::insert()
                    .into_table(C::Table)
                    .columns([
                        C::RunId,
                        C::Key,
                        C::NPoints,
                        C::MinStep,
                        C::MaxStep,
                        C::Data,
                    ])
                    .to_owned();
                rows = 0;
            }
            from = to;
        }
        let i = s.latest_index().expect("non-empty");
        latest.values_panic([
            run_id.into(),
            key.as_str().into(),
            finite_or_null(s.values[i]),
            s.steps[i].into(),
            s.timestamps[i].into(),
        ]);
    }
    if total == 0 {
        return Ok(0);
    }
    if rows > 0 {
        tx.execute(&chunks).await.map_err(db_err)?;
    }
    let ex = Alias::new("excluded");
    let newer = Expr::col((ex.clone(), M::Step))
        .gt(Expr::col((M::Table, M::Step)))
        .or(Expr::col((ex.clone(), M::Step))
            .eq(Expr::col((M::Table, M::Step)))
            .and(Expr::col((ex, M::Timestamp)).gte(Expr::col((M::Table, M::Timestamp)))));
    latest.on_conflict(
        OnConflict::columns([M::RunId, M::Key])
            .update_columns([M::Value, M::Step, M::Timestamp])
            .action_and_where(newer)
            .to_owned(),
    );
    tx.execute(&latest).await.map_err(db_err)?;
    Ok(total)
}

/// Keyset position in a metric history: the next chunk id and offset inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryCursor {
    /// Chunk id to resume at.
    pub chunk: i64,
    /// Points of that chunk already returned.
    pub offset: usize,
}

/// Reads up to `limit` points of (run, key) after `cursor`, in logged order.
pub async fn history<Cn: ConnectionTrait>(
    c: &Cn,
    run_id: &str,
    key: &str,
    cursor: Option<HistoryCursor>,
    limit: usize,
) -> Result<(Series, Option<HistoryCursor>), Error> {
    let mut out = Series::default();
    let mut next_chunk = cursor.map(|c| c.chunk).unwrap_or(i64::MIN);
    let mut skip = cursor.map(|c| c.offset).unwrap_or(0);
    loop {
        let q = Query::select()
            .columns([C::Id, C::Data])
            .from(C::Table)
            .and_where(Expr::col(C::RunId).eq(run_id))
            .and_where(Expr::col(C::Key).eq(key))
            .and_where(Expr::col(C::Id).gte(next_chunk))
            .order_by(C::Id, Order::Asc)
            .limit(32)
            .to_owned();
        let rows = c.query_all(&q).await.map_err(db_err)?;
        if rows.is_empty() {
            return Ok((out, None));
        }
        for r in &rows {
            let id: i64 = get(r, "id")?;
            let data: Vec<u8> = get(r, "data")?;
            let mut s = Series::default();
            chunk::decode_into(&data, &mut s)
                .map_err(|e| Error::internal(format!("metric chunk {id}: {e}")))?;
            let from = skip.min(s.len());
            skip = 0;
            let room = limit - out.len();
            let to = from.saturating_add(room).min(s.len());
            out.extend_range(&s, from, to);
            if out.len() == limit {
                // More points in this chunk, or possibly in later ones.
                let cur = if to < s.len() {
                    HistoryCursor {
                        chunk: id,
                        offset: to,
                    }
                } else {
                    HistoryCursor {
                        chunk: id + 1,
                        offset: 0,
                    }
                };
                // Confirm something follows, so the last page has no token.
                if to < s.len() || has_chunk_from(c, run_id, key, id + 1).await? {
                    return Ok((out, Some(cur)));
                }
                return Ok((out, None));
            }
            next_chunk = id + 1;
        }
    }
}

async fn has_chunk_from<Cn: ConnectionTrait>(
    c: &Cn,
    run_id: &str,
    key: &str,
    from: i64,
) -> Result<bool, Error> {
    let q = Query::select()
        .column(C::Id)
        .from(C::Table)
        .and_where(Expr::col(C::RunId).eq(run_id))
        .and_where(Expr::col(C::Key).eq(key))
        .and_where(Expr::col(C::Id).gte(from))
        .limit(1)
        .to_owned();
    Ok(c.query_one(&q).await.map_err(db_err)?.is_some())
}

/// Number of points stored for (run, key).
pub async fn count<Cn: ConnectionTrait>(c: &Cn, run_id: &str, key: &str) -> Result<i64, Error> {
    let q = Query::select()
        .expr_as(
            Func::coalesce([Expr::col(C::NPoints).sum(), Expr::val(0i64)]),
            Alias::new("n"),
        )
        .from(C::Table)
        .and_where(Expr::col(C::RunId).eq(run_id))
        .and_where(Expr::col(C::Key).eq(key))
        .to_owned();
    let row = c.query_one(&q).await.map_err(db_err)?;
    match row {
        Some(r) => r.try_get_by_index::<i64>(0).map_err(db_err),
        None => Ok(0),
    }
}

/// The whole series of (run, key), in logged order, decoded straight into one buffer sized from
/// the chunk headers.
pub async fn full_series<Cn: ConnectionTrait>(
    c: &Cn,
    run_id: &str,
    key: &str,
) -> Result<Series, Error> {
    let total = count(c, run_id, key).await? as usize;
    let q = Query::select()
        .columns([C::Id, C::Data])
        .from(C::Table)
        .and_where(Expr::col(C::RunId).eq(run_id))
        .and_where(Expr::col(C::Key).eq(key))
        .order_by(C::Id, Order::Asc)
        .to_owned();
    let mut out = Series {
        steps: Vec::with_capacity(total),
        timestamps: Vec::with_capacity(total),
        values: Vec::with_capacity(total),
    };
    for r in c.query_all(&q).await.map_err(db_err)? {
        let id: i64 = get(&r, "id")?;
        let data: Vec<u8> = get(&r, "data")?;
        chunk::decode_into(&data, &mut out)
            .map_err(|e| Error::internal(format!("metric chunk {id}: {e}")))?;
    }
    Ok(out)
}
