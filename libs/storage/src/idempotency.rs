//! Idempotency records: a mutation that carries a `request_id` stores its response in the same
//! transaction as its change; a retry with the same id returns that response and writes nothing.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sha2::{Digest, Sha256};
use steward_common::{Error, ErrorKind};

use crate::db::{RETRYABLE, WriteTx, db_err};
use crate::schema::IdempotencyRecords as T;

/// Max length of a `request_id`.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Identifies one idempotent request.
#[derive(Debug, Clone)]
pub struct IdemKey {
    /// Service that owns the record (`tracking`, ...).
    pub service: &'static str,
    /// The caller's `request_id`.
    pub request_id: String,
    /// The RPC method name, e.g. `CreateRun`.
    pub method: &'static str,
    /// Hex sha256 of the canonical request, to detect a reused id with a different request.
    pub request_hash: String,
}

impl IdemKey {
    /// Builds a key when `request_id` is non-empty, validating it; `canonical` is a stable
    /// encoding of the validated request (used to detect reuse with different content).
    pub fn new(
        service: &'static str,
        method: &'static str,
        request_id: &str,
        canonical: &[u8],
    ) -> Result<Option<IdemKey>, Error> {
        if request_id.is_empty() {
            return Ok(None);
        }
        if request_id.len() > MAX_REQUEST_ID_LEN
            || !request_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid_field(
                "request_id",
                format!(
                    "must be 1-{MAX_REQUEST_ID_LEN} printable ASCII characters (a UUID is ideal)"
                ),
            ));
        }
        Ok(Some(IdemKey {
            service,
            request_id: request_id.to_string(),
            method,
            request_hash: hex::encode(Sha256::digest(canonical)),
        }))
    }
}

/// Looks up a stored response. A record with the same id but another method or request is
/// `FAILED_PRECONDITION` (`REQUEST_ID_REUSED`).
pub async fn lookup(tx: &WriteTx, key: &IdemKey) -> Result<Option<Vec<u8>>, Error> {
    peek(&**tx, key).await
}

/// [`lookup`] outside a write transaction (any connection): a cheap early check for a retry
/// before doing work that a replay would make unnecessary. The write transaction still looks
/// again.
pub async fn peek<C: ConnectionTrait>(c: &C, key: &IdemKey) -> Result<Option<Vec<u8>>, Error> {
    let q = Query::select()
        .columns([T::Method, T::RequestHash, T::Response])
        .from(T::Table)
        .and_where(Expr::col(T::Service).eq(key.service))
        .and_where(Expr::col(T::RequestId).eq(key.request_id.as_str()))
        .to_owned();
    let Some(row) = c.query_one(&q).await.map_err(db_err)? else {
        return Ok(None);
    };
    let method: String = row.try_get("", "method").map_err(db_err)?;
    let hash: String = row.try_get("", "request_hash").map_err(db_err)?;
    if method != key.method || hash != key.request_hash {
        return Err(reused());
    }
    Ok(Some(row.try_get("", "response").map_err(db_err)?))
}

fn reused() -> Error {
    Error::failed_precondition(
        "REQUEST_ID_REUSED",
        "request_id was already used for a different request; use a new request_id",
    )
    .with_violation("request_id", "already used for a different request")
}

/// Stores the response of a request in the current transaction. A concurrent insert of the
/// same key surfaces as a retryable conflict, so the retried transaction finds the record.
pub async fn record(tx: &WriteTx, key: &IdemKey, response: &[u8]) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(T::Table)
        .columns([
            T::Service,
            T::RequestId,
            T::Method,
            T::RequestHash,
            T::Response,
            T::CreateTime,
        ])
        .values_panic([
            key.service.into(),
            key.request_id.as_str().into(),
            key.method.into(),
            key.request_hash.as_str().into(),
            Expr::val(response.to_vec()),
            steward_common::time::now_ms().into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::new(
            ErrorKind::Aborted,
            RETRYABLE,
            "concurrent request with the same request_id",
        )),
        Err(e) => Err(db_err(e)),
    }
}

/// [`record`] for several requests with one multi-row insert.
pub async fn record_many(tx: &WriteTx, records: &[(&IdemKey, Vec<u8>)]) -> Result<(), Error> {
    let now = steward_common::time::now_ms();
    for chunk in crate::rows::pow2_chunks(records, 256) {
        let mut q = Query::insert()
            .into_table(T::Table)
            .columns([
                T::Service,
                T::RequestId,
                T::Method,
                T::RequestHash,
                T::Response,
                T::CreateTime,
            ])
            .to_owned();
        for (key, response) in chunk {
            q.values_panic([
                key.service.into(),
                key.request_id.as_str().into(),
                key.method.into(),
                key.request_hash.as_str().into(),
                Expr::val(response.clone()),
                now.into(),
            ]);
        }
        match tx.execute(&q).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::new(
                    ErrorKind::Aborted,
                    RETRYABLE,
                    "concurrent request with the same request_id",
                ));
            }
            Err(e) => return Err(db_err(e)),
        }
    }
    Ok(())
}

/// True for a unique-constraint violation on either engine.
pub fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    let t = e.to_string();
    t.contains("UNIQUE constraint failed")
        || t.contains("duplicate key value")
        || t.contains("23505")
}
