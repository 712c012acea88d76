//! WAL checkpoints of a SQLite database file, off the writers' path.
//!
//! By default SQLite checkpoints inside the commit that grows the write-ahead log past 1,000
//! pages: that commit copies the log into the database file before it returns, holding the
//! process's write gate, so every writer queued behind it waits (under Route load on the
//! reference machine, 1 commit in 90 took 2.6-3.5 ms instead of 25 µs, and a request whose
//! decision waited for it missed the 2 ms p99).
//!
//! Here a thread with its own connection runs a passive checkpoint every [`INTERVAL`]; it
//! copies what is in the log while writers go on appending. A log only starts over (and stops
//! growing) when a writer finds it completely copied, which continuous writes never allow (a
//! pass copies what the log held when it began, while writers add more); so once the log
//! holds [`COMPLETE_AT`] pages the thread repeats its pass until few pages were added during
//! the last one, then takes the write gate and copies those, and the next commit starts the
//! log over. Writers wait only for that last short copy. Commits
//! still checkpoint by themselves past [`FALLBACK_PAGES`] (if this thread stopped, the log
//! stays bounded).
//!
//! Durability is unchanged: a checkpoint syncs the log before copying and the database file
//! after (`synchronous = NORMAL`), whichever connection runs it.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Mutex;

/// How often the checkpointer copies the log into the database file.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// Log size (pages) from which a pass ends with a copy under the write gate, so the log
/// starts over.
pub const COMPLETE_AT: i64 = 4096;

/// Passes after the first of a long log, at most, before the one under the gate.
const MAX_CATCH_UP: usize = 3;

/// Pages the pass under the gate may have to copy (writers wait for it), at most, when the
/// passes before it keep up.
const STALL_PAGES: i64 = 256;

/// `wal_autocheckpoint` of every connection: commits checkpoint by themselves only past this
/// many log pages (SQLite's default is 1,000).
pub const FALLBACK_PAGES: i64 = 16_384;

/// Stops the checkpointer thread when dropped (with the last clone of its [`crate::Db`]).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    _stop: Sender<()>,
}

/// The outcome of one `PRAGMA wal_checkpoint(PASSIVE)`: pages in the log, pages copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    pub log: i64,
    pub copied: i64,
}

impl Checkpointer {
    /// Starts the thread on `file`, serializing its completing copies with the writers of
    /// `gate`. `None` (commits keep checkpointing by themselves) if it cannot start.
    pub(crate) fn start(file: &Path, gate: Arc<Mutex<()>>) -> Option<Self> {
        let conn = match open(file) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, file = %file.display(), "no WAL checkpointer; commits checkpoint by themselves");
                return None;
            }
        };
        let (stop, stopped) = channel();
        let started = std::thread::Builder::new()
            .name("wal-checkpointer".into())
            .spawn(move || run(&conn, &gate, &stopped, INTERVAL));
        match started {
            Ok(_) => Some(Self { _stop: stop }),
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpointer thread not started; commits checkpoint by themselves");
                None
            }
        }
    }
}

fn open(file: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = {FALLBACK_PAGES};"
    ))?;
    Ok(c)
}

/// One passive checkpoint.
pub(crate) fn pass(conn: &Connection) -> rusqlite::Result<Pass> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(Pass {
            log: r.get(1)?,
            copied: r.get(2)?,
        })
    })
}

/// A pass; if the log is long, passes until few pages were added during the last one (each
/// copies what was written during the previous), then one under the write gate, after which
/// everything is copied and the next commit starts the log over.
pub(crate) fn round(conn: &Connection, gate: &Mutex<()>) -> rusqlite::Result<Pass> {
    let mut last = pass(conn)?;
    if last.log < COMPLETE_AT {
        return Ok(last);
    }
    for _ in 0..MAX_CATCH_UP {
        let next = pass(conn)?;
        if next.log < last.log {
            // A commit found the log all copied and started it over.
            return Ok(next);
        }
        let added = next.log - last.log;
        last = next;
        if added <= STALL_PAGES {
            break;
        }
    }
    let _writers_wait = gate.blocking_lock();
    pass(conn)
}

fn run(conn: &Connection, gate: &Mutex<()>, stop: &Receiver<()>, every: Duration) {
    let mut failing = false;
    loop {
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            // The database handle is gone.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        match round(conn, gate) {
            Ok(_) => failing = false,
            Err(e) if !failing => {
                // Logged once per spell of failures; commits checkpoint past the fallback.
                tracing::warn!(error = %e, "WAL checkpoint failed");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_db(dir: &Path) -> Connection {
        let c = Connection::open(dir.join("t.db")).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
             CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);",
        )
        .unwrap();
        c
    }

    fn insert(c: &Connection, rows: usize) {
        let tx = c.unchecked_transaction().unwrap();
        for _ in 0..rows {
            tx.execute("INSERT INTO t (v) VALUES (zeroblob(3000))", [])
                .unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn a_pass_copies_the_log_and_the_next_commit_starts_it_over() {
        let dir = tempfile::tempdir().unwrap();
        let writer = wal_db(dir.path());
        insert(&writer, 100);
        let cp = open(&dir.path().join("t.db")).unwrap();
        let p = pass(&cp).unwrap();
        assert!(p.log >= 100, "{p:?}");
        assert_eq!(p.copied, p.log);
        insert(&writer, 1);
        let after = pass(&cp).unwrap();
        assert!(after.log < 10, "the log started over: {after:?}");
    }

    #[test]
    fn a_long_log_is_completed_under_the_gate_and_a_short_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let writer = wal_db(dir.path());
        // Past COMPLETE_AT pages (one row of 3,000 bytes takes a page).
        insert(&writer, COMPLETE_AT as usize + 100);
        let gate = Arc::new(Mutex::new(()));
        let held = gate.clone().try_lock_owned().unwrap();
        let (done, result) = std::sync::mpsc::channel();
        let (go, next) = std::sync::mpsc::channel::<()>();
        let (cp, g) = (open(&dir.path().join("t.db")).unwrap(), gate.clone());
        let worker = std::thread::spawn(move || {
            done.send(round(&cp, &g).unwrap()).unwrap();
            // Then a short log: the round must not wait for the gate.
            next.recv().unwrap();
            done.send(round(&cp, &g).unwrap()).unwrap();
        });
        // However much its passes copied, the round ends under the writers' gate.
        assert!(
            result.recv_timeout(Duration::from_millis(300)).is_err(),
            "a long log is completed under the gate"
        );
        drop(held);
        let completed = result.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(completed.copied, completed.log, "{completed:?}");
        insert(&writer, 1);
        let _held_again = gate.clone().try_lock_owned().unwrap();
        go.send(()).unwrap();
        let short = result
            .recv_timeout(Duration::from_secs(10))
            .expect("a short log does not wait for the gate");
        assert!(short.log < COMPLETE_AT, "the log started over: {short:?}");
        worker.join().unwrap();
    }

    #[test]
    fn the_thread_copies_the_log_while_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let writer = wal_db(dir.path());
        insert(&writer, 50);
        let before = std::fs::metadata(&file).unwrap().len();
        let cp = Checkpointer::start(&file, Arc::new(Mutex::new(()))).expect("started");
        // The writer never checkpoints (wal_autocheckpoint = 0): the database file grows only
        // by the thread's copies.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&file).unwrap().len() < before + 50 * 3000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was never copied"
            );
            insert(&writer, 1);
            std::thread::sleep(INTERVAL);
        }
        drop(cp);
    }
}
