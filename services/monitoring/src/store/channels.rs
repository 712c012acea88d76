//! `monitor_channels` and `monitor_deliveries`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::idempotency::is_unique_violation;
use steward_storage::schema::{MonitorChannels as C, MonitorDeliveries as D};

use super::{WriteTx, fetch_all, fetch_one, get};

/// A webhook channel.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelRow {
    /// `{c}`.
    pub id: String,
    /// URL.
    pub url: String,
    /// HMAC key (never returned by the API, never audited).
    #[serde(skip_serializing)]
    pub secret: String,
    /// Private addresses allowed.
    pub allow_private: bool,
    /// ms.
    pub create_time: i64,
}

const COLS: [C; 5] = [C::Id, C::Url, C::Secret, C::AllowPrivate, C::CreateTime];

fn from_row(r: &sea_orm::QueryResult) -> Result<ChannelRow, Error> {
    Ok(ChannelRow {
        id: get(r, "id")?,
        url: get(r, "url")?,
        secret: get(r, "secret")?,
        allow_private: get::<i16>(r, "allow_private")? != 0,
        create_time: get(r, "create_time")?,
    })
}

/// Inserts a channel.
pub async fn insert(tx: &WriteTx, c: &ChannelRow) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(C::Table)
        .columns(COLS)
        .values_panic([
            c.id.as_str().into(),
            c.url.as_str().into(),
            c.secret.as_str().into(),
            (c.allow_private as i16).into(),
            c.create_time.into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::already_exists(
            "CHANNEL_ALREADY_EXISTS",
            format!("channels/{} already exists", c.id),
        )
        .with_violation("channel_id", "already used")),
        Err(e) => Err(db_err(e)),
    }
}

/// One channel.
pub async fn get_one<Cn: ConnectionTrait>(c: &Cn, id: &str) -> Result<Option<ChannelRow>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(C::Table)
        .and_where(Expr::col(C::Id).eq(id))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// Every channel.
pub async fn list<Cn: ConnectionTrait>(c: &Cn) -> Result<Vec<ChannelRow>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(C::Table)
        .order_by(C::Id, Order::Asc)
        .to_owned();
    fetch_all(c, &q, from_row).await
}

/// Deletes a channel; false when there was none.
pub async fn delete(tx: &WriteTx, id: &str) -> Result<bool, Error> {
    let q = Query::delete()
        .from_table(C::Table)
        .and_where(Expr::col(C::Id).eq(id))
        .to_owned();
    Ok(tx.execute(&q).await.map_err(db_err)?.rows_affected() == 1)
}

/// Delivery states.
pub const PENDING: i16 = 0;
/// Delivered (2xx).
pub const DELIVERED: i16 = 1;
/// Given up after the last attempt.
pub const FAILED: i16 = 2;

/// A webhook call to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Row id.
    pub id: i64,
    /// `{c}`.
    pub channel: String,
    /// "alert" or "retrain".
    pub kind: String,
    /// JSON body.
    pub payload: String,
    /// Attempts so far.
    pub attempts: i64,
}

/// Queues a call (in the transaction of the change that causes it).
pub async fn enqueue(
    tx: &WriteTx,
    channel: &str,
    kind: &str,
    payload: &str,
    now: i64,
) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(D::Table)
        .columns([
            D::Channel,
            D::Kind,
            D::Payload,
            D::Attempts,
            D::NextAttempt,
            D::State,
            D::LastError,
            D::CreateTime,
        ])
        .values_panic([
            channel.into(),
            kind.into(),
            payload.into(),
            0i64.into(),
            now.into(),
            PENDING.into(),
            "".into(),
            now.into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Pending calls due at `now`.
pub async fn due<Cn: ConnectionTrait>(
    c: &Cn,
    now: i64,
    limit: u64,
) -> Result<Vec<Delivery>, Error> {
    let q = Query::select()
        .columns([D::Id, D::Channel, D::Kind, D::Payload, D::Attempts])
        .from(D::Table)
        .and_where(Expr::col(D::State).eq(PENDING))
        .and_where(Expr::col(D::NextAttempt).lte(now))
        .order_by(D::NextAttempt, Order::Asc)
        .limit(limit)
        .to_owned();
    fetch_all(c, &q, |r| {
        Ok(Delivery {
            id: get(r, "id")?,
            channel: get(r, "channel")?,
            kind: get(r, "kind")?,
            payload: get(r, "payload")?,
            attempts: get(r, "attempts")?,
        })
    })
    .await
}

/// Claims a due call for `lease_ms` (so one replica makes it); false when another did.
pub async fn claim(tx: &WriteTx, d: &Delivery, now: i64, lease_ms: i64) -> Result<bool, Error> {
    let q = Query::update()
        .table(D::Table)
        .value(D::NextAttempt, now + lease_ms)
        .value(D::Attempts, d.attempts + 1)
        .and_where(Expr::col(D::Id).eq(d.id))
        .and_where(Expr::col(D::State).eq(PENDING))
        .and_where(Expr::col(D::Attempts).eq(d.attempts))
        .to_owned();
    Ok(tx.execute(&q).await.map_err(db_err)?.rows_affected() == 1)
}

/// Records the outcome of an attempt.
pub async fn finish(
    tx: &WriteTx,
    id: i64,
    state: i16,
    next_attempt: i64,
    error: &str,
) -> Result<(), Error> {
    let q = Query::update()
        .table(D::Table)
        .value(D::State, state)
        .value(D::NextAttempt, next_attempt)
        .value(D::LastError, error)
        .and_where(Expr::col(D::Id).eq(id))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Deliveries of a channel: (state, attempts, last error), oldest first.
pub async fn of_channel<Cn: ConnectionTrait>(
    c: &Cn,
    channel: &str,
) -> Result<Vec<(i16, i64, String, String)>, Error> {
    let q = Query::select()
        .columns([D::State, D::Attempts, D::LastError, D::Kind])
        .from(D::Table)
        .and_where(Expr::col(D::Channel).eq(channel))
        .order_by(D::Id, Order::Asc)
        .to_owned();
    c.query_all(&q)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            Ok((
                get(r, "state")?,
                get(r, "attempts")?,
                get(r, "last_error")?,
                get(r, "kind")?,
            ))
        })
        .collect()
}
