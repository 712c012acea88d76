//! A SQLite write connection owned by one thread, for group-commit writers on the embedded
//! backend.
//!
//! The pool runs each statement on its connection's worker thread, so a transaction of four
//! statements is eight hand-offs between threads, each a wake-up. For a writer that commits a
//! batch per transaction on a busy server those hand-offs cost more than the writes (a
//! profile of the decision writer showed most of its time in them). A [`DirectWriter`] is a
//! connection of its own that the writer's thread drives directly: a batch is one
//! `BEGIN IMMEDIATE ... COMMIT` with cached prepared statements, in that thread.
//!
//! It takes the same in-process write gate as [`crate::Db::begin_write`], so it never races
//! the pool's writers for SQLite's lock, uses the pool's durability settings (WAL,
//! `synchronous = NORMAL`), and wakes the outbox relay after a commit that wrote outbox rows,
//! as [`crate::WriteTx::commit`] does. Only for SQLite files: see [`crate::Db::direct_writer`].

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{CachedStatement, Connection, ErrorCode, OpenFlags, TransactionBehavior};
use steward_common::{Error, ErrorKind};
use tokio::sync::{Mutex, Notify};

use crate::db::OutboxNotify;

/// A write connection owned by one thread. Its methods block: call them from that thread,
/// never from an async task.
pub struct DirectWriter {
    conn: Connection,
    gate: Arc<Mutex<()>>,
    notify: OutboxNotify,
}

impl std::fmt::Debug for DirectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectWriter")
            .field("file", &self.conn.path())
            .finish()
    }
}

/// The transaction of one [`DirectWriter::write`].
pub struct DirectTx<'a> {
    tx: rusqlite::Transaction<'a>,
    notify: &'a OutboxNotify,
    /// The relays to wake after the commit.
    wrote_outbox: Vec<Arc<Notify>>,
}

impl DirectTx<'_> {
    /// A prepared statement, cached on the connection for the next transactions.
    ///
    /// # Errors
    /// A database error when `sql` does not compile.
    pub fn prepare_cached(&self, sql: &str) -> Result<CachedStatement<'_>, Error> {
        self.tx.prepare_cached(sql).map_err(sqlite_err)
    }

    /// Notes that the transaction wrote outbox rows of `service` (its relay is woken after
    /// the commit).
    pub fn mark_outbox(&mut self, service: &str) {
        self.notify.add_to(&mut self.wrote_outbox, service);
    }
}

impl DirectWriter {
    pub(crate) fn open(
        file: &Path,
        gate: Arc<Mutex<()>>,
        notify: OutboxNotify,
        autocheckpoint: i64,
    ) -> Result<Self, Error> {
        let conn = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            c.busy_timeout(Duration::from_secs(30))?;
            // The pool's settings (see `Db::connect`); `synchronous` is per connection.
            c.execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON; \
                 PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384; \
                 PRAGMA wal_autocheckpoint = {autocheckpoint};"
            ))?;
            c.set_prepared_statement_cache_capacity(32);
            Ok(c)
        })
        .map_err(|e| {
            tracing::error!(error = %e, file = %file.display(), "cannot open a write connection");
            Error::unavailable(
                "DATABASE_UNAVAILABLE",
                format!("cannot open a write connection to the database: {e}"),
            )
        })?;
        Ok(Self { conn, gate, notify })
    }

    /// Runs `f` in one transaction and commits it, holding the process's write gate
    /// throughout; like [`crate::with_write_tx!`], a transient conflict (another process
    /// holding the database locked) runs `f` again, up to three attempts. When `f` or the
    /// commit fails nothing of `f` is kept.
    ///
    /// # Errors
    /// `f`'s error; `ABORTED` (`RETRYABLE`) when the database stayed locked by another
    /// process; a database error otherwise.
    ///
    /// # Panics
    /// When called from an async task (it blocks).
    pub fn write<T>(
        &mut self,
        mut f: impl FnMut(&mut DirectTx<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.write_once(&mut f) {
                Err(e)
                    if e.kind == ErrorKind::Aborted
                        && e.reason == crate::db::RETRYABLE
                        && attempt < 3 =>
                {
                    std::thread::sleep(crate::retry_delay(attempt));
                }
                other => return other,
            }
        }
    }

    fn write_once<T>(
        &mut self,
        f: &mut impl FnMut(&mut DirectTx<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let gate = self.gate.blocking_lock();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_err)?;
        let mut dtx = DirectTx {
            tx,
            notify: &self.notify,
            wrote_outbox: Vec::new(),
        };
        // On an error the transaction is dropped, which rolls it back.
        let value = f(&mut dtx)?;
        let DirectTx {
            tx, wrote_outbox, ..
        } = dtx;
        tx.commit().map_err(sqlite_err)?;
        drop(gate);
        for n in wrote_outbox {
            n.notify_one();
        }
        Ok(value)
    }
}

/// Maps a SQLite error like [`crate::db_err`] does the pool's: busy or locked is a retryable
/// conflict, everything else an internal database error.
pub fn sqlite_err(e: rusqlite::Error) -> Error {
    if let Some(code) = e.sqlite_error_code()
        && matches!(code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    {
        tracing::warn!(error = %e, "transient database conflict; retrying");
        return Error::new(
            ErrorKind::Aborted,
            crate::db::RETRYABLE,
            "concurrent update conflict; retry",
        );
    }
    Error::internal(format!("database error: {e}"))
}

/// The file of a `sqlite:` URL, or `None` for an in-memory database.
pub(crate) fn file_of(url: &str) -> Option<PathBuf> {
    let opts = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let file = opts.get_filename();
    let name = file.to_str()?;
    if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
        return None;
    }
    Some(file.to_path_buf())
}

#[cfg(test)]
mod tests {
    use sea_orm::ConnectionTrait as _;

    use super::*;
    use crate::{Db, DbOptions};

    #[test]
    fn only_files_get_a_direct_writer() {
        assert_eq!(
            file_of("sqlite:///tmp/x/steward.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x/steward.db"))
        );
        assert_eq!(file_of("sqlite::memory:"), None);
        assert_eq!(file_of("sqlite://:memory:"), None);
    }

    async fn file_db(dir: &tempfile::TempDir) -> Db {
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
        db.conn()
            .execute_unprepared("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
            .await
            .unwrap();
        db
    }

    async fn rows(db: &Db) -> Vec<(String, i64)> {
        let stmt = sea_orm::Statement::from_string(
            db.conn().get_database_backend(),
            "SELECT k, v FROM t ORDER BY k",
        );
        db.conn()
            .query_all_raw(stmt)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.try_get("", "k").unwrap(), r.try_get("", "v").unwrap()))
            .collect()
    }

    /// Runs `f` with the direct writer of `db` on a thread of its own.
    async fn on_thread<T: Send + 'static>(
        db: &Db,
        f: impl FnOnce(&mut DirectWriter) -> T + Send + 'static,
    ) -> T {
        let mut w = db.direct_writer().unwrap().expect("a file database");
        tokio::task::spawn_blocking(move || f(&mut w))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn commits_are_seen_by_the_pool_and_failures_keep_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir).await;
        let notified = db.outbox_notify("svc");
        let wake = notified.notified();
        let other = db.outbox_notify("other");
        let not_woken = other.notified();
        on_thread(&db, |w| {
            w.write(|tx| {
                let mut s = tx.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")?;
                s.execute(rusqlite::params!["a", 1]).map_err(sqlite_err)?;
                s.execute(rusqlite::params!["b", 2]).map_err(sqlite_err)?;
                drop(s);
                tx.mark_outbox("svc");
                Ok(())
            })
            .unwrap();
        })
        .await;
        assert_eq!(rows(&db).await, [("a".into(), 1), ("b".into(), 2)]);
        // The other service first: with one notification shared by all, it would take the
        // wake-up meant for "svc".
        assert!(
            tokio::time::timeout(Duration::from_millis(100), not_woken)
                .await
                .is_err(),
            "the relay of a service that wrote nothing was woken"
        );
        tokio::time::timeout(Duration::from_secs(5), wake)
            .await
            .expect("a commit that wrote outbox rows wakes the relay");

        // A failing body, and a failing statement after a good one: nothing of either stays.
        let (body, statement) = on_thread(&db, |w| {
            let body = w.write(|tx| {
                tx.prepare_cached("INSERT INTO t (k, v) VALUES ('c', 3)")?
                    .execute([])
                    .map_err(sqlite_err)?;
                Err::<(), _>(Error::failed_precondition("GAVE_UP", "the body gave up"))
            });
            let statement = w.write(|tx| {
                tx.prepare_cached("INSERT INTO t (k, v) VALUES ('d', 4)")?
                    .execute([])
                    .map_err(sqlite_err)?;
                tx.prepare_cached("INSERT INTO t (k, v) VALUES ('a', 5)")?
                    .execute([])
                    .map_err(sqlite_err)?;
                Ok(())
            });
            (body, statement)
        })
        .await;
        assert_eq!(body.unwrap_err().reason, "GAVE_UP");
        // The duplicate key: a database error (its text goes to the server log only).
        assert_eq!(statement.unwrap_err().kind, ErrorKind::Internal);
        assert_eq!(rows(&db).await, [("a".into(), 1), ("b".into(), 2)]);
    }

    #[tokio::test]
    async fn waits_for_the_pools_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir).await;
        let tx = db.begin_write("test").await.unwrap();
        let (done_tx, mut done) = tokio::sync::oneshot::channel();
        let mut w = db.direct_writer().unwrap().unwrap();
        std::thread::spawn(move || {
            let r = w.write(|tx| {
                tx.prepare_cached("INSERT INTO t (k, v) VALUES ('x', 1)")?
                    .execute([])
                    .map_err(sqlite_err)
            });
            let _ = done_tx.send(r);
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            done.try_recv().is_err(),
            "the direct writer went ahead while the pool held the write gate"
        );
        tx.commit().await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), done)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.unwrap(), 1);
        assert_eq!(rows(&db).await, [("x".into(), 1)]);
    }

    #[tokio::test]
    async fn none_in_memory() {
        let db = Db::connect("sqlite::memory:", &DbOptions::default())
            .await
            .unwrap();
        assert!(db.direct_writer().unwrap().is_none());
    }
}
