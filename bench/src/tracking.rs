//! The `tracking` suite: metric ingest (client stream and 1,000-point batches), CreateRun
//! latency, reading a 1M-point history (whole and downsampled), run search over 100k runs,
//! and the server's peak memory.
//!
//! Every section warms up first, is bounded in request count and in time, checks what the
//! server answered (points written, points read, matching runs), and records the CPU the
//! server, the client and Postgres used while it ran.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use steward_proto::tracking as pb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use crate::procfs::{CpuProbe, Machine};
use crate::report::{MIB, Report};
use crate::server::Server;
use crate::stats::{self, Summary};
use crate::{Backend, Opts};

/// The generated client over one HTTP/2 connection.
type Client = TrackingServiceClient<Channel>;

/// Largest gRPC message the client encodes or decodes.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Longest any single RPC (a whole client stream included) may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest any one section may take.
const SECTION_BUDGET: Duration = Duration::from_secs(30 * 60);
/// Largest page GetMetricHistory allows.
const HISTORY_PAGE_MAX: i32 = 1_000_000;
/// Metric keys of the batch sections (a training loop logs a few metrics per step).
const BATCH_KEYS: [&str; 4] = ["loss", "accuracy", "learning_rate", "grad_norm"];
/// Values of param `lr` in the search corpus.
const LRS: [&str; 3] = ["0.001", "0.01", "0.1"];
/// The search under test.
const SEARCH_FILTER: &str = "metrics.acc > 0.9 AND params.lr = '0.01'";
/// Its order.
const SEARCH_ORDER: &str = "metrics.acc desc";

/// Sizes of every section; [`Sizes::quick`] divides the normal ones by about 20.
#[derive(Debug, Clone)]
struct Sizes {
    stream_points: usize,
    stream_streams: usize,
    stream_points_per_msg: usize,
    stream_reps: usize,
    batch_points: usize,
    batch_clients: usize,
    batch_size: usize,
    batch_reps: usize,
    create_warmup: usize,
    create_calls: usize,
    history_points: usize,
    history_reads: usize,
    downsample_reads: usize,
    downsample_points: i32,
    search_runs: usize,
    search_inflight: usize,
    search_connections: usize,
    search_warmup: usize,
    search_calls: usize,
}

impl Sizes {
    fn normal() -> Sizes {
        Sizes {
            stream_points: 5_000_000,
            stream_streams: 4,
            stream_points_per_msg: 10_000,
            stream_reps: 3,
            batch_points: 2_000_000,
            batch_clients: 8,
            batch_size: 1_000,
            batch_reps: 3,
            create_warmup: 200,
            create_calls: 2_000,
            history_points: 1_000_000,
            history_reads: 5,
            downsample_reads: 10,
            downsample_points: 1_000,
            search_runs: 100_000,
            search_inflight: 16,
            search_connections: 4,
            search_warmup: 20,
            search_calls: 100,
        }
    }

    fn quick() -> Sizes {
        let n = Sizes::normal();
        Sizes {
            stream_points: n.stream_points / 20,
            batch_points: n.batch_points / 20,
            create_warmup: n.create_warmup / 20,
            create_calls: n.create_calls / 20,
            history_points: n.history_points / 20,
            search_runs: n.search_runs / 20,
            ..n
        }
    }
}

/// What every section needs.
struct Ctx {
    url: String,
    sizes: Sizes,
    probe: CpuProbe,
    /// Distinguishes this run's experiment names from earlier runs on the same server.
    tag: String,
    /// The Postgres database the started server runs on, if any.
    db_url: Option<String>,
}

/// Runs the suite and prints its report (also when a section fails, with what was measured).
pub async fn run(opts: &Opts) -> Result<()> {
    let machine = Machine::detect();
    let sizes = if opts.quick {
        Sizes::quick()
    } else {
        Sizes::normal()
    };
    let mut report = Report::new(
        format!(
            "steward-bench tracking (backend {}{})",
            opts.backend.name(),
            if opts.quick { ", --quick" } else { "" }
        ),
        machine.line(),
        opts.backend.suffix(),
    );
    eprintln!("machine: {}", machine.line());

    let server = match opts.addr_url()? {
        Some(_) => None,
        None => {
            eprintln!("starting steward ({} backend) ...", opts.backend.name());
            let s = Server::start(opts.backend).await?;
            eprintln!("steward pid {} serving on {}", s.pid(), s.url());
            Some(s)
        }
    };
    let url = match (&server, opts.addr_url()?) {
        (Some(s), _) => s.url(),
        (None, Some(u)) => u,
        (None, None) => unreachable!("either --addr or a started server"),
    };
    match &server {
        Some(s) => {
            report.note(format!("server: steward child pid {} at {url}", s.pid()));
            if let Some(db) = s.database_url() {
                report.note(format!(
                    "database: {db} (set STEWARD_BENCH_PG_URL to change, e.g. ?sslmode=disable)"
                ));
            }
        }
        None => report.note(format!(
            "server: {url} (given with --addr; its memory is not measured)"
        )),
    }
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let ctx = Ctx {
        db_url: server
            .as_ref()
            .and_then(|s| s.database_url().map(str::to_string)),
        url,
        sizes,
        probe: CpuProbe::new(
            server.as_ref().map(Server::pid),
            (opts.backend == Backend::Postgres).then_some("postgres"),
        ),
        tag: format!("{}-{ms}", std::process::id()),
    };

    let result = suite(&ctx, &mut report, &opts.only).await;
    note_retries(&mut report);
    if let (Err(_), Some(s)) = (&result, &server) {
        eprintln!("{}", s.log_tail());
    }
    if let Some(s) = server {
        let peak = s.stop().await?;
        report.figure(
            "server_rss_peak_mb",
            peak as f64 / MIB,
            "MB",
            "peak VmRSS of the server, sampled every 100 ms over the whole run (MiB)",
        );
    }
    if let Err(e) = &result {
        report.note(format!("SUITE FAILED: {e:#}"));
    }
    report.print();
    result
}

/// Names of the sections, in the order they run.
pub const SECTIONS: [&str; 6] = [
    "create_run",
    "ingest_stream",
    "ingest_batch",
    "ingest_batch_series",
    "history",
    "search",
];

/// The sections, in order (only those in `only`, when given); stops at the first failure.
async fn suite(ctx: &Ctx, report: &mut Report, only: &[String]) -> Result<()> {
    for name in only {
        ensure!(
            SECTIONS.contains(&name.as_str()),
            "--only {name:?}: sections are {}",
            SECTIONS.join(", ")
        );
    }
    for name in SECTIONS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("== {name}");
        let fut = async {
            match name {
                "create_run" => create_run(ctx, report).await,
                "ingest_stream" => ingest_stream(ctx, report).await,
                "ingest_batch" => ingest_batch(ctx, report, false).await,
                "ingest_batch_series" => ingest_batch(ctx, report, true).await,
                "history" => history(ctx, report).await,
                "search" => search(ctx, report).await,
                other => bail!("unknown section {other}"),
            }
        };
        match tokio::time::timeout(SECTION_BUDGET, fut).await {
            Ok(r) => r.with_context(|| format!("section {name}"))?,
            Err(_) => bail!("section {name} took longer than {SECTION_BUDGET:?}"),
        }
    }
    Ok(())
}

/// Notes how many ABORTED answers were retried (they are part of the measured times).
fn note_retries(report: &mut Report) {
    let n = ABORTED_RETRIES.load(Ordering::Relaxed);
    if n > 0 {
        report.note(format!(
            "{n} calls answered ABORTED (\"concurrent update conflict; retry\") and were retried \
             (at most {MAX_ATTEMPTS} attempts each); the retries are inside the measured times"
        ));
    }
}

/// A client on its own connection, with 64 MiB messages.
async fn connect(url: &str) -> Result<Client> {
    let ch = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("{url} is not a URL"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(RPC_TIMEOUT)
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(TrackingServiceClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// `n` clients, each on its own connection.
async fn connect_many(url: &str, n: usize) -> Result<Vec<Client>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(connect(url).await?);
    }
    Ok(v)
}

/// ABORTED answers retried so far (the server asks for a retry on a transaction conflict).
static ABORTED_RETRIES: AtomicU64 = AtomicU64::new(0);
/// Attempts of one call before an ABORTED answer is an error.
const MAX_ATTEMPTS: u32 = 5;

/// Calls `f` until it does not answer ABORTED, at most [`MAX_ATTEMPTS`] times with a short
/// backoff, as a well-behaved client does; counts the retries in [`ABORTED_RETRIES`]. Safe for
/// the writes used here: an ABORTED transaction was rolled back.
async fn retry_aborted<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(r) => return Ok(r.into_inner()),
            Err(st) if st.code() == tonic::Code::Aborted && attempt < MAX_ATTEMPTS => {
                ABORTED_RETRIES.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2 << attempt)).await;
                attempt += 1;
            }
            Err(st) => {
                return Err(anyhow::Error::new(st).context(format!("{what} (attempt {attempt})")));
            }
        }
    }
}

/// Lets the server's outbox relay drain the events of the runs just created, so that its
/// deletes do not race the timed writes (on SQLite they can abort a write transaction).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// A new experiment; returns its resource name.
async fn create_experiment(c: &mut Client, ctx: &Ctx, what: &str) -> Result<String> {
    let e = c
        .create_experiment(pb::CreateExperimentRequest {
            experiment: Some(pb::Experiment {
                display_name: format!("bench-{what}-{}", ctx.tag),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .context("CreateExperiment")?
        .into_inner();
    Ok(e.name)
}

/// A new run in `exp`; returns its resource name.
async fn create_run_named(c: &mut Client, exp: &str, run_name: String) -> Result<String> {
    let req = pb::CreateRunRequest {
        parent: exp.to_string(),
        run: Some(pb::Run {
            run_name,
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let r = retry_aborted("CreateRun", || {
        let (mut c, req) = (c.clone(), req.clone());
        async move { c.create_run(req).await }
    })
    .await?;
    Ok(r.name)
}

/// Section: sequential CreateRun latency from one client.
async fn create_run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let s = &ctx.sizes;
    let mut c = connect(&ctx.url).await?;
    let exp = create_experiment(&mut c, ctx, "create-run").await?;
    for i in 0..s.create_warmup {
        create_run_named(&mut c, &exp, format!("warmup-{i}")).await?;
    }
    let snap = ctx.probe.snapshot();
    let mut lat = Vec::with_capacity(s.create_calls);
    for i in 0..s.create_calls {
        let t = Instant::now();
        create_run_named(&mut c, &exp, format!("run-{i}")).await?;
        lat.push(t.elapsed());
    }
    report.usage("create_run (timed calls)", ctx.probe.since(&snap));
    let sum = Summary::of(&stats::millis(&lat));
    let detail = format!(
        "{} sequential calls after {} warm-up",
        s.create_calls, s.create_warmup
    );
    report.figure("create_run_p50_ms", sum.p50, "ms", detail.clone());
    report.figure("create_run_p95_ms", sum.p95, "ms", detail.clone());
    report.info("create_run_p99_ms", sum.p99, "ms", detail);
    Ok(())
}

/// A cheap deterministic noise in [0, 1) (splitmix64).
fn noise(seed: u64, i: u64) -> f64 {
    let mut z = seed
        .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A loss-like noisy value at `step`.
fn metric_value(seed: u64, step: u64) -> f64 {
    1.0 / (1.0 + step as f64 * 1e-5) + 0.01 * noise(seed, step)
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Streams `points` points of `key` to `run` with StreamMetrics, `per_msg` points per
/// columnar message (steps 0.., one client timestamp per point); returns when the server has
/// answered, i.e. after it committed every message. Checks the count it reports.
async fn stream_series(
    mut c: Client,
    run: String,
    key: &'static str,
    points: usize,
    per_msg: usize,
    seed: u64,
) -> Result<u64> {
    let n_msgs = points.div_ceil(per_msg);
    let msgs = futures::stream::iter(SeriesMessages {
        run,
        key,
        points,
        per_msg,
        seed,
        base_ts: now_ms(),
        next: 0,
    });
    let resp = c
        .stream_metrics(msgs)
        .await
        .context("StreamMetrics")?
        .into_inner();
    ensure!(
        resp.metric_points_written == points as i64 && resp.messages == n_msgs as i64,
        "StreamMetrics stored {} points in {} messages; sent {points} in {n_msgs}",
        resp.metric_points_written,
        resp.messages
    );
    Ok(points as u64)
}

/// The messages of [`stream_series`], made as they are sent (an iterator rather than a closure
/// so the stream is `Send` for any lifetime, as `tokio::spawn` wants).
struct SeriesMessages {
    run: String,
    key: &'static str,
    points: usize,
    per_msg: usize,
    seed: u64,
    base_ts: i64,
    /// Index of the next message.
    next: usize,
}

impl Iterator for SeriesMessages {
    type Item = pb::StreamMetricsRequest;

    fn next(&mut self) -> Option<pb::StreamMetricsRequest> {
        let start = self.next * self.per_msg;
        if start >= self.points {
            return None;
        }
        let len = self.per_msg.min(self.points - start);
        let steps: Vec<i64> = (start as i64..(start + len) as i64).collect();
        let mut values = Vec::with_capacity(len);
        let mut timestamps_unix_ms = Vec::with_capacity(len);
        for &st in &steps {
            values.push(metric_value(self.seed, st as u64));
            timestamps_unix_ms.push(self.base_ts + st);
        }
        let first = self.next == 0;
        self.next += 1;
        Some(pb::StreamMetricsRequest {
            run: if first {
                self.run.clone()
            } else {
                String::new()
            },
            metrics: Vec::new(),
            metric_series: vec![pb::MetricSeries {
                key: self.key.to_string(),
                values,
                steps,
                timestamps_unix_ms,
            }],
        })
    }
}

/// Runs `k` tasks started together; each returns (its start, its end, points). The figure is
/// all points over the wall time from the first start to the last end.
async fn concurrent<F>(tasks: Vec<F>) -> Result<(u64, Duration)>
where
    F: Future<Output = Result<u64>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(tasks.len()));
    let mut set = JoinSet::new();
    for t in tasks {
        let b = barrier.clone();
        set.spawn(async move {
            b.wait().await;
            let t0 = Instant::now();
            let n = t.await?;
            Ok::<_, anyhow::Error>((t0, Instant::now(), n))
        });
    }
    let (mut first, mut last, mut total) = (None::<Instant>, None::<Instant>, 0u64);
    while let Some(r) = set.join_next().await {
        let (t0, t1, n) = r.context("a load task panicked")??;
        first = Some(first.map_or(t0, |f| f.min(t0)));
        last = Some(last.map_or(t1, |l| l.max(t1)));
        total += n;
    }
    match (first, last) {
        (Some(f), Some(l)) => Ok((total, l - f)),
        _ => bail!("no load tasks"),
    }
}

/// Section: StreamMetrics, `stream_streams` concurrent streams to different runs.
async fn ingest_stream(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let s = &ctx.sizes;
    let mut c = connect(&ctx.url).await?;
    let exp = create_experiment(&mut c, ctx, "ingest-stream").await?;
    let per_stream = s.stream_points / s.stream_streams;

    // Every run first (creating one writes an event the relay then deletes), then a pause.
    let mut warm_runs = Vec::new();
    for i in 0..s.stream_streams {
        warm_runs.push(create_run_named(&mut c, &exp, format!("warmup-{i}")).await?);
    }
    let mut rep_runs = Vec::new();
    for rep in 0..s.stream_reps {
        let mut runs = Vec::new();
        for i in 0..s.stream_streams {
            runs.push(create_run_named(&mut c, &exp, format!("rep{rep}-stream{i}")).await?);
        }
        rep_runs.push(runs);
    }
    settle().await;

    // Warm-up: one stream per connection-to-be, 20 messages each.
    let warm = connect_many(&ctx.url, s.stream_streams).await?;
    let tasks = warm
        .into_iter()
        .zip(warm_runs)
        .enumerate()
        .map(|(i, (wc, run))| {
            stream_series(
                wc,
                run,
                "loss",
                20 * s.stream_points_per_msg,
                s.stream_points_per_msg,
                i as u64,
            )
        })
        .collect();
    concurrent(tasks).await?;

    let snap = ctx.probe.snapshot();
    let mut rates = Vec::new();
    for (rep, runs) in rep_runs.into_iter().enumerate() {
        let clients = connect_many(&ctx.url, s.stream_streams).await?;
        let tasks = clients
            .into_iter()
            .zip(runs)
            .enumerate()
            .map(|(i, (sc, run))| {
                stream_series(
                    sc,
                    run,
                    "loss",
                    per_stream,
                    s.stream_points_per_msg,
                    (rep * 100 + i) as u64,
                )
            })
            .collect();
        let (n, wall) = concurrent(tasks).await?;
        let rate = n as f64 / wall.as_secs_f64();
        eprintln!(
            "  rep {rep}: {n} points in {:.2} s = {rate:.0} points/s",
            wall.as_secs_f64()
        );
        rates.push(rate);
    }
    report.usage("ingest_stream (all reps)", ctx.probe.since(&snap));
    report.figure(
        "ingest_stream_points_per_s",
        stats::median(&rates).unwrap_or(f64::NAN),
        "points/s",
        format!(
            "median of {} reps [{}]; {} streams x {} points, {}-point columnar messages with steps and timestamps",
            rates.len(),
            list(&rates),
            s.stream_streams,
            per_stream,
            s.stream_points_per_msg
        ),
    );
    Ok(())
}

/// One LogRunData of `batch` points: `BATCH_KEYS.len()` keys x `batch / keys` steps starting at
/// step `req * (batch / keys)`, as `metrics` rows (timestamp unset) or as `metric_series`
/// columns (no timestamps either).
fn batch_request(run: &str, req: usize, batch: usize, columnar: bool) -> pb::LogRunDataRequest {
    let per_key = batch / BATCH_KEYS.len();
    let first = (req * per_key) as i64;
    let mut out = pb::LogRunDataRequest {
        run: run.to_string(),
        ..Default::default()
    };
    for (k, key) in BATCH_KEYS.iter().enumerate() {
        let steps = first..first + per_key as i64;
        if columnar {
            out.metric_series.push(pb::MetricSeries {
                key: key.to_string(),
                values: steps
                    .clone()
                    .map(|st| metric_value(k as u64, st as u64))
                    .collect(),
                steps: steps.collect(),
                timestamps_unix_ms: Vec::new(),
            });
        } else {
            out.metrics.extend(steps.map(|st| pb::MetricPoint {
                key: key.to_string(),
                value: metric_value(k as u64, st as u64),
                timestamp: None,
                step: st,
            }));
        }
    }
    out
}

/// `reqs` sequential LogRunData calls of `batch` points to `run`, starting at request `from`.
async fn log_batches(
    c: Client,
    run: String,
    from: usize,
    reqs: usize,
    batch: usize,
    columnar: bool,
) -> Result<u64> {
    let mut n = 0u64;
    for r in from..from + reqs {
        let req = batch_request(&run, r, batch, columnar);
        let resp = retry_aborted("LogRunData", || {
            let (mut c, req) = (c.clone(), req.clone());
            async move { c.log_run_data(req).await }
        })
        .await?;
        ensure!(
            resp.metric_points_written as usize == batch,
            "LogRunData wrote {} of {batch} points",
            resp.metric_points_written
        );
        n += batch as u64;
    }
    Ok(n)
}

/// Section: LogRunData with 1,000-point batches from `batch_clients` concurrent clients, each
/// logging to its own run; rows (`metrics`) or columns (`metric_series`).
async fn ingest_batch(ctx: &Ctx, report: &mut Report, columnar: bool) -> Result<()> {
    let s = &ctx.sizes;
    let what = if columnar { "batch-series" } else { "batch" };
    let mut c = connect(&ctx.url).await?;
    let exp = create_experiment(&mut c, ctx, what).await?;
    let per_client = s.batch_points.div_ceil(s.batch_clients * s.batch_size);

    let mut runs = Vec::new();
    for i in 0..s.batch_clients {
        runs.push(create_run_named(&mut c, &exp, format!("client-{i}")).await?);
    }
    settle().await;
    // Warm-up: 5 batches per client, on the runs the timed reps continue.
    let warmup = 5;
    let clients = connect_many(&ctx.url, s.batch_clients).await?;
    let tasks = clients
        .into_iter()
        .zip(&runs)
        .map(|(cl, run)| log_batches(cl, run.clone(), 0, warmup, s.batch_size, columnar))
        .collect();
    concurrent(tasks).await?;

    let snap = ctx.probe.snapshot();
    let mut rates = Vec::new();
    for rep in 0..s.batch_reps {
        let clients = connect_many(&ctx.url, s.batch_clients).await?;
        let from = warmup + rep * per_client;
        let tasks = clients
            .into_iter()
            .zip(&runs)
            .map(|(cl, run)| log_batches(cl, run.clone(), from, per_client, s.batch_size, columnar))
            .collect();
        let (n, wall) = concurrent(tasks).await?;
        let rate = n as f64 / wall.as_secs_f64();
        eprintln!(
            "  rep {rep}: {n} points in {:.2} s = {rate:.0} points/s",
            wall.as_secs_f64()
        );
        rates.push(rate);
    }
    let (name, shape) = if columnar {
        ("ingest_batch_series_points_per_s", "metric_series columns")
    } else {
        ("ingest_batch_points_per_s", "metrics rows, timestamp unset")
    };
    report.usage(&format!("{name} (all reps)"), ctx.probe.since(&snap));
    report.figure(
        name,
        stats::median(&rates).unwrap_or(f64::NAN),
        "points/s",
        format!(
            "median of {} reps [{}]; {} clients x {} LogRunData of {} points ({} keys, {shape})",
            rates.len(),
            list(&rates),
            s.batch_clients,
            per_client,
            s.batch_size,
            BATCH_KEYS.len()
        ),
    );
    Ok(())
}

/// Reads the whole history of `key` in `run` with the largest pages; returns points read.
async fn read_history(c: &mut Client, run: &str, key: &str, expect: usize) -> Result<usize> {
    let max_pages = expect / HISTORY_PAGE_MAX as usize + 2;
    let (mut points, mut token) = (0usize, String::new());
    for _ in 0..max_pages {
        let resp = c
            .get_metric_history(pb::GetMetricHistoryRequest {
                run: run.to_string(),
                metric_key: key.to_string(),
                page_size: HISTORY_PAGE_MAX,
                page_token: token,
                max_points: 0,
                downsample_method: 0,
            })
            .await
            .context("GetMetricHistory")?
            .into_inner();
        let series = resp.series.unwrap_or_default();
        ensure!(
            series.steps.len() == series.values.len(),
            "GetMetricHistory returned {} steps for {} values",
            series.steps.len(),
            series.values.len()
        );
        points += series.values.len();
        token = resp.next_page_token;
        if token.is_empty() {
            ensure!(
                points == expect && resp.total_points == expect as i64,
                "read {points} points (total_points {}), logged {expect}",
                resp.total_points
            );
            return Ok(points);
        }
    }
    bail!("history of {expect} points still had pages after {max_pages} pages")
}

/// One downsampled read; returns the points returned.
async fn read_downsampled(c: &mut Client, run: &str, key: &str, max_points: i32) -> Result<usize> {
    let resp = c
        .get_metric_history(pb::GetMetricHistoryRequest {
            run: run.to_string(),
            metric_key: key.to_string(),
            page_size: 0,
            page_token: String::new(),
            max_points,
            downsample_method: pb::DownsampleMethod::MinMax as i32,
        })
        .await
        .context("GetMetricHistory (max_points)")?
        .into_inner();
    let n = resp.series.map(|s| s.values.len()).unwrap_or(0);
    ensure!(
        n > 0 && n <= max_points as usize,
        "downsampled read returned {n} points for max_points {max_points}"
    );
    Ok(n)
}

/// Section: log `history_points` points of one metric, read them all back (median of 5), and
/// read them downsampled to 1,000 points (median of 10).
async fn history(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let s = &ctx.sizes;
    let n = s.history_points;
    let mut c = connect(&ctx.url).await?;
    let exp = create_experiment(&mut c, ctx, "history").await?;
    let run = create_run_named(&mut c, &exp, "history".into()).await?;
    settle().await;
    let t = Instant::now();
    stream_series(
        connect(&ctx.url).await?,
        run.clone(),
        "loss",
        n,
        s.stream_points_per_msg,
        7,
    )
    .await?;
    let log_s = t.elapsed().as_secs_f64();
    report.info(
        "history_log_points_per_s",
        n as f64 / log_s,
        "points/s",
        format!("one StreamMetrics of {n} points ({log_s:.2} s), to set up the reads"),
    );

    read_history(&mut c, &run, "loss", n).await?; // warm-up
    let snap = ctx.probe.snapshot();
    let mut secs = Vec::new();
    for _ in 0..s.history_reads {
        let t = Instant::now();
        read_history(&mut c, &run, "loss", n).await?;
        secs.push(t.elapsed().as_secs_f64());
    }
    report.usage("history full reads", ctx.probe.since(&snap));
    report.figure(
        "history_1m_read_s",
        stats::median(&secs).unwrap_or(f64::NAN),
        "s",
        format!(
            "median of {} reads [{}] of {n} points, pages of {HISTORY_PAGE_MAX}",
            secs.len(),
            list(&secs)
        ),
    );

    for _ in 0..2 {
        read_downsampled(&mut c, &run, "loss", s.downsample_points).await?;
    }
    let snap = ctx.probe.snapshot();
    let mut lat = Vec::new();
    let mut returned = 0;
    for _ in 0..s.downsample_reads {
        let t = Instant::now();
        returned = read_downsampled(&mut c, &run, "loss", s.downsample_points).await?;
        lat.push(t.elapsed());
    }
    report.usage("history downsampled reads", ctx.probe.since(&snap));
    let ms = stats::millis(&lat);
    report.figure(
        "history_downsampled_ms",
        stats::median(&ms).unwrap_or(f64::NAN),
        "ms",
        format!(
            "median of {} reads [{}], max_points={} (MIN_MAX) over {n} points -> {returned} points",
            ms.len(),
            list(&ms),
            s.downsample_points
        ),
    );
    Ok(())
}

/// What the seeder logged for one run, to check the search answers.
struct Seeded {
    acc: f64,
    lr: &'static str,
}

/// Creates run `i` and logs its 10 params, 5 metrics and 5 tags in one LogRunData.
async fn seed_run(mut c: Client, exp: String, i: usize) -> Result<Seeded> {
    let run = create_run_named(&mut c, &exp, format!("run-{i}")).await?;
    let mut rng = StdRng::seed_from_u64(i as u64);
    let lr = LRS[rng.random_range(0..LRS.len())];
    let acc: f64 = rng.random();
    let p = |k: &str, v: String| pb::Param {
        key: k.into(),
        value: v,
    };
    let params = vec![
        p("lr", lr.into()),
        p(
            "batch_size",
            ["32", "64", "128", "256"][rng.random_range(0..4)].into(),
        ),
        p(
            "optimizer",
            ["adam", "sgd", "adamw"][rng.random_range(0..3)].into(),
        ),
        p("epochs", rng.random_range(1..100u32).to_string()),
        p("dropout", format!("{:.2}", rng.random::<f64>() * 0.5)),
        p("weight_decay", format!("{:.5}", rng.random::<f64>() * 1e-3)),
        p("layers", rng.random_range(2..48u32).to_string()),
        p(
            "hidden",
            ["256", "512", "1024"][rng.random_range(0..3)].into(),
        ),
        p("seed", i.to_string()),
        p(
            "model",
            ["resnet", "vit", "bert", "gpt"][rng.random_range(0..4)].into(),
        ),
    ];
    let m = |k: &str, v: f64| pb::MetricPoint {
        key: k.into(),
        value: v,
        timestamp: None,
        step: 0,
    };
    let metrics = vec![
        m("acc", acc),
        m("loss", rng.random::<f64>() * 2.0),
        m("f1", rng.random()),
        m("precision", rng.random()),
        m("recall", rng.random()),
    ];
    let t = |k: &str, v: String| pb::Tag {
        key: k.into(),
        value: v,
    };
    let tags = vec![
        t(
            "team",
            ["vision", "nlp", "risk"][rng.random_range(0..3)].into(),
        ),
        t("env", ["dev", "prod"][rng.random_range(0..2)].into()),
        t("owner", format!("user{}", rng.random_range(0..50u32))),
        t("dataset", format!("ds-{}", rng.random_range(0..20u32))),
        t("git_sha", format!("{:016x}", rng.random::<u64>())),
    ];
    let req = pb::LogRunDataRequest {
        run,
        metrics,
        params,
        tags,
        request_id: String::new(),
        metric_series: Vec::new(),
    };
    retry_aborted("LogRunData (seeding)", || {
        let (mut c, req) = (c.clone(), req.clone());
        async move { c.log_run_data(req).await }
    })
    .await?;
    Ok(Seeded { acc, lr })
}

/// One SearchRuns call of the search under test.
async fn search_once(c: &mut Client, exp: &str) -> Result<pb::SearchRunsResponse> {
    Ok(c.search_runs(pb::SearchRunsRequest {
        experiments: vec![exp.to_string()],
        filter: SEARCH_FILTER.into(),
        order_by: SEARCH_ORDER.into(),
        page_size: 100,
        page_token: String::new(),
        show_deleted: false,
    })
    .await
    .context("SearchRuns")?
    .into_inner())
}

/// Checks a search answer against what was seeded: the right count, matching runs, best
/// first.
fn check_search(resp: &pb::SearchRunsResponse, seeded: &[Seeded]) -> Result<()> {
    let mut want: Vec<f64> = seeded
        .iter()
        .filter(|s| s.acc > 0.9 && s.lr == "0.01")
        .map(|s| s.acc)
        .collect();
    want.sort_by(|a, b| b.total_cmp(a));
    want.truncate(100);
    ensure!(
        resp.runs.len() == want.len(),
        "SearchRuns returned {} runs, {} expected",
        resp.runs.len(),
        want.len()
    );
    let got: Vec<f64> = resp
        .runs
        .iter()
        .filter_map(|r| r.latest_metrics.iter().find(|m| m.key == "acc"))
        .map(|m| m.value)
        .collect();
    if !got.is_empty() {
        ensure!(
            got == want,
            "SearchRuns returned acc {:?}..., expected {:?}...",
            &got[..got.len().min(3)],
            &want[..want.len().min(3)]
        );
    }
    Ok(())
}

/// Section: seed `search_runs` runs concurrently, then time the search under test.
async fn search(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let s = &ctx.sizes;
    let mut c = connect(&ctx.url).await?;
    let exp = create_experiment(&mut c, ctx, "search").await?;
    let pool = connect_many(&ctx.url, s.search_connections).await?;

    let snap = ctx.probe.snapshot();
    let t = Instant::now();
    let mut seeded: Vec<Option<Seeded>> = (0..s.search_runs).map(|_| None).collect();
    {
        let mut results = futures::stream::iter(0..s.search_runs)
            .map(|i| {
                let cl = pool[i % pool.len()].clone();
                let exp = exp.clone();
                async move { seed_run(cl, exp, i).await.map(|r| (i, r)) }
            })
            .buffer_unordered(s.search_inflight);
        let mut done = 0usize;
        while let Some(r) = results.next().await {
            let (i, sd) = r.with_context(|| format!("seeding after {done} runs"))?;
            seeded[i] = Some(sd);
            done += 1;
            if done.is_multiple_of(10_000) {
                eprintln!(
                    "  seeded {done} runs ({:.0} runs/s)",
                    done as f64 / t.elapsed().as_secs_f64()
                );
            }
        }
    }
    let seed_s = t.elapsed().as_secs_f64();
    report.usage("search seeding", ctx.probe.since(&snap));
    if let Some(db) = &ctx.db_url {
        // Fresh planner statistics, as autovacuum would gather them in a normal deployment
        // (it is switched off on the benchmark machine's Postgres).
        crate::server::psql(db, "ANALYZE")?;
        report.note(
            "ran ANALYZE after seeding (autovacuum is off on this machine's Postgres)".to_string(),
        );
    }
    let seeded: Vec<Seeded> = seeded.into_iter().flatten().collect();
    ensure!(seeded.len() == s.search_runs, "not every run was seeded");
    report.info(
        "search_seed_runs_per_s",
        s.search_runs as f64 / seed_s,
        "runs/s",
        format!(
            "{} runs in {seed_s:.1} s (CreateRun + one LogRunData of 10 params, 5 metrics, 5 tags; {} in flight)",
            s.search_runs, s.search_inflight
        ),
    );

    let first = search_once(&mut c, &exp).await?;
    check_search(&first, &seeded)?;
    for _ in 1..s.search_warmup {
        search_once(&mut c, &exp).await?;
    }
    let snap = ctx.probe.snapshot();
    let mut lat = Vec::with_capacity(s.search_calls);
    for _ in 0..s.search_calls {
        let t = Instant::now();
        search_once(&mut c, &exp).await?;
        lat.push(t.elapsed());
    }
    report.usage("search timed queries", ctx.probe.since(&snap));
    let sum = Summary::of(&stats::millis(&lat));
    let matching = seeded
        .iter()
        .filter(|x| x.acc > 0.9 && x.lr == "0.01")
        .count();
    let detail = format!(
        "{} sequential SearchRuns after {} warm-up over {} runs ({matching} match): {SEARCH_FILTER:?} order {SEARCH_ORDER:?}, page 100",
        s.search_calls, s.search_warmup, s.search_runs
    );
    report.figure("search_p95_ms", sum.p95, "ms", detail.clone());
    report.info("search_p50_ms", sum.p50, "ms", detail);
    Ok(())
}

/// `1.23, 4.56` (for details).
fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| crate::report::human(*x))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_is_about_twenty_times_smaller() {
        let (n, q) = (Sizes::normal(), Sizes::quick());
        assert_eq!(n.stream_points / q.stream_points, 20);
        assert_eq!(n.search_runs / q.search_runs, 20);
        assert!(n.stream_points >= 5_000_000 && n.batch_points >= 2_000_000);
        // Normal mode: every stream and client gets whole messages / batches.
        assert_eq!(
            n.stream_points % (n.stream_streams * n.stream_points_per_msg),
            0
        );
        assert_eq!(n.batch_points % (n.batch_clients * n.batch_size), 0);
    }

    #[test]
    fn batch_requests_have_the_asked_size() {
        let rows = batch_request("experiments/e/runs/r", 3, 1_000, false);
        assert_eq!(rows.metrics.len(), 1_000);
        assert!(rows.metrics.iter().all(|m| m.timestamp.is_none()));
        assert_eq!(rows.metrics[0].step, 750);
        let cols = batch_request("experiments/e/runs/r", 3, 1_000, true);
        let n: usize = cols.metric_series.iter().map(|s| s.values.len()).sum();
        assert_eq!(n, 1_000);
        assert!(cols.metrics.is_empty());
    }

    #[test]
    fn noise_is_in_unit_interval() {
        for i in 0..10_000 {
            let v = noise(42, i);
            assert!((0.0..1.0).contains(&v));
        }
    }
}
