//! The transactional outbox: events are inserted in the same transaction as the change they
//! describe; [`SqlOutbox`] lets the relay in `steward-events` publish and then delete them.
//!
//! Several replicas of one service may relay the same rows concurrently; that yields duplicates,
//! never losses, and consumers dedupe on the event id.

use async_trait::async_trait;
use prost::Message;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use steward_common::Error;
use steward_events::{OutboxRecord, OutboxStore};
use steward_proto::events::EventEnvelope;

use crate::db::{Db, WriteTx, db_err};
use crate::schema::Outbox as T;

/// Adds `envelope` to the outbox of `service` within `tx`.
pub async fn enqueue(tx: &WriteTx, service: &str, envelope: &EventEnvelope) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(T::Table)
        .columns([
            T::Service,
            T::EventId,
            T::EventType,
            T::Envelope,
            T::CreateTime,
        ])
        .values_panic([
            service.into(),
            envelope.event_id.as_str().into(),
            envelope.r#type.as_str().into(),
            Expr::val(envelope.encode_to_vec()),
            steward_common::time::now_ms().into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    tx.mark_outbox(service);
    Ok(())
}

/// [`enqueue`] on a [`crate::direct::DirectWriter`]'s transaction.
///
/// # Errors
/// A database error.
pub fn enqueue_direct(
    tx: &mut crate::direct::DirectTx<'_>,
    service: &str,
    envelope: &EventEnvelope,
) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO outbox (service, event_id, event_type, envelope, create_time) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(rusqlite::params![
        service,
        envelope.event_id,
        envelope.r#type,
        envelope.encode_to_vec(),
        steward_common::time::now_ms(),
    ])
    .map_err(crate::direct::sqlite_err)?;
    tx.mark_outbox(service);
    Ok(())
}

/// Adds `envelopes` to the outbox of `service` within `tx`, with multi-row inserts.
pub async fn enqueue_many(
    tx: &WriteTx,
    service: &str,
    envelopes: &[EventEnvelope],
) -> Result<(), Error> {
    let now = steward_common::time::now_ms();
    for chunk in crate::rows::pow2_chunks(envelopes, 256) {
        let mut q = Query::insert()
            .into_table(T::Table)
            .columns([
                T::Service,
                T::EventId,
                T::EventType,
                T::Envelope,
                T::CreateTime,
            ])
            .to_owned();
        for envelope in chunk {
            q.values_panic([
                service.into(),
                envelope.event_id.as_str().into(),
                envelope.r#type.as_str().into(),
                Expr::val(envelope.encode_to_vec()),
                now.into(),
            ]);
        }
        tx.execute(&q).await.map_err(db_err)?;
    }
    if !envelopes.is_empty() {
        tx.mark_outbox(service);
    }
    Ok(())
}

/// The outbox rows of one service, as seen by the relay.
#[derive(Debug, Clone)]
pub struct SqlOutbox {
    db: Db,
    service: String,
}

impl SqlOutbox {
    /// The outbox of `service` in `db`.
    pub fn new(db: Db, service: impl Into<String>) -> Self {
        Self {
            db,
            service: service.into(),
        }
    }

    /// Number of rows not yet relayed.
    pub async fn pending_count(&self) -> Result<u64, Error> {
        let q = Query::select()
            .expr(Expr::col(T::Id).count())
            .from(T::Table)
            .and_where(Expr::col(T::Service).eq(self.service.as_str()))
            .to_owned();
        let row = self.db.conn().query_one(&q).await.map_err(db_err)?;
        let n: i64 = row
            .map(|r| r.try_get_by_index(0))
            .transpose()
            .map_err(db_err)?
            .unwrap_or(0);
        Ok(n as u64)
    }

    /// `(rows not yet relayed, create time in ms of the oldest of them)`, for operator
    /// metrics: the relay deletes rows once the bus has them, so both measure publish lag.
    pub async fn backlog(&self) -> Result<(u64, Option<i64>), Error> {
        let q = Query::select()
            .expr(Expr::col(T::Id).count())
            .expr(Expr::col(T::CreateTime).min())
            .from(T::Table)
            .and_where(Expr::col(T::Service).eq(self.service.as_str()))
            .to_owned();
        let row = self.db.conn().query_one(&q).await.map_err(db_err)?;
        let Some(row) = row else {
            return Ok((0, None));
        };
        let n: i64 = row.try_get_by_index(0).map_err(db_err)?;
        let oldest: Option<i64> = row.try_get_by_index(1).map_err(db_err)?;
        Ok((u64::try_from(n).unwrap_or(0), oldest))
    }
}

#[async_trait]
impl OutboxStore for SqlOutbox {
    async fn fetch_pending(&self, limit: usize) -> Result<Vec<OutboxRecord>, Error> {
        let q = Query::select()
            .columns([T::Id, T::Envelope])
            .from(T::Table)
            .and_where(Expr::col(T::Service).eq(self.service.as_str()))
            .order_by(T::Id, Order::Asc)
            .limit(limit as u64)
            .to_owned();
        let rows = self.db.conn().query_all(&q).await.map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("", "id").map_err(db_err)?;
            let bytes: Vec<u8> = r.try_get("", "envelope").map_err(db_err)?;
            let envelope = EventEnvelope::decode(bytes.as_slice())
                .map_err(|e| Error::internal(format!("corrupt outbox row {id}: {e}")))?;
            out.push(OutboxRecord { id, envelope });
        }
        Ok(out)
    }

    async fn mark_published(&self, ids: &[i64]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let q = Query::delete()
            .from_table(T::Table)
            .and_where(Expr::col(T::Service).eq(self.service.as_str()))
            .and_where(Expr::col(T::Id).is_in(ids.iter().copied()))
            .to_owned();
        // A write like any other: on SQLite it must queue behind the write gate, or it races the
        // service's own transactions for the file lock.
        crate::with_write_tx!(self.db, "outbox_mark_published", |tx| {
            tx.execute(&q).await.map_err(db_err)?;
            Ok(())
        })
    }
}
