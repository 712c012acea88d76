//! Connections and the write-transaction helper.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    TransactionTrait,
};
use steward_common::{Error, ErrorKind};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

/// Reason of an error whose transaction may be re-run (used by [`crate::with_write_tx!`]).
pub const RETRYABLE: &str = "TRANSACTION_CONFLICT";

/// Which database engine is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded mode).
    Sqlite,
    /// PostgreSQL (distributed mode).
    Postgres,
}

/// Connection options.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Max pooled connections.
    pub max_connections: u32,
    /// How long to wait for a new connection / an idle pooled one.
    pub connect_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A pooled database handle shared by a service.
///
/// On SQLite, write transactions are serialized through an in-process gate so writers queue
/// instead of failing with `SQLITE_BUSY`; readers run concurrently (WAL mode).
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
    write_gate: Option<Arc<Mutex<()>>>,
    outbox_notify: OutboxNotify,
    /// The database file (SQLite on disk only), for [`Db::direct_writer`].
    sqlite_file: Option<std::path::PathBuf>,
    /// The WAL checkpointer of that file, stopped with the last clone.
    _checkpointer: Option<Arc<crate::checkpoint::Checkpointer>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Whether an error's text says the server went away or cannot take connections: I/O errors,
/// pool timeouts, Postgres `57P01..57P03` (shutting down, starting up) and class `08`
/// (connection exceptions). A retry after the server is back succeeds.
fn connection_lost(text: &str) -> bool {
    const SIGNS: [&str; 13] = [
        "terminating connection due to administrator command",
        "error communicating with database",
        "pool timed out",
        "attempted to acquire a connection on a closed pool",
        "Connection refused",
        "Connection reset",
        "Broken pipe",
        "unexpected end of file",
        "57P01",
        "57P02",
        "57P03",
        "the database system is shutting down",
        "the database system is starting up",
    ];
    SIGNS.iter().any(|s| text.contains(s))
        || text.contains("SQLSTATE 08")
        || text.contains("code: \"08")
}

/// Maps a database error to a Steward error, logging internals once here.
pub fn db_err(e: DbErr) -> Error {
    let text = e.to_string();
    // Serialization failures and deadlocks (Postgres 40001/40P01), SQLite busy/locked, and
    // unique violations on idempotency keys are transient: the transaction can be re-run.
    let transient = text.contains("40001")
        || text.contains("40P01")
        || text.contains("could not serialize")
        || text.contains("deadlock detected")
        || text.contains("database is locked");
    if transient {
        tracing::warn!(error = %text, "transient database conflict; retrying");
        return Error::new(
            ErrorKind::Aborted,
            RETRYABLE,
            "concurrent update conflict; retry",
        );
    }
    if matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) || connection_lost(&text) {
        tracing::warn!(error = %text, "database unavailable");
        return Error::unavailable(
            "DATABASE_UNAVAILABLE",
            "the database is unavailable; retry later",
        );
    }
    Error::internal(format!("database error: {text}"))
}

/// Most characters of a statement kept on its span.
const MAX_STATEMENT_ON_SPAN: usize = 2000;

/// Records one executed statement as a client span of the current span (see
/// [`steward_telemetry::client_span`]). The SQL has placeholders, never the bound values.
fn trace_statement(backend: Backend, info: &sea_orm::metric::Info<'_>) {
    use steward_telemetry::client_span::{Attribute, Call, CallTimer, Kind, record_in_current};
    if !steward_telemetry::client_span::enabled() {
        return;
    }
    let sql = info.statement.sql.trim();
    let operation = sql
        .split_whitespace()
        .next()
        .unwrap_or("SQL")
        .to_ascii_uppercase();
    let mut statement = sql.to_owned();
    if statement.len() > MAX_STATEMENT_ON_SPAN {
        let mut cut = MAX_STATEMENT_ON_SPAN;
        while !statement.is_char_boundary(cut) {
            cut -= 1;
        }
        statement.truncate(cut);
    }
    let system = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    record_in_current(
        CallTimer::ended_after(info.elapsed),
        Call {
            name: format!("{operation} {system}"),
            kind: Kind::Client,
            attributes: vec![
                Attribute::new("db.system", system),
                Attribute::new("db.operation", operation),
                Attribute::new("db.statement", statement),
            ],
            error: info.failed.then(|| "the statement failed".to_owned()),
        },
    );
}

impl Db {
    /// Connects to `url` (`sqlite://...` or `postgres://...`).
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Db, Error> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut co = ConnectOptions::new(url.to_string());
        // SQLite has one writer at a time; a few reader connections are all two cores can use.
        let max = if backend == Backend::Sqlite {
            opts.max_connections.min(4)
        } else {
            opts.max_connections
        };
        co.max_connections(max)
            .min_connections(0)
            .connect_timeout(opts.connect_timeout)
            .acquire_timeout(opts.connect_timeout)
            .sqlx_logging(false);
        // On a SQLite file, WAL checkpoints run in a thread of their own (started before the
        // pool, so the pool's connections know whether to leave checkpoints to it).
        let sqlite_file = match backend {
            Backend::Sqlite => crate::direct::file_of(url),
            Backend::Postgres => None,
        };
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let checkpointer = match (&sqlite_file, &write_gate) {
            (Some(file), Some(gate)) => {
                crate::checkpoint::Checkpointer::start(file, gate.clone()).map(Arc::new)
            }
            _ => None,
        };
        let autocheckpoint = crate::checkpoint::autocheckpoint(checkpointer.is_some());
        if backend == Backend::Sqlite {
            co.map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    .create_if_missing(true)
                    // LIKE is case-sensitive on both engines; ILIKE is the case-insensitive one.
                    .pragma("case_sensitive_like", "ON")
                    // 16 MiB page cache per connection (the default 2 MiB makes reads of a large
                    // database go to the kernel page by page).
                    .pragma("cache_size", "-16384")
                    .pragma("temp_store", "MEMORY")
                    .pragma("wal_autocheckpoint", autocheckpoint.to_string())
            });
        }
        let mut conn = Database::connect(co).await.map_err(|e| {
            tracing::error!(error = %e, "cannot connect to the database");
            Error::unavailable(
                "DATABASE_UNAVAILABLE",
                format!("cannot connect to the database: {}", short_reason(&e)),
            )
        })?;
        conn.set_metric_callback(move |info| trace_statement(backend, info));
        Ok(Db {
            conn,
            backend,
            write_gate,
            outbox_notify: OutboxNotify::default(),
            sqlite_file,
            _checkpointer: checkpointer,
        })
    }

    /// A write connection of its own for one writer thread (see [`crate::direct`]): `None`
    /// on Postgres and on an in-memory SQLite database, where the pool is the only way in.
    ///
    /// # Errors
    /// `UNAVAILABLE` when the database file cannot be opened.
    pub fn direct_writer(&self) -> Result<Option<crate::direct::DirectWriter>, Error> {
        match (&self.sqlite_file, &self.write_gate) {
            (Some(file), Some(gate)) => crate::direct::DirectWriter::open(
                file,
                gate.clone(),
                self.outbox_notify.clone(),
                crate::checkpoint::autocheckpoint(self._checkpointer.is_some()),
            )
            .map(Some),
            _ => Ok(None),
        }
    }

    /// The engine behind this handle.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for reads.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Notified after each commit that wrote outbox rows of `service` (wakes its relay). Each
    /// service has its own: services sharing one database (`steward up`) wake only their own
    /// relay.
    pub fn outbox_notify(&self, service: &str) -> Arc<Notify> {
        self.outbox_notify.of(service)
    }

    /// Begins a labelled write transaction. Prefer [`crate::with_write_tx!`].
    pub async fn begin_write(&self, label: &'static str) -> Result<WriteTx, Error> {
        let gate = match &self.write_gate {
            Some(g) => Some(g.clone().lock_owned().await),
            None => None,
        };
        let tx = self.conn.begin().await.map_err(db_err)?;
        Ok(WriteTx {
            tx,
            _gate: gate,
            label,
            wrote_outbox: std::sync::Mutex::new(Vec::new()),
            notify: self.outbox_notify.clone(),
            backend: self.backend,
        })
    }

    /// Connection pool usage: `(open connections, idle ones, maximum)`.
    pub fn pool_usage(&self) -> (u32, u32, u32) {
        fn usage<D: sea_orm::sqlx::Database>(p: &sea_orm::sqlx::Pool<D>) -> (u32, u32, u32) {
            (
                p.size(),
                u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
                p.options().get_max_connections(),
            )
        }
        match self.backend {
            Backend::Sqlite => usage(self.conn.get_sqlite_connection_pool()),
            Backend::Postgres => usage(self.conn.get_postgres_connection_pool()),
        }
    }

    /// Writes a consistent snapshot of a SQLite database to the new file `path` (`VACUUM INTO`,
    /// one read transaction: writers may keep committing meanwhile).
    ///
    /// # Errors
    /// `FAILED_PRECONDITION` on Postgres; a database error if `path` exists or cannot be written.
    pub async fn snapshot_sqlite_into(&self, path: &std::path::Path) -> Result<(), Error> {
        if self.backend != Backend::Sqlite {
            return Err(Error::failed_precondition(
                "NOT_SQLITE",
                "only a SQLite database can be snapshotted to a file",
            ));
        }
        let quoted = path.to_string_lossy().replace('\'', "''");
        self.conn
            .execute_unprepared(&format!("VACUUM INTO '{quoted}'"))
            .await
            .map(drop)
            .map_err(db_err)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        self.conn.ping().await.map_err(db_err)
    }

    /// Closes the pool.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

fn short_reason(e: &DbErr) -> String {
    let t = e.to_string();
    // Keep the first line, without any URL (which may carry credentials).
    let line = t.lines().next().unwrap_or("").to_string();
    if line.contains("://") {
        "connection failed".into()
    } else {
        line
    }
}

/// A write transaction. Dereferences to [`DatabaseTransaction`].
pub struct WriteTx {
    tx: DatabaseTransaction,
    _gate: Option<OwnedMutexGuard<()>>,
    label: &'static str,
    /// The relays to wake after the commit (of the services whose outbox rows it wrote).
    wrote_outbox: std::sync::Mutex<Vec<Arc<Notify>>>,
    notify: OutboxNotify,
    backend: Backend,
}

/// One [`Notify`] per service, woken after a commit that wrote that service's outbox rows.
#[derive(Clone, Default)]
pub(crate) struct OutboxNotify(
    Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>>,
);

impl OutboxNotify {
    /// The notify of `service`.
    pub(crate) fn of(&self, service: &str) -> Arc<Notify> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get(service) {
            return n.clone();
        }
        let n = Arc::new(Notify::new());
        map.insert(service.to_owned(), n.clone());
        n
    }

    /// Adds the notify of `service` to `woken` (once).
    pub(crate) fn add_to(&self, woken: &mut Vec<Arc<Notify>>, service: &str) {
        let n = self.of(service);
        if !woken.iter().any(|w| Arc::ptr_eq(w, &n)) {
            woken.push(n);
        }
    }
}

impl WriteTx {
    /// Commits; wakes the outbox relay if events were written.
    pub async fn commit(self) -> Result<(), Error> {
        let started = std::time::Instant::now();
        self.tx.commit().await.map_err(db_err)?;
        tracing::trace!(
            label = self.label,
            elapsed_us = started.elapsed().as_micros() as u64,
            "commit"
        );
        let woken = self
            .wrote_outbox
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        for n in woken {
            n.notify_one();
        }
        Ok(())
    }

    /// Rolls back (errors are logged, not returned: the transaction is abandoned either way).
    pub async fn rollback(self) {
        if let Err(e) = self.tx.rollback().await {
            tracing::warn!(label = self.label, error = %e, "rollback failed");
        }
    }

    /// Marks that this transaction wrote outbox rows of `service`.
    pub(crate) fn mark_outbox(&self, service: &str) {
        let mut woken = self.wrote_outbox.lock().unwrap_or_else(|p| p.into_inner());
        self.notify.add_to(&mut woken, service);
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl std::ops::Deref for WriteTx {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

/// Executes a sea-query statement on any connection.
pub async fn exec<C: ConnectionTrait, S: sea_orm::StatementBuilder + Sync>(
    c: &C,
    stmt: &S,
) -> Result<sea_orm::ExecResult, Error> {
    c.execute(stmt).await.map_err(db_err)
}
