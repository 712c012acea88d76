//! The server under test: the `steward` binary beside this executable, started as a child
//! process on a temporary data dir (and, for Postgres, a fresh database), waited for until
//! gRPC health says SERVING, its RSS sampled every 100 ms, and stopped at the end — also on
//! error or panic, by [`Drop`].

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::Backend;
use crate::procfs;

/// Default Postgres server URL (no database), overridable by `STEWARD_BENCH_PG_URL`.
///
/// TLS is off on this loopback connection: sqlx does not set `TCP_NODELAY`, and over TLS a large
/// insert then stalls ~40 ms on Nagle's algorithm (see BENCHMARKS.md).
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432?sslmode=disable";
/// How long the server may take to print its address and then to report SERVING.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a SIGTERM'd server may take to drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// RSS sampling period.
const RSS_PERIOD: Duration = Duration::from_millis(100);

/// A running `steward up` child. Dropping it kills the child, stops the sampler, drops the
/// Postgres database and removes the data dir (in that order: fields drop in declaration
/// order).
pub struct Server {
    child: ChildGuard,
    sampler: RssSampler,
    /// Held for its `Drop` (drops the database after the child stopped).
    _pg: Option<PgDatabase>,
    log_path: PathBuf,
    addr: SocketAddr,
    _data_dir: tempfile::TempDir,
}

impl Server {
    /// Starts `steward up --listen 127.0.0.1:0 --data-dir <tmp>` on `backend` and waits until
    /// it serves. The port is picked by the server (port 0) and read back from its banner, so
    /// no port can be taken by someone else in between.
    pub async fn start(backend: Backend) -> Result<Server> {
        let exe = steward_binary()?;
        let data_dir = tempfile::Builder::new()
            .prefix("steward-bench-")
            .tempdir()
            .context("creating a temporary data dir")?;
        let log_path = data_dir.path().join("steward.log");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create()?),
        };

        let mut cmd = Command::new(&exe);
        cmd.arg("up")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir.path().join("data"));
        // Hermetic: none of the caller's STEWARD_* settings leak into the server under test.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("STEWARD_") {
                cmd.env_remove(&k);
            }
        }
        if let Some(pg) = &pg {
            cmd.env("STEWARD_DATABASE_URL", &pg.url);
        }
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("opening {}", log_path.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_err));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let child = ChildGuard(Some(child));
        let pid = child.pid();

        // Copy stdout to the log, handing the banner's address over.
        let (tx, rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        std::thread::Builder::new()
            .name("steward-stdout".into())
            .spawn(move || copy_stdout(stdout, log, tx))
            .context("spawning the stdout reader")?;

        let sampler = RssSampler::start(pid)?;
        let mut server = Server {
            child,
            sampler,
            _pg: pg,
            log_path,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            _data_dir: data_dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        server.addr = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => bail!(
                "steward exited before printing its address\n{}",
                server.log_tail()
            ),
            Err(_) => bail!(
                "steward did not print its address within {START_TIMEOUT:?}\n{}",
                server.log_tail()
            ),
        };
        server.wait_serving(deadline).await?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The database URL the server runs on (Postgres), for the report.
    pub fn database_url(&self) -> Option<&str> {
        self._pg.as_ref().map(|p| p.url.as_str())
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Polls `grpc.health.v1.Health/Check` (service `""`) until SERVING.
    async fn wait_serving(&mut self, deadline: Instant) -> Result<()> {
        let url = self.url();
        let mut last = String::from("not tried");
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "steward exited with {status} while starting\n{}",
                    self.log_tail()
                );
            }
            match check_health(&url).await {
                Ok(ServingStatus::Serving) => return Ok(()),
                Ok(s) => last = format!("health says {s:?}"),
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "steward at {url} was not SERVING within {START_TIMEOUT:?} (last: {last})\n{}",
            self.log_tail()
        )
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after a grace period), drops its
    /// database and returns the peak RSS in bytes.
    pub async fn stop(mut self) -> Result<u64> {
        self.child.terminate(STOP_GRACE).await?;
        self.sampler.stop();
        Ok(self.sampler.peak())
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        format!(
            "--- last lines of {} ---\n{}",
            self.log_path.display(),
            tail.join("\n")
        )
    }
}

/// `steward` beside this executable.
fn steward_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating this executable")?;
    let dir = me
        .parent()
        .with_context(|| format!("{} has no parent directory", me.display()))?;
    let exe = dir.join("steward");
    if !exe.is_file() {
        bail!(
            "{} not found: build it first: cargo build --release --workspace",
            exe.display()
        );
    }
    Ok(exe)
}

/// Copies the child's stdout to `log`; sends the address of the line
/// `Steward is up: gRPC on ADDR ...` through `tx`.
fn copy_stdout(
    stdout: std::process::ChildStdout,
    mut log: File,
    tx: tokio::sync::oneshot::Sender<SocketAddr>,
) {
    let mut tx = Some(tx);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(log, "{line}");
        if let Some(addr) = banner_addr(&line)
            && let Some(tx) = tx.take()
        {
            let _ = tx.send(addr);
        }
    }
}

/// The address in `... gRPC on 127.0.0.1:PORT ...`.
fn banner_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("gRPC on ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// One health check of the whole server.
async fn check_health(url: &str) -> Result<ServingStatus> {
    let ch = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let resp = HealthClient::new(ch)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .context("grpc.health.v1.Health/Check")?;
    Ok(ServingStatus::try_from(resp.into_inner().status).unwrap_or(ServingStatus::Unknown))
}

/// Kills the child when dropped (if it was not stopped gracefully before).
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }

    fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        match &mut self.0 {
            Some(c) => c.try_wait().context("checking the steward child"),
            None => Ok(None),
        }
    }

    /// SIGTERM (through `kill(1)`: this crate has no unsafe code), wait up to `grace`, then
    /// SIGKILL.
    async fn terminate(&mut self, grace: Duration) -> Result<()> {
        let Some(child) = &mut self.0 else {
            return Ok(());
        };
        if child.try_wait()?.is_none() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + grace;
            while child.try_wait()?.is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if child.try_wait()?.is_none() {
                eprintln!("steward did not stop within {grace:?} of SIGTERM; killing it");
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.0 = None;
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Samples `VmRSS` of a process every [`RSS_PERIOD`] on its own thread (so a busy async
/// runtime cannot delay it) and keeps the peak.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Result<RssSampler> {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Ok(rss) = procfs::rss_bytes(pid) {
                        p.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(RSS_PERIOD);
                }
            })
            .context("spawning the RSS sampler")?;
        Ok(RssSampler {
            peak,
            stop,
            thread: Some(thread),
        })
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A database created for one run with `psql` and dropped when this is dropped.
struct PgDatabase {
    /// Server URL with the maintenance database `postgres`, for psql.
    admin_url: String,
    name: String,
    /// URL of the new database, for the server.
    url: String,
}

impl PgDatabase {
    /// `CREATE DATABASE steward_bench_<pid>_<ms>` on `$STEWARD_BENCH_PG_URL` (default
    /// [`DEFAULT_PG_URL`]).
    fn create() -> Result<PgDatabase> {
        let base = std::env::var("STEWARD_BENCH_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("steward_bench_{}_{ms}", std::process::id());
        let db = PgDatabase {
            admin_url: with_database(&base, "postgres"),
            url: with_database(&base, &name),
            name,
        };
        psql(&db.admin_url, &format!("CREATE DATABASE {}", db.name))
            .with_context(|| format!("creating database {} on {base}", db.name))?;
        Ok(db)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.admin_url, &sql) {
            eprintln!("warning: could not drop database {}: {e:#}", self.name);
        }
    }
}

/// `base` (a server URL, maybe with `?params`) with database `db`.
fn with_database(base: &str, db: &str) -> String {
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    };
    let path = path.trim_end_matches('/');
    match query {
        Some(q) => format!("{path}/{db}?{q}"),
        None => format!("{path}/{db}"),
    }
}

/// Runs one SQL statement with `psql`.
pub(crate) fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !out.status.success() {
        bail!(
            "psql {sql:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The server of a suite: `--addr` when given, else a `steward up` child started here; the
/// report notes which. Returns the child (None with `--addr`) and the URL to call.
pub async fn start_or_given(
    opts: &crate::Opts,
    report: &mut crate::report::Report,
) -> Result<(Option<Server>, String)> {
    if let Some(url) = opts.addr_url()? {
        report.note(format!(
            "server: {url} (given with --addr; its memory is not measured)"
        ));
        return Ok((None, url));
    }
    eprintln!("starting steward ({} backend) ...", opts.backend.name());
    let s = Server::start(opts.backend).await?;
    let url = s.url();
    eprintln!("steward pid {} serving on {url}", s.pid());
    report.note(format!("server: steward child pid {} at {url}", s.pid()));
    if let Some(db) = s.database_url() {
        report.note(format!(
            "database: {db} (set STEWARD_BENCH_PG_URL to change)"
        ));
    }
    Ok((Some(s), url))
}

/// Ends a suite's server: prints its log tail when the suite failed, stops it and reports its
/// peak memory.
pub async fn finish(
    server: Option<Server>,
    failed: bool,
    report: &mut crate::report::Report,
) -> Result<()> {
    let Some(s) = server else {
        return Ok(());
    };
    if failed {
        eprintln!("{}", s.log_tail());
    }
    let peak = s.stop().await?;
    report.figure(
        "server_rss_peak_mb",
        peak as f64 / crate::report::MIB,
        "MB",
        "peak VmRSS of the server, sampled every 100 ms over the whole run (MiB)",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_banner() {
        assert_eq!(
            banner_addr("Steward is up: gRPC on 127.0.0.1:4242 (health and reflection on)"),
            Some("127.0.0.1:4242".parse().unwrap())
        );
        assert_eq!(banner_addr("  database:  sqlite://x"), None);
    }

    #[test]
    fn database_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:1/?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
    }
}
