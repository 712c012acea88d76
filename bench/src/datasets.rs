//! The `datasets` suite: dataset versions through the gRPC service (TrackingService's "Dataset
//! versions" RPCs).
//!
//! - `upload`: a ~1 GB CSV (10 numeric + 3 categorical columns and an id, ~100 bytes a row) into
//!   a new version of a fresh dataset: CreateDatasetVersion, UploadDatasetFile in 1 MiB chunk
//!   messages read from disk, CommitDatasetVersion with `skip_profile`. Timed from the first
//!   byte sent to the commit's answer (`dataset_upload_mb_per_s`). Every repetition uploads
//!   other content (another seed), so none is deduplicated against an earlier one.
//! - `profile`: the same bytes into a new PENDING version (deduplicated, untimed), then the
//!   commit with profiling timed (`dataset_profile_mb_per_s`, over the file's size).
//! - `restore`: DownloadDatasetFile of the 1 GB file into a local file (page cache, no fsync),
//!   timed from the request to the last byte written (`dataset_restore_mb_per_s`); the SHA-256
//!   of what arrived is checked against the uploaded file's afterwards (untimed).
//! - `delta`: a second version of the uploaded dataset with 1% of the rows changed in one block
//!   (mid-file, same row count), and a third with 1% of the rows changed at random places; the
//!   version's `new_bytes` over the file's size (`dataset_delta_stored_ratio`, target <= 0.05;
//!   `dataset_delta_scattered_ratio`, no target).
//!
//! MB is 10^6 bytes in every rate. Data is generated deterministically (seeded) into a
//! temporary directory before each timed part; generating and hashing are never timed. A small
//! warm-up upload and download (a separate dataset) runs before the first section.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};
use steward_proto::tracking as pb;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use steward_proto::tracking::upload_dataset_file_request::Part;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::procfs::CpuProbe;
use crate::report::{Report, human};
use crate::server::Server;
use crate::stats;
use crate::{Backend, Opts};

/// The generated client over one HTTP/2 connection.
type Client = TrackingServiceClient<Channel>;

/// Names of the sections, in the order they run.
pub const SECTIONS: [&str; 4] = ["upload", "profile", "restore", "delta"];

/// Bytes per UploadDatasetFile chunk message.
const CHUNK: usize = 1 << 20;
/// Chunk messages buffered between the disk reader and the request stream.
const IN_FLIGHT_CHUNKS: usize = 8;
/// Largest gRPC message the client encodes or decodes.
const MAX_MESSAGE: usize = 64 << 20;
/// Longest any single RPC (a whole client stream included) may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(900);
/// Longest any one section may take.
const SECTION_BUDGET: Duration = Duration::from_secs(30 * 60);
/// The file's path inside every version.
const FILE_PATH: &str = "data.csv";
/// Generator write buffer.
const GEN_BUF: usize = 4 << 20;
/// Seed of the warm-up file; the timed uploads use 1, 2, 3, ...
const WARMUP_SEED: u64 = 0x5EED_0000;
/// Salts of the changed rows of the delta files (distinct, so the two never share rows).
const SALT_BLOCK: u64 = 0xB10C_0000_0000_0001;
const SALT_SCATTERED: u64 = 0x5CA7_0000_0000_0002;
/// Targets of the issue.
const UPLOAD_TARGET_MB_S: f64 = 300.0;
const RESTORE_TARGET_MB_S: f64 = 500.0;
const DELTA_TARGET_RATIO: f64 = 0.05;

/// Sizes; [`Sizes::quick`] divides the data by 20.
#[derive(Debug, Clone)]
struct Sizes {
    /// Rows of the dataset file (~100 bytes each).
    rows: u64,
    /// Rows of the warm-up file.
    warmup_rows: u64,
    upload_reps: usize,
    profile_reps: usize,
    restore_reps: usize,
}

impl Sizes {
    fn normal() -> Sizes {
        Sizes {
            // ~1.0e9 bytes (see `bytes_per_row_is_about_100`).
            rows: 10_250_000,
            // ~16 MB.
            warmup_rows: 164_000,
            upload_reps: 3,
            profile_reps: 3,
            restore_reps: 3,
        }
    }

    fn quick() -> Sizes {
        let n = Sizes::normal();
        Sizes {
            rows: n.rows / 20,
            warmup_rows: n.warmup_rows / 20,
            upload_reps: 1,
            profile_reps: 1,
            ..n
        }
    }
}

/// What every section needs.
struct Ctx {
    url: String,
    sizes: Sizes,
    probe: CpuProbe,
    backend: Backend,
    /// Distinguishes this run's dataset names from earlier runs on the same server.
    tag: String,
    /// Where the generated and restored files go.
    dir: tempfile::TempDir,
}

/// What sections hand on: the dataset whose version 1 is the uploaded file F.
#[derive(Default)]
struct State {
    base: Option<Base>,
    warmed_up: bool,
}

struct Base {
    /// `datasets/{d}`.
    dataset: String,
    /// `datasets/{d}/versions/{v}` holding F.
    version: String,
    /// F on local disk.
    file: GenFile,
}

/// Runs the suite and prints its report (also when a section fails, with what was measured).
pub async fn run(opts: &Opts) -> Result<()> {
    let sizes = if opts.quick {
        Sizes::quick()
    } else {
        Sizes::normal()
    };
    let mut report = crate::report::begin("datasets", &SECTIONS, opts)?;

    let (server, url) = crate::server::start_or_given(opts, &mut report).await?;

    let mut verdicts = Vec::new();
    let result = async {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let dir = tempfile::Builder::new()
            .prefix("steward-bench-datasets-")
            .tempdir()
            .context("creating a temporary directory for the data")?;
        report.note(format!(
            "data files in {} (generated and hashed untimed; removed at the end)",
            dir.path().display()
        ));
        let ctx = Ctx {
            url: url.clone(),
            sizes,
            probe: CpuProbe::new(
                server.as_ref().map(Server::pid),
                (opts.backend == Backend::Postgres).then_some("postgres"),
            ),
            backend: opts.backend,
            tag: format!("{}-{ms}", std::process::id()),
            dir,
        };
        suite(&ctx, &mut report, &mut verdicts, &opts.only).await
    }
    .await;
    crate::server::finish(server, result.is_err(), &mut report).await?;
    report.note("MB = 10^6 bytes in every rate (MB/s); server RSS is in MiB");
    if !verdicts.is_empty() {
        let failed = verdicts.iter().filter(|v| v.ends_with("FAIL")).count();
        report.note(format!(
            "targets: {} of {} met ({})",
            verdicts.len() - failed,
            verdicts.len(),
            verdicts.join("; ")
        ));
    }
    if let Err(e) = &result {
        report.note(format!("SUITE FAILED: {e:#}"));
    }
    report.print();
    result
}

/// The sections, in order (only those in `only`, when given); stops at the first failure.
async fn suite(
    ctx: &Ctx,
    report: &mut Report,
    verdicts: &mut Vec<String>,
    only: &[String],
) -> Result<()> {
    let mut state = State::default();
    for name in SECTIONS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        if !state.warmed_up {
            eprintln!("== warm-up");
            warm_up(ctx).await.context("warm-up")?;
            state.warmed_up = true;
        }
        eprintln!("== {name}");
        let start = ctx.probe.snapshot();
        let fut = async {
            match name {
                "upload" => upload(ctx, &mut state, report, verdicts).await,
                "profile" => profile(ctx, &mut state, report).await,
                "restore" => restore(ctx, &mut state, report, verdicts).await,
                "delta" => delta(ctx, &mut state, report, verdicts).await,
                other => bail!("unknown section {other}"),
            }
        };
        match tokio::time::timeout(SECTION_BUDGET, fut).await {
            Ok(r) => r.with_context(|| format!("section {name}"))?,
            Err(_) => bail!("section {name} took longer than {SECTION_BUDGET:?}"),
        }
        report.usage(name, ctx.probe.since(&start));
    }
    Ok(())
}

// ---- sections ----

/// A small upload, commit and download on a dataset of its own.
async fn warm_up(ctx: &Ctx) -> Result<()> {
    let f = gen_file(
        ctx,
        "warmup.csv",
        GenSpec::plain(ctx.sizes.warmup_rows, WARMUP_SEED),
    )
    .await?;
    let mut c = client(&ctx.url).await?;
    let dataset = format!("datasets/bench-{}-warmup", ctx.tag);
    let up = upload_version(&mut c, &dataset, &f, Some(true)).await?;
    let dest = ctx.dir.path().join("warmup.restored");
    let got = download(&mut c, &up.version.name, &dest).await?;
    verify_restored(&dest, &f, &got).await?;
    remove(&dest);
    remove(&f.path);
    eprintln!(
        "  {} MB up in {:.2} s, down in {:.2} s",
        human(f.size as f64 / 1e6),
        up.total().as_secs_f64(),
        got.elapsed.as_secs_f64()
    );
    Ok(())
}

async fn upload(
    ctx: &Ctx,
    state: &mut State,
    report: &mut Report,
    verdicts: &mut Vec<String>,
) -> Result<()> {
    let s = &ctx.sizes;
    let mut c = client(&ctx.url).await?;
    let mut rates = Vec::new();
    let mut stream_rates = Vec::new();
    let mut commit_s = Vec::new();
    let mut new_shares = Vec::new();
    let mut size = 0;
    for rep in 0..s.upload_reps {
        // New content every repetition: the store deduplicates identical bytes.
        let f = gen_file(
            ctx,
            &format!("upload-{rep}.csv"),
            GenSpec::plain(s.rows, 1 + rep as u64),
        )
        .await?;
        let dataset = format!("datasets/bench-{}-up{rep}", ctx.tag);
        let up = upload_version(&mut c, &dataset, &f, Some(true)).await?;
        let secs = up.total().as_secs_f64();
        size = f.size;
        rates.push(f.size as f64 / 1e6 / secs);
        stream_rates.push(f.size as f64 / 1e6 / up.stream.as_secs_f64());
        commit_s.push(up.commit.as_secs_f64());
        new_shares.push(up.version.new_bytes as f64 / f.size as f64);
        eprintln!(
            "  rep {rep}: {} MB in {secs:.2} s (stream {:.2} s, commit {:.3} s), {} chunks, new bytes {:.1}%",
            human(f.size as f64 / 1e6),
            up.stream.as_secs_f64(),
            up.commit.as_secs_f64(),
            up.file.chunk_count,
            100.0 * up.version.new_bytes as f64 / f.size as f64
        );
        if rep == 0 && state.base.is_none() {
            state.base = Some(Base {
                dataset,
                version: up.version.name.clone(),
                file: f,
            });
        } else {
            remove(&f.path);
        }
    }
    let n = s.upload_reps;
    let rate = median(&rates);
    let detail = format!(
        "{} MB CSV ({} rows, 14 columns) into a new version of a fresh dataset: UploadDatasetFile in 1 MiB chunk messages read from disk, then CommitDatasetVersion(skip_profile); first byte to commit answer; median of {n} ({}); new content each rep (new bytes {})",
        human(size as f64 / 1e6),
        human(s.rows as f64),
        list(&rates),
        new_shares
            .iter()
            .map(|x| format!("{:.0}%", 100.0 * x))
            .collect::<Vec<_>>()
            .join(", ")
    );
    target_figure(
        ctx,
        report,
        verdicts,
        "dataset_upload_mb_per_s",
        rate,
        "MB/s",
        Target::AtLeast(UPLOAD_TARGET_MB_S),
        true,
        detail,
    );
    report.info(
        "dataset_upload_stream_mb_per_s",
        median(&stream_rates),
        "MB/s",
        format!(
            "UploadDatasetFile alone (first byte to its answer); median of {n} ({})",
            list(&stream_rates)
        ),
    );
    report.info(
        "dataset_commit_unprofiled_s",
        median(&commit_s),
        "s",
        format!(
            "CommitDatasetVersion(skip_profile) of the upload; median of {n} ({})",
            list(&commit_s)
        ),
    );
    Ok(())
}

async fn profile(ctx: &Ctx, state: &mut State, report: &mut Report) -> Result<()> {
    let s = &ctx.sizes;
    let base = ensure_base(ctx, state).await?;
    let f = &base.file;
    let mut c = client(&ctx.url).await?;
    let mut rates = Vec::new();
    let mut secs_all = Vec::new();
    for rep in 0..s.profile_reps {
        let dataset = format!("datasets/bench-{}-prof{rep}", ctx.tag);
        // Upload without committing (the bytes are stored already: fast, not the figure).
        let up = upload_version(&mut c, &dataset, f, None).await?;
        let (v, took) = commit(&mut c, &up.version.name, false).await?;
        check_committed(&v, f)?;
        let p = v
            .profile
            .as_ref()
            .context("the profiled commit returned no profile")?;
        ensure!(
            p.num_rows == f.rows as i64,
            "the profile counts {} rows, the file has {}",
            p.num_rows,
            f.rows
        );
        ensure!(
            p.features.len() == 14,
            "the profile has {} columns, the file 14",
            p.features.len()
        );
        let secs = took.as_secs_f64();
        secs_all.push(secs);
        rates.push(f.size as f64 / 1e6 / secs);
        eprintln!(
            "  rep {rep}: commit with profile {secs:.2} s ({} rows, {} columns)",
            p.num_rows,
            p.features.len()
        );
    }
    report.figure(
        "dataset_profile_mb_per_s",
        median(&rates),
        "MB/s",
        format!(
            "CommitDatasetVersion with profiling of a {} MB CSV (schema and per-column profile of 14 columns) over the file size; median of {} ({}); no target",
            human(f.size as f64 / 1e6),
            s.profile_reps,
            list(&rates)
        ),
    );
    report.info(
        "dataset_profile_commit_s",
        median(&secs_all),
        "s",
        "the same commits, seconds",
    );
    Ok(())
}

async fn restore(
    ctx: &Ctx,
    state: &mut State,
    report: &mut Report,
    verdicts: &mut Vec<String>,
) -> Result<()> {
    let s = &ctx.sizes;
    let base = ensure_base(ctx, state).await?;
    let f = &base.file;
    let mut c = client(&ctx.url).await?;
    let dest = ctx.dir.path().join("restored.csv");
    let mut rates = Vec::new();
    for rep in 0..s.restore_reps {
        let got = download(&mut c, &base.version, &dest).await?;
        let secs = got.elapsed.as_secs_f64();
        verify_restored(&dest, f, &got).await?;
        remove(&dest);
        rates.push(f.size as f64 / 1e6 / secs);
        eprintln!(
            "  rep {rep}: {} MB in {secs:.2} s, sha256 verified",
            human(f.size as f64 / 1e6)
        );
    }
    let detail = format!(
        "DownloadDatasetFile of the {} MB file into a local file (page cache, no fsync), request to last byte written; SHA-256 verified after (untimed); median of {} ({})",
        human(f.size as f64 / 1e6),
        s.restore_reps,
        list(&rates)
    );
    target_figure(
        ctx,
        report,
        verdicts,
        "dataset_restore_mb_per_s",
        median(&rates),
        "MB/s",
        Target::AtLeast(RESTORE_TARGET_MB_S),
        true,
        detail,
    );
    Ok(())
}

async fn delta(
    ctx: &Ctx,
    state: &mut State,
    report: &mut Report,
    verdicts: &mut Vec<String>,
) -> Result<()> {
    let base = ensure_base(ctx, state).await?;
    let f = &base.file;
    let rows = f.rows;
    let changed = (rows / 100).max(1);
    let mut c = client(&ctx.url).await?;

    // 1% of the rows in one block starting mid-file.
    let start = rows / 2;
    let spec = GenSpec {
        rows,
        seed: f.seed,
        change: Change::Block {
            start,
            len: changed,
        },
    };
    let block = gen_file(ctx, "delta-block.csv", spec).await?;
    ensure!(
        block.sha256 != f.sha256,
        "the block-changed file equals the original"
    );
    let up = upload_version(&mut c, &base.dataset, &block, Some(true)).await?;
    remove(&block.path);
    let v = get_version(&mut c, &up.version.name).await?;
    let ratio = v.new_bytes as f64 / f.size as f64;
    eprintln!(
        "  block: version {}: {} new bytes of {} ({:.2}%)",
        v.version,
        human(v.new_bytes as f64),
        human(f.size as f64),
        100.0 * ratio
    );
    target_figure(
        ctx,
        report,
        verdicts,
        "dataset_delta_stored_ratio",
        ratio,
        "ratio",
        Target::AtMost(DELTA_TARGET_RATIO),
        false,
        format!(
            "new bytes stored for version {} of the dataset ({} rows = 1% changed in one block from row {start}, same row count) over the {} MB file: {} bytes",
            v.version,
            human(changed as f64),
            human(f.size as f64 / 1e6),
            human(v.new_bytes as f64)
        ),
    );

    // 1% of the rows at random places.
    let marks = scattered_rows(rows, changed, f.seed ^ 0xD1CE);
    let spec = GenSpec {
        rows,
        seed: f.seed,
        change: Change::Rows(marks),
    };
    let scattered = gen_file(ctx, "delta-scattered.csv", spec).await?;
    let up = upload_version(&mut c, &base.dataset, &scattered, Some(true)).await?;
    remove(&scattered.path);
    let v = get_version(&mut c, &up.version.name).await?;
    let ratio = v.new_bytes as f64 / f.size as f64;
    eprintln!(
        "  scattered: version {}: {} new bytes ({:.2}%)",
        v.version,
        human(v.new_bytes as f64),
        100.0 * ratio
    );
    report.figure(
        "dataset_delta_scattered_ratio",
        ratio,
        "ratio",
        format!(
            "new bytes stored for version {} ({} rows = 1% changed at random places, seeded) over the file size: {} bytes; no target (content-defined chunks of ~1 MiB: nearly every chunk holds a changed row)",
            v.version,
            human(changed as f64),
            human(v.new_bytes as f64)
        ),
    );
    Ok(())
}

/// The dataset with F as a committed version: the upload section's first, or uploaded here
/// when that section did not run.
async fn ensure_base<'a>(ctx: &Ctx, state: &'a mut State) -> Result<&'a Base> {
    if state.base.is_none() {
        eprintln!("  (uploading the dataset file first)");
        let f = gen_file(ctx, "base.csv", GenSpec::plain(ctx.sizes.rows, 1)).await?;
        let mut c = client(&ctx.url).await?;
        let dataset = format!("datasets/bench-{}-base", ctx.tag);
        let up = upload_version(&mut c, &dataset, &f, Some(true)).await?;
        state.base = Some(Base {
            dataset,
            version: up.version.name,
            file: f,
        });
    }
    state.base.as_ref().context("no base dataset")
}

// ---- targets ----

#[derive(Debug, Clone, Copy)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn verdict(self, v: f64) -> (String, bool) {
        let (op, t, met) = match self {
            Target::AtLeast(t) => (">=", t, v >= t),
            Target::AtMost(t) => ("<=", t, v <= t),
        };
        (format!("target {op} {t}"), met)
    }
}

/// A figure with its target; `embedded_only` targets are judged on the SQLite backend only.
#[allow(clippy::too_many_arguments)]
fn target_figure(
    ctx: &Ctx,
    report: &mut Report,
    verdicts: &mut Vec<String>,
    name: &str,
    value: f64,
    unit: &str,
    target: Target,
    embedded_only: bool,
    detail: String,
) {
    let (text, met) = target.verdict(value);
    if embedded_only && ctx.backend != Backend::Sqlite {
        report.figure(
            name,
            value,
            unit,
            format!("{detail}; {text} is for the embedded default, not judged here"),
        );
        return;
    }
    let pf = if met { "PASS" } else { "FAIL" };
    report.figure(name, value, unit, format!("{detail}; {text}: {pf}"));
    verdicts.push(format!(
        "{name}{} {} {text}: {pf}",
        ctx.backend.suffix(),
        human(value)
    ));
}

// ---- the client ----

async fn client(url: &str) -> Result<Client> {
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

/// An upload: the version, its file, and where the time went.
struct Uploaded {
    version: pb::DatasetVersion,
    file: pb::DatasetFile,
    /// First byte sent to UploadDatasetFile's answer.
    stream: Duration,
    /// CommitDatasetVersion (zero when not committed).
    commit: Duration,
}

impl Uploaded {
    /// First byte sent to the commit's answer.
    fn total(&self) -> Duration {
        self.stream + self.commit
    }
}

/// Creates a PENDING version of `dataset` (`datasets/{d}`), uploads `f` into it and, with
/// `commit = Some(skip_profile)`, commits it. The returned version is the commit's answer, or
/// the PENDING one.
async fn upload_version(
    c: &mut Client,
    dataset: &str,
    f: &GenFile,
    commit_with: Option<bool>,
) -> Result<Uploaded> {
    let pending = c
        .create_dataset_version(pb::CreateDatasetVersionRequest {
            parent: dataset.to_string(),
            version: Some(pb::DatasetVersion {
                description: "steward-bench datasets".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .with_context(|| format!("CreateDatasetVersion in {dataset}"))?
        .into_inner();
    ensure!(
        pending.state() == pb::DatasetVersionState::Pending,
        "CreateDatasetVersion returned {} in state {:?}, not PENDING",
        pending.name,
        pending.state()
    );
    let (file, stream) = upload_file(c, &pending.name, f).await?;
    ensure!(
        file.size_bytes == f.size as i64 && file.sha256.eq_ignore_ascii_case(&f.sha256),
        "the server stored {} bytes with sha256 {}, the file has {} bytes with sha256 {}",
        file.size_bytes,
        file.sha256,
        f.size,
        f.sha256
    );
    let Some(skip_profile) = commit_with else {
        return Ok(Uploaded {
            version: pending,
            file,
            stream,
            commit: Duration::ZERO,
        });
    };
    let (version, commit_took) = commit(c, &pending.name, skip_profile).await?;
    check_committed(&version, f)?;
    Ok(Uploaded {
        version,
        file,
        stream,
        commit: commit_took,
    })
}

/// Streams `f` into the PENDING `version`: the header, then 1 MiB chunk messages read from
/// disk by a blocking task through a bounded channel. Returns the server's file and the time
/// from the first message to its answer.
async fn upload_file(
    c: &mut Client,
    version: &str,
    f: &GenFile,
) -> Result<(pb::DatasetFile, Duration)> {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::UploadDatasetFileRequest>(IN_FLIGHT_CHUNKS);
    let header = pb::UploadDatasetFileRequest {
        part: Some(Part::Header(pb::DatasetFileHeader {
            version: version.to_string(),
            path: FILE_PATH.into(),
            expected_sha256: f.sha256.clone(),
            expected_size: Some(f.size as i64),
        })),
    };
    let t = Instant::now();
    tx.send(header)
        .await
        .map_err(|_| anyhow::anyhow!("the request stream closed before the header"))?;
    let path = f.path.clone();
    let reader = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut sent = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = read_full(&mut file, &mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            sent += n as u64;
            let msg = pb::UploadDatasetFileRequest {
                part: Some(Part::Chunk(buf.into())),
            };
            if tx.blocking_send(msg).is_err() {
                // The call ended early; its status says why.
                break;
            }
        }
        Ok(sent)
    });
    let answer = c.upload_dataset_file(ReceiverStream::new(rx)).await;
    let took = t.elapsed();
    let sent = reader.await.context("the file reader panicked")??;
    let file = answer.context("UploadDatasetFile")?.into_inner();
    ensure!(
        sent == f.size,
        "read {sent} bytes of {} from {}",
        f.size,
        f.path.display()
    );
    Ok((file, took))
}

async fn commit(
    c: &mut Client,
    version: &str,
    skip_profile: bool,
) -> Result<(pb::DatasetVersion, Duration)> {
    let t = Instant::now();
    let v = c
        .commit_dataset_version(pb::CommitDatasetVersionRequest {
            name: version.to_string(),
            expected_file_count: 1,
            expected_digest: String::new(),
            skip_profile,
            request_id: String::new(),
        })
        .await
        .with_context(|| format!("CommitDatasetVersion {version}"))?
        .into_inner();
    Ok((v, t.elapsed()))
}

fn check_committed(v: &pb::DatasetVersion, f: &GenFile) -> Result<()> {
    ensure!(
        v.state() == pb::DatasetVersionState::Committed,
        "{} is {:?} after its commit",
        v.name,
        v.state()
    );
    ensure!(
        v.file_count == 1 && v.size_bytes == f.size as i64,
        "{} holds {} files of {} bytes, expected 1 of {}",
        v.name,
        v.file_count,
        v.size_bytes,
        f.size
    );
    Ok(())
}

async fn get_version(c: &mut Client, name: &str) -> Result<pb::DatasetVersion> {
    let v = c
        .get_dataset_version(pb::GetDatasetVersionRequest {
            name: name.to_string(),
        })
        .await
        .with_context(|| format!("GetDatasetVersion {name}"))?
        .into_inner();
    ensure!(
        v.state() == pb::DatasetVersionState::Committed,
        "{name} is {:?}",
        v.state()
    );
    Ok(v)
}

/// A finished download.
struct Downloaded {
    /// The file as the first message described it.
    file: pb::DatasetFile,
    /// Bytes written.
    bytes: u64,
    /// Request to the last byte written.
    elapsed: Duration,
}

/// Downloads `FILE_PATH` of `version` into `dest`, written by a blocking task.
async fn download(c: &mut Client, version: &str, dest: &Path) -> Result<Downloaded> {
    let t = Instant::now();
    let mut stream = c
        .download_dataset_file(pb::DownloadDatasetFileRequest {
            version: version.to_string(),
            path: FILE_PATH.into(),
        })
        .await
        .with_context(|| format!("DownloadDatasetFile {version}"))?
        .into_inner();
    let first = stream
        .message()
        .await
        .context("DownloadDatasetFile stream")?
        .context("DownloadDatasetFile answered an empty stream")?;
    let file = first
        .file
        .context("the first DownloadDatasetFile message has no file")?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<prost::bytes::Bytes>(IN_FLIGHT_CHUNKS);
    let path = dest.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut out =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut n = 0u64;
        while let Some(b) = rx.blocking_recv() {
            out.write_all(&b)
                .with_context(|| format!("writing {}", path.display()))?;
            n += b.len() as u64;
        }
        Ok(n)
    });
    let mut pending = (!first.chunk.is_empty()).then_some(first.chunk);
    let mut stream_err = None;
    loop {
        if let Some(b) = pending.take()
            && tx.send(b).await.is_err()
        {
            // The writer failed; its error is below.
            break;
        }
        match stream.message().await {
            Ok(Some(m)) => {
                if m.file.is_some() {
                    stream_err = Some(anyhow::anyhow!(
                        "a later DownloadDatasetFile message carries a file again"
                    ));
                    break;
                }
                pending = Some(m.chunk);
            }
            Ok(None) => break,
            Err(s) => {
                stream_err = Some(anyhow::Error::new(s).context("DownloadDatasetFile stream"));
                break;
            }
        }
    }
    drop(tx);
    let bytes = writer.await.context("the file writer panicked")??;
    let elapsed = t.elapsed();
    if let Some(e) = stream_err {
        return Err(e);
    }
    Ok(Downloaded {
        file,
        bytes,
        elapsed,
    })
}

/// Checks a restored file against the uploaded one: size, the first message's sha256 and the
/// SHA-256 of the bytes on disk.
async fn verify_restored(dest: &Path, f: &GenFile, got: &Downloaded) -> Result<()> {
    ensure!(
        got.bytes == f.size && got.file.size_bytes == f.size as i64,
        "restored {} bytes (announced {}), uploaded {}",
        got.bytes,
        got.file.size_bytes,
        f.size
    );
    ensure!(
        got.file.sha256.eq_ignore_ascii_case(&f.sha256),
        "the download announced sha256 {}, the uploaded file has {}",
        got.file.sha256,
        f.sha256
    );
    let path = dest.to_path_buf();
    let (hash, _) = tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .context("the hasher panicked")??;
    ensure!(
        hash == f.sha256,
        "the restored bytes have sha256 {hash}, the uploaded file {}",
        f.sha256
    );
    Ok(())
}

// ---- data ----

/// Which rows of a file differ from the plain file of the same seed.
#[derive(Debug, Clone)]
enum Change {
    None,
    /// Rows `start..start + len`.
    Block {
        start: u64,
        len: u64,
    },
    /// Rows marked true.
    Rows(Vec<bool>),
}

/// What a generated CSV holds: `rows` rows, row `i` a function of (`seed`, `i`) alone except
/// the changed rows (another seed), so a changed file differs from the plain one exactly
/// there.
#[derive(Debug, Clone)]
struct GenSpec {
    rows: u64,
    seed: u64,
    change: Change,
}

impl GenSpec {
    fn plain(rows: u64, seed: u64) -> GenSpec {
        GenSpec {
            rows,
            seed,
            change: Change::None,
        }
    }

    fn row_seed(&self, i: u64) -> u64 {
        match &self.change {
            Change::Block { start, len } if i >= *start && i < start + len => {
                self.seed ^ SALT_BLOCK
            }
            Change::Rows(m) if m[i as usize] => self.seed ^ SALT_SCATTERED,
            _ => self.seed,
        }
    }
}

/// A generated file on disk.
#[derive(Debug, Clone)]
struct GenFile {
    path: PathBuf,
    size: u64,
    /// Lower-case hex.
    sha256: String,
    rows: u64,
    seed: u64,
}

/// Generates `spec` into `name` in the data dir (untimed, on a blocking thread).
async fn gen_file(ctx: &Ctx, name: &str, spec: GenSpec) -> Result<GenFile> {
    let path = ctx.dir.path().join(name);
    let t = Instant::now();
    let f = tokio::task::spawn_blocking(move || generate(&path, &spec))
        .await
        .context("the generator panicked")??;
    eprintln!(
        "  generated {} ({} MB, {} rows) in {:.1} s",
        name,
        human(f.size as f64 / 1e6),
        human(f.rows as f64),
        t.elapsed().as_secs_f64()
    );
    Ok(f)
}

const HEADER: &[u8] = b"id,f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,color,region,tier\n";
const COLORS: [&str; 8] = [
    "red", "green", "blue", "yellow", "purple", "orange", "black", "white",
];
const REGIONS: [&str; 7] = [
    "eu-west-1",
    "eu-central-1",
    "us-east-1",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
    "sa-east-1",
];
const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];

/// Writes the CSV of `spec` to `path` (synced to disk), hashing it on the way.
fn generate(path: &Path, spec: &GenSpec) -> Result<GenFile> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut h = Sha256::new();
    let mut out = Vec::with_capacity(GEN_BUF + 512);
    let mut size = 0u64;
    out.extend_from_slice(HEADER);
    for i in 0..spec.rows {
        write_row(&mut out, i, spec.row_seed(i));
        if out.len() >= GEN_BUF {
            h.update(&out);
            file.write_all(&out)
                .with_context(|| format!("writing {}", path.display()))?;
            size += out.len() as u64;
            out.clear();
        }
    }
    h.update(&out);
    file.write_all(&out)
        .with_context(|| format!("writing {}", path.display()))?;
    size += out.len() as u64;
    // Flushed before any timing starts, so the disk is not still writing the input file while
    // the server writes what it receives (it stays in the page cache for reading).
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(GenFile {
        path: path.to_path_buf(),
        size,
        sha256: hex::encode(h.finalize()),
        rows: spec.rows,
        seed: spec.seed,
    })
}

/// SplitMix64: the next value of the sequence in `state`.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A skewed pick from `n` (index `u^2 * n`, `u` uniform: the first values are the common ones).
fn skewed(r: u64, n: usize) -> usize {
    let u = (r >> 40) as f64 / (1u64 << 24) as f64;
    ((u * u * n as f64) as usize).min(n - 1)
}

/// Row `i`: the id, 10 fixed-point numbers (1-4 integer digits, 3 or 2 decimals, some
/// signed) and 3 categories, all from `seed` and `i`.
fn write_row(out: &mut Vec<u8>, i: u64, seed: u64) {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03);
    push_u64(out, i);
    for j in 0..10u32 {
        let r = splitmix(&mut s);
        out.push(b',');
        let (scale, decimals) = if j < 5 { (1000, 3) } else { (100, 2) };
        let range = 10u64.pow(1 + j % 4) * scale;
        let v = r % range;
        if j % 3 == 1 && r >> 63 == 1 {
            out.push(b'-');
        }
        push_u64(out, v / scale);
        out.push(b'.');
        push_padded(out, v % scale, decimals);
    }
    let r = splitmix(&mut s);
    out.push(b',');
    out.extend_from_slice(COLORS[skewed(r, COLORS.len())].as_bytes());
    let r = splitmix(&mut s);
    out.push(b',');
    out.extend_from_slice(REGIONS[skewed(r, REGIONS.len())].as_bytes());
    let r = splitmix(&mut s);
    out.push(b',');
    out.extend_from_slice(TIERS[skewed(r, TIERS.len())].as_bytes());
    out.push(b'\n');
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut k = buf.len();
    loop {
        k -= 1;
        buf[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[k..]);
}

/// `v` with leading zeros to `width` digits.
fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut v = v;
    for k in (20 - width..20).rev() {
        buf[k] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[20 - width..]);
}

/// `k` distinct rows of `rows`, chosen at random (seeded).
fn scattered_rows(rows: u64, k: u64, seed: u64) -> Vec<bool> {
    let mut marks = vec![false; rows as usize];
    let mut s = seed;
    let mut n = 0;
    while n < k.min(rows) {
        let i = (splitmix(&mut s) % rows) as usize;
        if !marks[i] {
            marks[i] = true;
            n += 1;
        }
    }
    marks
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// SHA-256 (hex) and size of a file.
fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut size = 0u64;
    loop {
        let n = read_full(&mut file, &mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(h.finalize()), size))
}

/// Removes a file, ignoring errors (the temp dir goes at the end anyway).
fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// The median of non-empty samples (NaN when empty).
fn median(v: &[f64]) -> f64 {
    stats::median(v).unwrap_or(f64::NAN)
}

/// `1.23, 4.56` (for details).
fn list(v: &[f64]) -> String {
    v.iter().map(|x| human(*x)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn rows_of(spec: &GenSpec) -> Vec<Vec<u8>> {
        (0..spec.rows)
            .map(|i| {
                let mut out = Vec::new();
                write_row(&mut out, i, spec.row_seed(i));
                out
            })
            .collect()
    }

    #[test]
    fn bytes_per_row_is_about_100() {
        let rows = rows_of(&GenSpec::plain(20_000, 1));
        let total: usize = rows.iter().map(Vec::len).sum();
        let per_row = total as f64 / rows.len() as f64;
        assert!((95.0..=110.0).contains(&per_row), "{per_row} bytes a row");
        // The normal size is about 1e9 bytes.
        let n = Sizes::normal().rows as f64 * per_row;
        assert!((0.95e9..=1.05e9).contains(&n), "{n} bytes");
        for r in &rows[..100] {
            let text = std::str::from_utf8(r).unwrap();
            assert_eq!(text.matches(',').count(), 13, "{text}");
            assert!(text.ends_with('\n'));
        }
    }

    #[test]
    fn changes_touch_exactly_the_chosen_rows() {
        let plain = rows_of(&GenSpec::plain(1_000, 7));
        let block = rows_of(&GenSpec {
            rows: 1_000,
            seed: 7,
            change: Change::Block {
                start: 500,
                len: 10,
            },
        });
        let differ: Vec<usize> = (0..1_000).filter(|&i| plain[i] != block[i]).collect();
        assert_eq!(differ, (500..510).collect::<Vec<_>>());
        let marks = scattered_rows(1_000, 10, 3);
        assert_eq!(marks.iter().filter(|m| **m).count(), 10);
        let scattered = rows_of(&GenSpec {
            rows: 1_000,
            seed: 7,
            change: Change::Rows(marks.clone()),
        });
        for i in 0..1_000 {
            assert_eq!(plain[i] != scattered[i], marks[i], "row {i}");
        }
        // Deterministic, and other seeds give other content.
        assert_eq!(plain, rows_of(&GenSpec::plain(1_000, 7)));
        assert_ne!(plain[0], rows_of(&GenSpec::plain(1, 8))[0]);
    }

    #[test]
    fn generated_file_hash_matches_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        let f = generate(&p, &GenSpec::plain(50_000, 2)).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len() as u64, f.size);
        assert!(bytes.starts_with(HEADER));
        assert_eq!(sha(&bytes), f.sha256);
        assert_eq!(hash_file(&p).unwrap(), (f.sha256.clone(), f.size));
    }

    #[test]
    fn fixed_point_formatting() {
        let mut out = Vec::new();
        push_u64(&mut out, 0);
        out.push(b' ');
        push_u64(&mut out, 1_234_567);
        out.push(b' ');
        push_padded(&mut out, 7, 3);
        out.push(b' ');
        push_padded(&mut out, 42, 2);
        assert_eq!(out, b"0 1234567 007 42");
    }
}
