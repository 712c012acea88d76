//! The `monitoring` suite: ingest of prediction records into monitor windows
//! (`monitor_ingest_per_s`), and the drift report of a 1,000,000-row window with 20 numeric and
//! 10 categorical features against a 100,000-row baseline (`drift_report_s`), with Evidently
//! 0.7.23's report on the same data timed beside it (`evidently_drift_report_s`) and the two
//! reports compared feature by feature.
//!
//! Data: deterministic (seeded). Numeric features are normal with their own mean and scale;
//! in the window, 5 of the 20 are shifted by half a standard deviation. Categorical features
//! have 5-14 categories with skewed shares; in the window, 2 of the 10 move mass between
//! categories. The baseline is created through `CreateBaseline` (a reference sample); the
//! window's rows go through `IngestPredictions` in the columnar form, 10,000 rows a call,
//! 4 calls in flight, each call durable when answered. The report is computed by the server
//! when the window is full; its time is the server's (`compute_ms`: reading the window's
//! chunks, decoding them and every statistic).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use steward_proto::monitoring as pb;
use steward_proto::monitoring::monitoring_service_client::MonitoringServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::procfs::CpuProbe;
use crate::report::human;
use crate::server::Server;
use crate::{Backend, Opts};

const NUMERIC: usize = 20;
const CATEGORICAL: usize = 10;
/// Rows per IngestPredictions call, and calls in flight.
const BATCH: usize = 10_000;
const IN_FLIGHT: usize = 4;

/// Names of the sections.
pub const SECTIONS: [&str; 2] = ["drift", "evidently"];

#[derive(Debug, Clone, Copy)]
struct Sizes {
    reference_rows: usize,
    window_rows: usize,
    reps: usize,
}

type Client = MonitoringServiceClient<Channel>;

/// One dataset: numeric columns, then categorical codes.
struct Data {
    numeric: Vec<Vec<f64>>,
    categorical: Vec<Vec<u8>>,
}

fn normal(r: &mut StdRng) -> f64 {
    let u: f64 = r.random::<f64>().max(1e-300);
    let v: f64 = r.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `rows` rows; `shifted` moves 5 numeric and 2 categorical features.
fn generate(rows: usize, seed: u64, shifted: bool) -> Data {
    let mut r = StdRng::seed_from_u64(seed);
    let numeric = (0..NUMERIC)
        .map(|j| {
            let (mean, scale) = (j as f64 * 3.0, 1.0 + j as f64 * 0.5);
            let shift = if shifted && j % 4 == 0 {
                0.5 * scale
            } else {
                0.0
            };
            (0..rows)
                .map(|_| mean + shift + scale * normal(&mut r))
                .collect()
        })
        .collect();
    let categorical = (0..CATEGORICAL)
        .map(|j| {
            let k = 5 + j as u32;
            let tilt = shifted && j % 5 == 0;
            (0..rows)
                .map(|_| {
                    // Skewed: category c with weight ~ 1/(c+1); tilted windows reverse it.
                    let u: f64 = r.random();
                    let c = ((u * u) * f64::from(k)) as u32;
                    (if tilt { k - 1 - c } else { c }) as u8
                })
                .collect()
        })
        .collect();
    Data {
        numeric,
        categorical,
    }
}

fn num_name(j: usize) -> String {
    format!("n{j}")
}

fn cat_name(j: usize) -> String {
    format!("c{j}")
}

fn label(code: u8) -> String {
    format!("k{code}")
}

fn columns(d: &Data, from: usize, to: usize) -> Vec<pb::Column> {
    let mut cols: Vec<pb::Column> = d
        .numeric
        .iter()
        .enumerate()
        .map(|(j, v)| pb::Column {
            name: num_name(j),
            kind: pb::FeatureKind::Numeric as i32,
            numbers: v[from..to].to_vec(),
            categories: vec![],
        })
        .collect();
    cols.extend(d.categorical.iter().enumerate().map(|(j, v)| pb::Column {
        name: cat_name(j),
        kind: pb::FeatureKind::Categorical as i32,
        numbers: vec![],
        categories: v[from..to].iter().map(|c| label(*c)).collect(),
    }));
    cols
}

async fn client(url: &str) -> Result<Client> {
    let ch = Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(300))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(MonitoringServiceClient::new(ch)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20))
}

/// Runs the suite and prints its report.
pub async fn run(opts: &Opts, evidently: bool) -> Result<()> {
    let sizes = if opts.quick {
        Sizes {
            reference_rows: 5_000,
            window_rows: 50_000,
            reps: 2,
        }
    } else {
        Sizes {
            reference_rows: 100_000,
            window_rows: 1_000_000,
            reps: 3,
        }
    };
    let mut report = crate::report::begin("monitoring", &SECTIONS, opts)?;
    let (server, url) = crate::server::start_or_given(opts, &mut report).await?;
    let want = |s: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == s);
    let probe = CpuProbe::new(
        server.as_ref().map(Server::pid),
        (opts.backend == Backend::Postgres).then_some("postgres"),
    );
    let tag = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let result = async {
        eprintln!("== data ({} reference rows, {} window rows)", sizes.reference_rows, sizes.window_rows);
        let reference = generate(sizes.reference_rows, 1, false);
        let window = generate(sizes.window_rows, 2, true);
        let mut c = client(&url).await?;
        let baseline = format!("bench-{tag}");
        c.create_baseline(pb::CreateBaselineRequest {
            baseline_id: baseline.clone(),
            model_version: String::new(),
            source: Some(pb::create_baseline_request::Source::Sample(pb::ReferenceSample {
                columns: columns(&reference, 0, sizes.reference_rows),
                prediction_column: String::new(),
            })),
            request_id: String::new(),
        })
        .await
        .context("CreateBaseline")?;
        let mut steward_report = None;
        if want("drift") {
            eprintln!("== drift");
            let mut rates = Vec::new();
            let mut compute = Vec::new();
            let start = probe.snapshot();
            for rep in 0..sizes.reps {
                let monitor = format!("bench-{tag}-{rep}");
                c.create_monitor(pb::CreateMonitorRequest {
                    monitor_id: monitor.clone(),
                    monitor: Some(pb::Monitor {
                        baseline: format!("baselines/{baseline}"),
                        window: Some(pb::Window {
                            size: Some(pb::window::Size::Count(sizes.window_rows as i64)),
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .context("CreateMonitor")?;
                let t = Instant::now();
                ingest(&url, &monitor, &window, &format!("{tag}-{rep}")).await?;
                let secs = t.elapsed().as_secs_f64();
                rates.push(sizes.window_rows as f64 / secs);
                eprintln!("  rep {rep}: {} rows in {secs:.2} s", sizes.window_rows);
                let r = wait_report(&mut c, &monitor).await?;
                compute.push(r.compute_ms as f64 / 1000.0);
                eprintln!(
                    "  report: {} ms, {} of {} features drifted",
                    r.compute_ms,
                    r.drifted_features,
                    r.features.len()
                );
                steward_report = Some(r);
            }
            report.usage("drift", probe.since(&start));
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let ingest_rate = med(&mut rates.clone());
            let drift_s = med(&mut compute.clone());
            report.figure(
                "monitor_ingest_per_s",
                ingest_rate,
                "records/s",
                format!(
                    "IngestPredictions, columnar form, {BATCH} rows a call, {IN_FLIGHT} in flight, 30 features; median of {} reps ({})",
                    sizes.reps,
                    rates.iter().map(|x| human(*x)).collect::<Vec<_>>().join(", ")
                ),
            );
            report.figure(
                "drift_report_s",
                drift_s,
                "s",
                format!(
                    "server time of the report of a {}-row window, {NUMERIC} numeric + {CATEGORICAL} categorical features vs {} reference rows; median of {} ({})",
                    sizes.window_rows,
                    sizes.reference_rows,
                    sizes.reps,
                    compute.iter().map(|x| human(*x)).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        if want("evidently") && evidently {
            eprintln!("== evidently");
            let dir = tempfile::tempdir()?;
            write_data(dir.path(), &reference, &window)?;
            drop(window);
            let py = venv()?;
            let script = repo_root()?.join("bench/scripts/evidently_drift.py");
            let out = std::process::Command::new(&py)
                .arg(&script)
                .arg(dir.path())
                .output()
                .with_context(|| format!("running {}", script.display()))?;
            if !out.status.success() {
                bail!(
                    "the Evidently script failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let j: serde_json::Value = serde_json::from_slice(&out.stdout)
                .context("the Evidently script's output is not JSON")?;
            let secs = j["seconds"].as_f64().context("no seconds in the Evidently output")?;
            report.figure(
                "evidently_drift_report_s",
                secs,
                "s",
                format!(
                    "Evidently {} DataDriftPreset on the same reference and window (pandas {}), report run only",
                    j["evidently_version"].as_str().unwrap_or("?"),
                    j["pandas_version"].as_str().unwrap_or("?")
                ),
            );
            if let Some(r) = &steward_report {
                report.note(compare(r, &j));
            }
        }
        Ok(())
    }
    .await;
    crate::server::finish(server, result.is_err(), &mut report).await?;
    if let Err(e) = &result {
        report.note(format!("SUITE FAILED: {e:#}"));
    }
    report.print();
    result
}

/// Ingests the window's rows, `BATCH` a call, `IN_FLIGHT` calls at once.
async fn ingest(url: &str, monitor: &str, d: &Data, tag: &str) -> Result<()> {
    let rows = d.numeric[0].len();
    let batches: Vec<(usize, usize)> = (0..rows)
        .step_by(BATCH)
        .map(|s| (s, (s + BATCH).min(rows)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let mut c = client(url).await?;
        let next = &next;
        let batches = &batches;
        tasks.push(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(from, to)) = batches.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let r = c
                    .ingest_predictions(pb::IngestPredictionsRequest {
                        monitor: format!("monitors/{monitor}"),
                        records: vec![],
                        columns: Some(pb::PredictionColumns {
                            request_ids: (from..to).map(|k| format!("{tag}-{k}")).collect(),
                            features: columns(d, from, to),
                            variant: "main".into(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .context("IngestPredictions")?
                    .into_inner();
                ensure!(
                    r.accepted == (to - from) as i64,
                    "a batch stored {} of {} rows",
                    r.accepted,
                    to - from
                );
            }
        });
    }
    for r in futures::future::join_all(tasks).await {
        r?;
    }
    Ok(())
}

async fn wait_report(c: &mut Client, monitor: &str) -> Result<pb::DriftReport> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match c
            .get_drift_report(pb::GetDriftReportRequest {
                monitor: format!("monitors/{monitor}"),
                window: 0,
            })
            .await
        {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) if s.code() == tonic::Code::NotFound && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(s) => bail!("GetDriftReport: {s}"),
        }
    }
}

/// Writes the data as the Evidently script reads it.
fn write_data(dir: &Path, reference: &Data, window: &Data) -> Result<()> {
    let meta = serde_json::json!({
        "numeric": (0..NUMERIC).map(num_name).collect::<Vec<_>>(),
        "categorical": (0..CATEGORICAL).map(cat_name).collect::<Vec<_>>(),
        "reference_rows": reference.numeric[0].len(),
        "current_rows": window.numeric[0].len(),
    });
    std::fs::write(dir.join("meta.json"), meta.to_string())?;
    for (side, d) in [("ref", reference), ("cur", window)] {
        for (j, v) in d.numeric.iter().enumerate() {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("{side}_{}.f64", num_name(j))), bytes)?;
        }
        for (j, v) in d.categorical.iter().enumerate() {
            std::fs::write(dir.join(format!("{side}_{}.u8", cat_name(j))), v)?;
        }
    }
    Ok(())
}

fn repo_root() -> Result<PathBuf> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map(Path::to_path_buf)
        .context("no repository root above bench/")
}

/// The Python of a venv with Evidently (created once, under `target/bench-evidently-venv`,
/// or `$STEWARD_BENCH_EVIDENTLY_VENV`).
fn venv() -> Result<PathBuf> {
    let dir = std::env::var_os("STEWARD_BENCH_EVIDENTLY_VENV")
        .map(PathBuf::from)
        .unwrap_or(repo_root()?.join("target/bench-evidently-venv"));
    let py = dir.join("bin/python");
    if !py.exists() {
        eprintln!("creating {} (Evidently 0.7.23; once) ...", dir.display());
        let ok = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()?
            .success();
        ensure!(ok, "python3 -m venv failed");
    }
    let req = repo_root()?.join("bench/scripts/requirements-evidently.txt");
    let ok = std::process::Command::new(dir.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&req)
        .status()?
        .success();
    ensure!(ok, "installing {} failed", req.display());
    Ok(py)
}

/// How Steward's report and Evidently's agree, feature by feature.
fn compare(r: &pb::DriftReport, j: &serde_json::Value) -> String {
    let mut same = 0;
    let mut max_diff: f64 = 0.0;
    let mut worst = String::new();
    for f in &r.features {
        let Some(e) = j["features"].get(&f.name) else {
            continue;
        };
        if e["drifted"].as_bool() == Some(f.drifted) {
            same += 1;
        }
        if let Some(s) = e["score"].as_f64() {
            let d = (s - f.score).abs();
            if d > max_diff {
                max_diff = d;
                worst = f.name.clone();
            }
        }
    }
    format!(
        "Steward vs Evidently on the same data: {same} of {} drift verdicts agree; dataset drift {} vs {}; largest score difference {max_diff:.3e} ({worst})",
        r.features.len(),
        r.dataset_drift,
        j["dataset_drift"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_deterministic_and_shifted_where_asked() {
        let a = generate(1000, 2, true);
        let b = generate(1000, 2, true);
        assert_eq!(a.numeric[3], b.numeric[3]);
        assert_eq!(a.categorical[1], b.categorical[1]);
        let base = generate(20_000, 1, false);
        let moved = generate(20_000, 1, true);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean(&moved.numeric[0]) - mean(&base.numeric[0]) - 0.5).abs() < 0.05);
        assert!((mean(&moved.numeric[1]) - mean(&base.numeric[1])).abs() < 0.05);
        assert!(moved.categorical[0].iter().all(|c| *c < 5));
    }
}
