//! `monitor_windows` and `monitor_chunks`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::{MonitorChunks as C, MonitorWindows as W};

use super::{WriteTx, fetch_all, fetch_one, get};

/// Window states.
pub const OPEN: i16 = 0;
/// Closed, report written.
pub const CLOSED: i16 = 1;
/// A count window that is full and waits for the closer.
pub const FULL: i16 = 2;

/// A window row.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    /// `{m}`.
    pub monitor: String,
    /// Number.
    pub number: i64,
    /// ms (time windows: the boundary; count windows: the first record's time).
    pub start_time: i64,
    /// ms (time windows: the boundary; count windows: the last record's time).
    pub end_time: i64,
    /// Rows.
    pub rows: i64,
    /// OPEN, CLOSED or FULL.
    pub state: i16,
    /// Report verdict.
    pub dataset_drift: bool,
    /// Report share.
    pub drift_share: f64,
    /// ms.
    pub close_time: i64,
}

const COLS: [W; 9] = [
    W::Monitor,
    W::Number,
    W::StartTime,
    W::EndTime,
    W::Rows,
    W::State,
    W::DatasetDrift,
    W::DriftShare,
    W::CloseTime,
];

fn from_row(r: &sea_orm::QueryResult) -> Result<WindowRow, Error> {
    Ok(WindowRow {
        monitor: get(r, "monitor")?,
        number: get(r, "number")?,
        start_time: get(r, "start_time")?,
        end_time: get(r, "end_time")?,
        rows: get(r, "rows")?,
        state: get(r, "state")?,
        dataset_drift: get::<i16>(r, "dataset_drift")? != 0,
        drift_share: get(r, "drift_share")?,
        close_time: get(r, "close_time")?,
    })
}

/// Creates window `n` if it does not exist yet.
pub async fn ensure(
    tx: &WriteTx,
    monitor: &str,
    n: i64,
    start: i64,
    end: i64,
) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(W::Table)
        .columns([
            W::Monitor,
            W::Number,
            W::StartTime,
            W::EndTime,
            W::Rows,
            W::State,
            W::DatasetDrift,
            W::DriftShare,
            W::ReportJson,
            W::CloseTime,
        ])
        .values_panic([
            monitor.into(),
            n.into(),
            start.into(),
            end.into(),
            0i64.into(),
            OPEN.into(),
            0i16.into(),
            0.0f64.into(),
            "".into(),
            0i64.into(),
        ])
        .on_conflict(
            OnConflict::columns([W::Monitor, W::Number])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// One window.
pub async fn get_one<Cn: ConnectionTrait>(
    c: &Cn,
    monitor: &str,
    n: i64,
) -> Result<Option<WindowRow>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(W::Table)
        .and_where(Expr::col(W::Monitor).eq(monitor))
        .and_where(Expr::col(W::Number).eq(n))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// Records `rows` more rows in window `n`, widening its times (count windows) and marking it
/// FULL once it holds `full_at` rows (count windows; 0 for time windows).
pub async fn add_rows(
    tx: &WriteTx,
    w: &WindowRow,
    rows: i64,
    min_time: i64,
    max_time: i64,
    full_at: i64,
) -> Result<(), Error> {
    let total = w.rows + rows;
    let mut q = Query::update();
    q.table(W::Table)
        .value(W::Rows, Expr::col(W::Rows).add(rows))
        .and_where(Expr::col(W::Monitor).eq(w.monitor.as_str()))
        .and_where(Expr::col(W::Number).eq(w.number));
    if full_at > 0 {
        // A count window's end stays unset (i64::MAX) until it is full.
        let start = if w.rows == 0 {
            min_time
        } else {
            Ord::min(w.start_time, min_time)
        };
        q.value(W::StartTime, start);
        if total >= full_at {
            q.value(W::State, FULL).value(W::EndTime, max_time);
        }
    }
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Appends an encoded chunk to window `n`.
pub async fn insert_chunk(
    tx: &WriteTx,
    monitor: &str,
    n: i64,
    rows: i64,
    data: Vec<u8>,
) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(C::Table)
        .columns([C::Monitor, C::Window, C::Rows, C::Data])
        .values_panic([monitor.into(), n.into(), rows.into(), data.into()])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// The chunks of window `n`, in insertion order.
pub async fn chunks<Cn: ConnectionTrait>(
    c: &Cn,
    monitor: &str,
    n: i64,
) -> Result<Vec<Vec<u8>>, Error> {
    let q = Query::select()
        .column(C::Data)
        .from(C::Table)
        .and_where(Expr::col(C::Monitor).eq(monitor))
        .and_where(Expr::col(C::Window).eq(n))
        .order_by(C::Id, Order::Asc)
        .to_owned();
    c.query_all(&q)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| get::<Vec<u8>>(r, "data"))
        .collect()
}

/// Drops the chunks of a monitor's windows before `n` (their reports stay).
pub async fn prune_chunks(tx: &WriteTx, monitor: &str, before: i64) -> Result<u64, Error> {
    let q = Query::delete()
        .from_table(C::Table)
        .and_where(Expr::col(C::Monitor).eq(monitor))
        .and_where(Expr::col(C::Window).lt(before))
        .to_owned();
    Ok(tx.execute(&q).await.map_err(db_err)?.rows_affected())
}

/// Windows that may be due: FULL ones, and OPEN ones whose end is before `now`.
pub async fn candidates<Cn: ConnectionTrait>(c: &Cn, now: i64) -> Result<Vec<WindowRow>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(W::Table)
        .cond_where(
            Expr::col(W::State).eq(FULL).or(Expr::col(W::State)
                .eq(OPEN)
                .and(Expr::col(W::EndTime).lte(now))),
        )
        .order_by(W::EndTime, Order::Asc)
        .limit(100)
        .to_owned();
    fetch_all(c, &q, from_row).await
}

/// Closes window `n` with its report unless another closer did; true when this call closed it.
pub async fn close(
    tx: &WriteTx,
    monitor: &str,
    n: i64,
    report_json: &str,
    dataset_drift: bool,
    drift_share: f64,
    now: i64,
) -> Result<bool, Error> {
    let q = Query::update()
        .table(W::Table)
        .value(W::State, CLOSED)
        .value(W::ReportJson, report_json)
        .value(W::DatasetDrift, dataset_drift as i16)
        .value(W::DriftShare, drift_share)
        .value(W::CloseTime, now)
        .and_where(Expr::col(W::Monitor).eq(monitor))
        .and_where(Expr::col(W::Number).eq(n))
        .and_where(Expr::col(W::State).ne(CLOSED))
        .to_owned();
    Ok(tx.execute(&q).await.map_err(db_err)?.rows_affected() == 1)
}

/// The report JSON of a closed window (the latest closed one when `n` is None).
pub async fn report<Cn: ConnectionTrait>(
    c: &Cn,
    monitor: &str,
    n: Option<i64>,
) -> Result<Option<(WindowRow, String)>, Error> {
    let mut q = Query::select()
        .columns(COLS)
        .column(W::ReportJson)
        .from(W::Table)
        .and_where(Expr::col(W::Monitor).eq(monitor))
        .and_where(Expr::col(W::State).eq(CLOSED))
        .order_by(W::Number, Order::Desc)
        .limit(1)
        .to_owned();
    if let Some(n) = n {
        q.and_where(Expr::col(W::Number).eq(n));
    }
    match c.query_one(&q).await.map_err(db_err)? {
        Some(r) => Ok(Some((from_row(&r)?, get(&r, "report_json")?))),
        None => Ok(None),
    }
}

/// A page of windows, newest first, before number `before`.
pub async fn list<Cn: ConnectionTrait>(
    c: &Cn,
    monitor: &str,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<WindowRow>, Error> {
    let mut q = Query::select()
        .columns(COLS)
        .from(W::Table)
        .and_where(Expr::col(W::Monitor).eq(monitor))
        .order_by(W::Number, Order::Desc)
        .limit(limit)
        .to_owned();
    if let Some(b) = before {
        q.and_where(Expr::col(W::Number).lt(b));
    }
    fetch_all(c, &q, from_row).await
}

/// Deletes every window and chunk of a monitor.
pub async fn delete_all(tx: &WriteTx, monitor: &str) -> Result<(), Error> {
    for q in [
        Query::delete()
            .from_table(C::Table)
            .and_where(Expr::col(C::Monitor).eq(monitor))
            .to_owned(),
        Query::delete()
            .from_table(W::Table)
            .and_where(Expr::col(W::Monitor).eq(monitor))
            .to_owned(),
    ] {
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}
