//! Applying migrations, safely when several replicas start at once.
//!
//! On PostgreSQL the migrations run inside one transaction holding a transaction-scoped advisory
//! lock, so concurrent starters queue and the later ones find nothing to do. On SQLite (one
//! process) they run under the write gate.

use sea_orm::ConnectionTrait;
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use steward_common::Error;

use crate::db::{Backend, Db, db_err};

/// Advisory lock key of schema migrations ("steward" in ASCII).
const MIGRATION_LOCK_KEY: i64 = i64::from_be_bytes(*b"\0steward");

/// The list of migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(crate::schema::M0001Init),
            Box::new(crate::schema::M0002Registry),
            Box::new(crate::schema::M0003Deployment),
            Box::new(crate::schema::M0004Monitoring),
            Box::new(crate::schema::M0005Datasets),
            Box::new(crate::schema::M0006Auth),
        ]
    }

    fn migration_table_name() -> sea_orm::DynIden {
        sea_orm::sea_query::Alias::new("steward_migrations").into_iden()
    }
}

use sea_orm::sea_query::IntoIden;

/// Applies all pending migrations. Transient lock conflicts (another process migrating the same
/// SQLite file) are retried for a few seconds.
pub async fn run(db: &Db) -> Result<(), Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match run_once(db).await {
            Err(e) if e.reason == crate::db::RETRYABLE && attempt < 20 => {
                crate::__backoff(attempt).await
            }
            other => return other,
        }
    }
}

async fn run_once(db: &Db) -> Result<(), Error> {
    let tx = db.begin_write("migrate").await?;
    if db.backend() == Backend::Postgres {
        tx.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ))
        .await
        .map_err(db_err)?;
    }
    Migrator::up(&*tx, None).await.map_err(db_err)?;
    tx.commit().await?;
    Ok(())
}

/// Names of every migration this binary knows, in order.
pub fn known() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect()
}

/// Names of the applied migrations (for `steward migrate` output and tests).
pub async fn applied(db: &Db) -> Result<Vec<String>, Error> {
    let rows = Migrator::get_applied_migrations(db.conn())
        .await
        .map_err(db_err)?;
    Ok(rows.iter().map(|m| m.name().to_string()).collect())
}

/// Checks that every migration this binary knows is applied (for `--no-migrate` start-ups), so a
/// replica never serves on an old schema. `FAILED_PRECONDITION` says what to run.
pub async fn ensure_current(db: &Db) -> Result<(), Error> {
    let applied = Migrator::get_pending_migrations(db.conn())
        .await
        .map_err(db_err)?;
    if applied.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = applied.iter().map(|m| m.name().to_string()).collect();
    Err(Error::failed_precondition(
        "SCHEMA_OUT_OF_DATE",
        format!(
            "the database schema is missing migrations {}; run `steward migrate` (or start without --no-migrate)",
            names.join(", ")
        ),
    ))
}
