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
//! the last one, then takes the write gate and copies those, so the next commit can start the
//! log over. Writers wait only for that last copy (and its two syncs). A reader that still
//! uses the log can keep it from starting over; the next round tries again (each try holds
//! the gate for the pages of one pass and two syncs). Commits still checkpoint by themselves
//! past [`FALLBACK_PAGES`] (the log stays bounded if this thread falls behind or stops).
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

/// Passes after the first of a long log, at most, waiting for one that few pages were added
/// during.
const MAX_CATCH_UP: usize = 3;

/// Pages added during a pass after which the copy under the gate follows at once (writers wait
/// for that copy: these pages and two syncs, of the log and of the database file).
const STALL_PAGES: i64 = 256;

/// `wal_autocheckpoint` of every connection to a file the checkpointer thread runs on:
/// commits checkpoint by themselves only past this many log pages (SQLite's default is
/// 1,000, kept when the thread could not start).
pub const FALLBACK_PAGES: i64 = 16_384;

/// The `wal_autocheckpoint` of a connection: [`FALLBACK_PAGES`] when a checkpointer thread
/// runs on its file, else SQLite's default (1,000).
pub(crate) fn autocheckpoint(thread_runs: bool) -> i64 {
    if thread_runs { FALLBACK_PAGES } else { 1000 }
}

/// Stops the checkpointer thread when dropped (with the last clone of its [`crate::Db`]).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    _stop: Sender<()>,
}

/// The outcome of one `PRAGMA wal_checkpoint(PASSIVE)`: whether another connection was
/// checkpointing (then nothing was done and the counts are -1), pages in the log, pages copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    pub busy: bool,
    pub log: i64,
    pub copied: i64,
}

/// When a round copies under the write gate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Log pages from which a round tries to complete the copy.
    pub complete_at: i64,
    /// Pages added during a pass after which the gated copy follows at once.
    pub stall_pages: i64,
    /// Passes after the first, at most, before the gated copy.
    pub catch_up: usize,
}

/// The limits of the checkpointer thread.
pub(crate) const LIMITS: Limits = Limits {
    complete_at: COMPLETE_AT,
    stall_pages: STALL_PAGES,
    catch_up: MAX_CATCH_UP,
};

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
    // Created if missing: the thread starts before the pool, which makes it a WAL database.
    let c = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = {FALLBACK_PAGES};"
    ))?;
    Ok(c)
}

/// One passive checkpoint.
pub(crate) fn pass(conn: &Connection) -> rusqlite::Result<Pass> {
    let run = || {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok(Pass {
                busy: r.get::<_, i64>(0)? != 0,
                log: r.get(1)?,
                copied: r.get(2)?,
            })
        })
    };
    let p = run()?;
    if p.busy || p.log >= 0 {
        return Ok(p);
    }
    // No log as far as this connection knows: it opened the file before it became a WAL
    // database (the thread starts before the pool) and has not read it since, and a checkpoint
    // alone does not look. A read does; then checkpoint again.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    run()
}

/// A pass; if the log holds `complete_at` pages or more, passes until one that at most
/// `limits.stall_pages` were added during (each copies what was written during the previous;
/// at most `limits.catch_up` of them), then one under the write gate: everything is copied,
/// and unless a reader still uses the log the next commit starts it over. Writers wait for
/// that last copy: the pages added during the pass before it, and two syncs. Returns the last pass and whether it ran under the gate.
pub(crate) fn round(
    conn: &Connection,
    gate: &Mutex<()>,
    limits: &Limits,
    complete_at: i64,
) -> rusqlite::Result<(Pass, bool)> {
    let mut last = pass(conn)?;
    if last.busy || last.log < complete_at {
        return Ok((last, false));
    }
    for _ in 0..limits.catch_up {
        let next = pass(conn)?;
        // Busy: another connection is checkpointing. Shorter: a commit found the log all
        // copied and started it over.
        if next.busy || next.log < last.log {
            return Ok((next, false));
        }
        let added = next.log - last.log;
        last = next;
        if added <= limits.stall_pages {
            break;
        }
    }
    let _writers_wait = gate.blocking_lock();
    pass(conn).map(|p| (p, true))
}

fn run(conn: &Connection, gate: &Mutex<()>, stop: &Receiver<()>, every: Duration) {
    let mut failing = false;
    loop {
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            // The database handle is gone.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        match round(conn, gate, &LIMITS, LIMITS.complete_at) {
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

    /// Small limits, so a test log is long after a few dozen pages.
    const SMALL: Limits = Limits {
        complete_at: 64,
        stall_pages: 16,
        catch_up: 3,
    };

    #[test]
    fn a_long_log_is_completed_under_the_gate_and_a_short_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let writer = wal_db(dir.path());
        // Past SMALL.complete_at pages (one row of 3,000 bytes takes a page).
        insert(&writer, 100);

        let gate = Arc::new(Mutex::new(()));
        let held = gate.clone().try_lock_owned().unwrap();
        let (done, result) = std::sync::mpsc::channel();
        let (go, next) = std::sync::mpsc::channel::<()>();
        let (cp, g) = (open(&dir.path().join("t.db")).unwrap(), gate.clone());
        let worker = std::thread::spawn(move || {
            done.send(round(&cp, &g, &SMALL, SMALL.complete_at).unwrap())
                .unwrap();
            // Then a short log: the round must not wait for the gate.
            next.recv().unwrap();
            done.send(round(&cp, &g, &SMALL, SMALL.complete_at).unwrap())
                .unwrap();
        });
        // Its passes over ~100 pages take milliseconds; then it waits for the writers' gate.
        assert!(
            result.recv_timeout(Duration::from_millis(500)).is_err(),
            "a long log is completed under the gate"
        );
        drop(held);
        let (completed, gated) = result.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(gated);
        assert_eq!(completed.copied, completed.log, "{completed:?}");
        insert(&writer, 1);
        let _held_again = gate.clone().try_lock_owned().unwrap();
        go.send(()).unwrap();
        let (short, gated) = result
            .recv_timeout(Duration::from_secs(10))
            .expect("a short log does not wait for the gate");
        assert!(!gated);
        assert!(
            short.log < SMALL.complete_at,
            "the log started over: {short:?}"
        );
        worker.join().unwrap();
    }

    /// Waits (up to 10 s, writing a row per [`INTERVAL`]) until the database file holds
    /// `bytes`: only copies of the log make it grow (the writer never checkpoints).
    fn copied_within_seconds(file: &Path, writer: &Connection, bytes: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(file).unwrap().len() < bytes {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was never copied"
            );
            insert(writer, 1);
            std::thread::sleep(INTERVAL);
        }
    }

    #[test]
    fn a_thread_started_before_the_file_existed_copies_its_log() {
        // As in `Db::connect`: the thread first (creating the file), then the pool makes it
        // a WAL database.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let cp = Checkpointer::start(&file, Arc::new(Mutex::new(()))).expect("started");
        let writer = wal_db(dir.path());
        insert(&writer, 50);
        let before = std::fs::metadata(&file).unwrap().len();
        copied_within_seconds(&file, &writer, before + 50 * 3000);
        drop(cp);
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
        copied_within_seconds(&file, &writer, before + 50 * 3000);
        drop(cp);
    }
}
