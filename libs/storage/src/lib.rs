//! Steward's storage layer: the one shared schema (sea-orm migrations, SQLite and PostgreSQL),
//! connection setup, the write-transaction helper, idempotency records, the transactional outbox
//! and the hash-chained audit log.
//!
//! Every service writes through [`Db::begin_write`]; shared infrastructure rows (idempotency,
//! outbox, audit) are written in the same transaction as the domain change.

pub mod audit;
pub mod checkpoint;
pub mod db;
pub mod direct;
pub mod filter_sql;
pub mod idempotency;
pub mod migrate;
pub mod ops;
pub mod outbox;
pub mod rows;
pub mod schema;
pub mod testing;

pub use db::{Backend, Db, DbOptions, WriteTx, db_err};
pub use sea_orm;

/// Runs `$body` in a write transaction labelled `$label`, committing on `Ok` and rolling back on
/// `Err`; evaluates to the body's `Result`. Transient conflicts (serialization failures, deadlocks, a concurrent insert of the same
/// idempotency key) are retried up to 3 times with the whole body re-run.
///
/// ```text
/// let run = with_write_tx!(db, "create_run", |tx| { store::insert_run(&tx, &run).await?; Ok(run) })?;
/// ```
#[macro_export]
macro_rules! with_write_tx {
    ($db:expr, $label:expr, |$tx:ident| $body:block) => {{
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let $tx = match $db.begin_write($label).await {
                Ok(tx) => tx,
                Err(e) => break Err(e),
            };
            let result: $crate::__Result<_> = async { $body }.await;
            match result {
                Ok(value) => match $tx.commit().await {
                    Ok(()) => break Ok(value),
                    Err(e) if e.kind == $crate::__ErrorKind::Aborted && attempt < 3 => {
                        $crate::__backoff(attempt).await;
                        continue;
                    }
                    Err(e) => break Err(e),
                },
                Err(e) => {
                    $tx.rollback().await;
                    if e.kind == $crate::__ErrorKind::Aborted
                        && e.reason == $crate::db::RETRYABLE
                        && attempt < 3
                    {
                        continue;
                    }
                    break Err(e);
                }
            }
        }
    }};
}

/// Defines a service's `audit` and `emit` (its audit chain and its outbox, named by `$service`)
/// in the calling module, with the signatures every app layer uses:
///
/// ```text
/// steward_storage::service_ops!(SERVICE);
/// audit(&tx, ctx, "tracking.runs.create", run_name, request_id, None::<&()>, Some(&run)).await?;
/// emit(&tx, ctx, "tracking.run.created", run_name, payload).await?;
/// ```
#[macro_export]
macro_rules! service_ops {
    ($service:expr) => {
        /// Appends an audit record to this service's chain, in `tx`.
        #[allow(clippy::too_many_arguments)]
        pub(crate) async fn audit<B: $crate::__serde::Serialize, A: $crate::__serde::Serialize>(
            tx: &$crate::WriteTx,
            ctx: &$crate::ops::Ctx,
            action: &'static str,
            resource: String,
            request_id: &str,
            before: Option<&B>,
            after: Option<&A>,
        ) -> $crate::__Result<()> {
            $crate::ops::audit(
                tx, $service, ctx, action, resource, request_id, before, after,
            )
            .await
        }

        /// Writes an event of this service to the outbox, in `tx`.
        pub(crate) async fn emit(
            tx: &$crate::WriteTx,
            ctx: &$crate::ops::Ctx,
            kind: &str,
            source: String,
            payload: $crate::__Payload,
        ) -> $crate::__Result<()> {
            $crate::ops::emit(tx, $service, ctx, kind, source, payload).await
        }
    };
}

#[doc(hidden)]
pub use serde as __serde;
#[doc(hidden)]
pub use steward_proto::events::event_envelope::Payload as __Payload;

#[doc(hidden)]
pub use steward_common::ErrorKind as __ErrorKind;
#[doc(hidden)]
pub type __Result<T> = steward_common::Result<T>;

#[doc(hidden)]
pub async fn __backoff(attempt: u32) {
    tokio::time::sleep(retry_delay(attempt)).await;
}

/// The wait before retrying a transaction after its `attempt`-th conflict: 5, 10, 20 ms with
/// jitter, enough for a competing transaction to finish.
pub(crate) fn retry_delay(attempt: u32) -> std::time::Duration {
    let base = 5u64 << attempt.min(4);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % base.max(1);
    std::time::Duration::from_millis(base + jitter)
}
