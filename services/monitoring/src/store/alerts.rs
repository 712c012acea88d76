//! `monitor_rules`, `monitor_alerts` and `monitor_series`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use serde::{Deserialize, Serialize};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::idempotency::is_unique_violation;
use steward_storage::schema::{MonitorAlerts as A, MonitorRules as R, MonitorSeries as S};

use super::{WriteTx, fetch_all, fetch_one, from_json, get, json};
use crate::domain::rules::{Comparator, Rule};

fn comparator_code(c: Comparator) -> i16 {
    match c {
        Comparator::Greater => 1,
        Comparator::GreaterOrEqual => 2,
        Comparator::Less => 3,
        Comparator::LessOrEqual => 4,
    }
}

fn comparator_of(n: i16) -> Result<Comparator, Error> {
    Ok(match n {
        1 => Comparator::Greater,
        2 => Comparator::GreaterOrEqual,
        3 => Comparator::Less,
        4 => Comparator::LessOrEqual,
        _ => return Err(Error::internal("corrupt rule comparator")),
    })
}

const RULE_COLS: [R; 11] = [
    R::Monitor,
    R::Id,
    R::Metric,
    R::Comparator,
    R::Threshold,
    R::WindowMs,
    R::HoldMs,
    R::Severity,
    R::ChannelsJson,
    R::PendingSince,
    R::CreateTime,
];

fn rule_from_row(r: &sea_orm::QueryResult) -> Result<Rule, Error> {
    Ok(Rule {
        monitor: get(r, "monitor")?,
        id: get(r, "id")?,
        metric: get(r, "metric")?,
        comparator: comparator_of(get(r, "comparator")?)?,
        threshold: get(r, "threshold")?,
        window_ms: get(r, "window_ms")?,
        hold_ms: get(r, "hold_ms")?,
        severity: get(r, "severity")?,
        channels: from_json(&get::<String>(r, "channels_json")?, "rule channels")?,
        pending_since: get(r, "pending_since")?,
        create_time: get(r, "create_time")?,
    })
}

/// Inserts a rule.
pub async fn insert_rule(tx: &WriteTx, r: &Rule) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(R::Table)
        .columns(RULE_COLS)
        .values_panic([
            r.monitor.as_str().into(),
            r.id.as_str().into(),
            r.metric.as_str().into(),
            comparator_code(r.comparator).into(),
            r.threshold.into(),
            r.window_ms.into(),
            r.hold_ms.into(),
            r.severity.as_str().into(),
            json(&r.channels)?.into(),
            r.pending_since.into(),
            r.create_time.into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::already_exists(
            "RULE_ALREADY_EXISTS",
            format!("monitors/{}/rules/{} already exists", r.monitor, r.id),
        )
        .with_violation("rule_id", "already used")),
        Err(e) => Err(db_err(e)),
    }
}

/// Remembers when a rule's condition started holding.
pub async fn set_pending(tx: &WriteTx, r: &Rule) -> Result<(), Error> {
    let q = Query::update()
        .table(R::Table)
        .value(R::PendingSince, r.pending_since)
        .and_where(Expr::col(R::Monitor).eq(r.monitor.as_str()))
        .and_where(Expr::col(R::Id).eq(r.id.as_str()))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Rules of a monitor (every monitor's when None).
pub async fn rules<C: ConnectionTrait>(c: &C, monitor: Option<&str>) -> Result<Vec<Rule>, Error> {
    let mut q = Query::select()
        .columns(RULE_COLS)
        .from(R::Table)
        .order_by(R::Monitor, Order::Asc)
        .order_by(R::Id, Order::Asc)
        .to_owned();
    if let Some(m) = monitor {
        q.and_where(Expr::col(R::Monitor).eq(m));
    }
    fetch_all(c, &q, rule_from_row).await
}

/// One rule.
pub async fn rule<C: ConnectionTrait>(
    c: &C,
    monitor: &str,
    id: &str,
) -> Result<Option<Rule>, Error> {
    let q = Query::select()
        .columns(RULE_COLS)
        .from(R::Table)
        .and_where(Expr::col(R::Monitor).eq(monitor))
        .and_where(Expr::col(R::Id).eq(id))
        .to_owned();
    fetch_one(c, &q, rule_from_row).await
}

/// Deletes a rule (and its monitor's rules when `id` is None).
pub async fn delete_rules(tx: &WriteTx, monitor: &str, id: Option<&str>) -> Result<(), Error> {
    let mut q = Query::delete()
        .from_table(R::Table)
        .and_where(Expr::col(R::Monitor).eq(monitor))
        .to_owned();
    if let Some(id) = id {
        q.and_where(Expr::col(R::Id).eq(id));
    }
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Alert states.
pub const FIRING: i16 = 1;
/// Resolved.
pub const RESOLVED: i16 = 2;

/// An alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    /// `{a}`.
    pub id: String,
    /// `{m}`.
    pub monitor: String,
    /// `{r}`.
    pub rule: String,
    /// `{d}` or "".
    pub deployment: String,
    /// FIRING or RESOLVED.
    pub state: i16,
    /// Severity.
    pub severity: String,
    /// Series.
    pub metric: String,
    /// The value that fired it.
    pub value: f64,
    /// Threshold.
    pub threshold: f64,
    /// Why.
    pub reason: String,
    /// ms.
    pub fire_time: i64,
    /// ms.
    pub resolve_time: Option<i64>,
}

const ALERT_COLS: [A; 12] = [
    A::Id,
    A::Monitor,
    A::Rule,
    A::Deployment,
    A::State,
    A::Severity,
    A::Metric,
    A::Value,
    A::Threshold,
    A::Reason,
    A::FireTime,
    A::ResolveTime,
];

fn alert_from_row(r: &sea_orm::QueryResult) -> Result<AlertRow, Error> {
    Ok(AlertRow {
        id: get(r, "id")?,
        monitor: get(r, "monitor")?,
        rule: get(r, "rule")?,
        deployment: get(r, "deployment")?,
        state: get(r, "state")?,
        severity: get(r, "severity")?,
        metric: get(r, "metric")?,
        value: get(r, "value")?,
        threshold: get(r, "threshold")?,
        reason: get(r, "reason")?,
        fire_time: get(r, "fire_time")?,
        resolve_time: get(r, "resolve_time")?,
    })
}

fn open_key(monitor: &str, rule: &str) -> String {
    format!("{monitor}/{rule}")
}

/// Opens an alert; false when one of the rule is already open (deduplicated).
pub async fn open(tx: &WriteTx, a: &AlertRow) -> Result<bool, Error> {
    let q = Query::insert()
        .into_table(A::Table)
        .columns(ALERT_COLS.into_iter().chain([A::OpenKey]))
        .values_panic([
            a.id.as_str().into(),
            a.monitor.as_str().into(),
            a.rule.as_str().into(),
            a.deployment.as_str().into(),
            FIRING.into(),
            a.severity.as_str().into(),
            a.metric.as_str().into(),
            a.value.into(),
            a.threshold.into(),
            a.reason.as_str().into(),
            a.fire_time.into(),
            None::<i64>.into(),
            open_key(&a.monitor, &a.rule).into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(db_err(e)),
    }
}

/// The open alert of a rule.
pub async fn open_alert<C: ConnectionTrait>(
    c: &C,
    monitor: &str,
    rule: &str,
) -> Result<Option<AlertRow>, Error> {
    let q = Query::select()
        .columns(ALERT_COLS)
        .from(A::Table)
        .and_where(Expr::col(A::OpenKey).eq(open_key(monitor, rule)))
        .to_owned();
    fetch_one(c, &q, alert_from_row).await
}

/// Resolves an alert; false when it was not open.
pub async fn resolve(tx: &WriteTx, id: &str, now: i64) -> Result<bool, Error> {
    let q = Query::update()
        .table(A::Table)
        .value(A::State, RESOLVED)
        .value(A::ResolveTime, now)
        .value(A::OpenKey, None::<String>)
        .and_where(Expr::col(A::Id).eq(id))
        .and_where(Expr::col(A::State).eq(FIRING))
        .to_owned();
    Ok(tx.execute(&q).await.map_err(db_err)?.rows_affected() == 1)
}

/// One alert.
pub async fn alert<C: ConnectionTrait>(c: &C, id: &str) -> Result<Option<AlertRow>, Error> {
    let q = Query::select()
        .columns(ALERT_COLS)
        .from(A::Table)
        .and_where(Expr::col(A::Id).eq(id))
        .to_owned();
    fetch_one(c, &q, alert_from_row).await
}

/// Alerts newest first, after the cursor `(fire_time, id)`, optionally by state and monitor.
pub async fn alerts<C: ConnectionTrait>(
    c: &C,
    state: Option<i16>,
    monitor: Option<&str>,
    after: Option<(i64, String)>,
    limit: u64,
) -> Result<Vec<AlertRow>, Error> {
    let mut q = Query::select()
        .columns(ALERT_COLS)
        .from(A::Table)
        .order_by(A::FireTime, Order::Desc)
        .order_by(A::Id, Order::Desc)
        .limit(limit)
        .to_owned();
    if let Some(s) = state {
        q.and_where(Expr::col(A::State).eq(s));
    }
    if let Some(m) = monitor {
        q.and_where(Expr::col(A::Monitor).eq(m));
    }
    if let Some((t, id)) = after {
        q.and_where(steward_storage::rows::after(
            Expr::col(A::FireTime),
            Expr::col(A::Id),
            &steward_storage::rows::SortVal::Int(t),
            Expr::val(id),
            true,
        ));
    }
    fetch_all(c, &q, alert_from_row).await
}

/// Appends series points `(metric, value)` at `time` for window `window`.
pub async fn append_series(
    tx: &WriteTx,
    monitor: &str,
    time: i64,
    window: i64,
    points: &[(String, f64)],
) -> Result<(), Error> {
    for chunk in steward_storage::rows::pow2_chunks(points, 128) {
        let mut q = Query::insert()
            .into_table(S::Table)
            .columns([S::Monitor, S::Metric, S::Time, S::Window, S::Value])
            .to_owned();
        for (m, v) in chunk {
            q.values_panic([
                monitor.into(),
                m.as_str().into(),
                time.into(),
                window.into(),
                v.into(),
            ]);
        }
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}

/// A series in `[from, to)`, oldest first (at most `limit` points).
pub async fn series<C: ConnectionTrait>(
    c: &C,
    monitor: &str,
    metric: &str,
    from: i64,
    to: i64,
    limit: u64,
) -> Result<Vec<(i64, f64, i64)>, Error> {
    let q = Query::select()
        .columns([S::Time, S::Value, S::Window])
        .from(S::Table)
        .and_where(Expr::col(S::Monitor).eq(monitor))
        .and_where(Expr::col(S::Metric).eq(metric))
        .and_where(Expr::col(S::Time).gte(from))
        .and_where(Expr::col(S::Time).lt(to))
        .order_by(S::Time, Order::Asc)
        .order_by(S::Id, Order::Asc)
        .limit(limit)
        .to_owned();
    c.query_all(&q)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| Ok((get(r, "time")?, get(r, "value")?, get(r, "window")?)))
        .collect()
}

/// Deletes a monitor's series.
pub async fn delete_series(tx: &WriteTx, monitor: &str) -> Result<(), Error> {
    let q = Query::delete()
        .from_table(S::Table)
        .and_where(Expr::col(S::Monitor).eq(monitor))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}
