//! `steward demo`: the whole model lifecycle in under a minute, against an embedded server
//! started in this process on a temporary data dir. Training runs are tracked, the best run's
//! model is registered, approved, deployed to staging and rolled out to production as a canary
//! while ModelInfer traffic flows; an A/B test finds its winner; a shifted input distribution
//! makes the drift alert fire and the canary roll back; one prediction is explained back to
//! its training data; and the audit trail is exported and verified.
//!
//! Every step talks to the server through the same gRPC clients the other commands use (as
//! `alice`, who trains and deploys, and `bob`, who reviews) and prints what the server
//! returned. The data comes from a fixed hash ([`data`]), so every run tells the same story.

mod data;
mod evidence;
mod lifecycle;
mod rollout;
mod track;

use std::collections::HashMap;
use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use steward_config::{Config, Overrides};

use super::up;
use crate::cli::ClientArgs;

/// How many steps the demo has.
const STEPS: usize = 11;

/// Where each service is served: one embedded server for all, or four separate services.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `http://host:port` of the tracking service.
    pub tracking: String,
    /// Of the registry (and audit) service.
    pub registry: String,
    /// Of the deployment service (and the Open Inference Protocol).
    pub deployment: String,
    /// Of the monitoring service.
    pub monitoring: String,
}

impl Endpoints {
    fn all(url: String) -> Endpoints {
        Endpoints {
            tracking: url.clone(),
            registry: url.clone(),
            deployment: url.clone(),
            monitoring: url,
        }
    }
}

/// Runs `steward demo`; with `keep`, the data dir is `keep` (new or empty) and stays. With
/// `remote`, the story runs against those running services instead of an embedded server (the
/// data dir then only receives the audit export).
pub async fn run(keep: Option<PathBuf>, remote: Option<Endpoints>) -> Result<()> {
    let started = Instant::now();
    let dir = DataDir::create(keep)?;
    let tcfg = telemetry()?;
    let guard =
        steward_telemetry::init(&tcfg).map_err(|e| anyhow::anyhow!("telemetry: {}", e.message))?;
    let result = match remote {
        Some(endpoints) => against(&endpoints, dir.path()).await,
        None => with_server(dir.path()).await,
    };
    guard.shutdown();
    let kept = dir.finish();
    result?;
    let kept = kept?;
    println!();
    println!(
        "Done in {:.1}s: trained, registered, approved, deployed, rolled out, tested, rolled \
         back on drift, explained and audited.",
        started.elapsed().as_secs_f64()
    );
    match kept {
        Some(dir) => println!(
            "Data kept in {}: `steward up --data-dir {}` serves it again.",
            dir.display(),
            dir.display()
        ),
        None => println!("The temporary data dir is removed (keep it with --keep DIR)."),
    }
    Ok(())
}

/// Logs at `warn` unless `STEWARD_LOG` or `RUST_LOG` asks for more: the demo's output is its
/// story on stdout.
fn telemetry() -> Result<steward_telemetry::TelemetryConfig> {
    let mut tcfg = steward_telemetry::TelemetryConfig::from_env("steward")
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    if !set("STEWARD_LOG") && !set("RUST_LOG") {
        tcfg.log_filter = "warn".into();
    }
    Ok(tcfg)
}

/// The embedded server's configuration: SQLite and local artifacts in `dir`, a free port on
/// loopback, fast rollout and monitoring ticks, every decision's inputs kept. The `STEWARD_*`
/// settings of the environment are ignored, so the demo never touches a configured database.
fn config(dir: &Path) -> Result<Config> {
    let o = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.to_path_buf()),
        no_migrate: false,
    };
    let mut cfg = Config::load(None, &HashMap::new(), &o)?;
    cfg.rollout_tick_ms = 100;
    cfg.monitor_tick_ms = 100;
    cfg.decision_sample_rate = 1.0;
    Ok(cfg)
}

/// Starts the embedded server on `dir`, tells the story against it, then stops it gracefully
/// (also on Ctrl-C).
async fn with_server(dir: &Path) -> Result<()> {
    let cfg = config(dir)?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = up::serve(
        cfg,
        move |s| {
            let _ = ready_tx.send(s.addr);
        },
        async move {
            let _ = stop_rx.await;
        },
    );
    let story = async move {
        // Dropped unsent only when the server failed before serving; its error says why.
        let Ok(addr) = ready_rx.await else {
            return Ok(());
        };
        println!("Steward demo: the model lifecycle, end to end.");
        println!(
            "  server:   http://{addr} (embedded: SQLite, local artifacts, in-process events)"
        );
        println!("  data dir: {}", dir.display());
        println!("  people:   alice trains and deploys, bob reviews");
        let endpoints = Endpoints::all(format!("http://{addr}"));
        let result = tokio::select! {
            r = tell(&endpoints, dir) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        let _ = stop_tx.send(());
        result
    };
    let (served, told) = tokio::join!(server, story);
    told?;
    served.context("the embedded server failed")
}

/// Tells the story against running services.
async fn against(endpoints: &Endpoints, dir: &Path) -> Result<()> {
    println!("Steward demo: the model lifecycle, end to end.");
    println!(
        "  services: tracking {}, registry {}, deployment {}, monitoring {}",
        endpoints.tracking, endpoints.registry, endpoints.deployment, endpoints.monitoring
    );
    println!("  people:   alice trains and deploys, bob reviews");
    tokio::select! {
        r = tell(endpoints, dir) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    }
}

/// The steps, in order; the first failure stops the demo naming its step.
async fn tell(endpoints: &Endpoints, dir: &Path) -> Result<()> {
    let mut d = lifecycle::Demo::connect(endpoints, dir).await?;
    step(1, "Track training runs", d.track()).await?;
    step(2, "The model production serves today", d.today()).await?;
    step(3, "Register the best run's model", d.register_best()).await?;
    step(4, "Approve it", d.approve()).await?;
    step(5, "Deploy it to staging", d.staging()).await?;
    step(6, "Roll it out to production as a canary", d.canary()).await?;
    step(7, "Serve traffic through ModelInfer", d.serve_traffic()).await?;
    step(8, "Run an A/B test in staging", d.ab_test()).await?;
    step(
        9,
        "Shift the inputs until drift rolls the canary back",
        d.drift(),
    )
    .await?;
    step(10, "Explain a prediction", d.explain()).await?;
    step(11, "Export and verify the audit trail", d.audit()).await?;
    Ok(())
}

/// Prints step `n`'s title and runs it; a failure names the step.
async fn step<T>(n: usize, title: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
    println!();
    println!("[{n}/{STEPS}] {title}");
    f.await
        .with_context(|| format!("step {n}/{STEPS} ({title}) failed"))
}

/// Client options for `actor` against the service at `url`.
fn client_args(url: &str, actor: &str) -> ClientArgs {
    ClientArgs {
        addr: url.to_string(),
        token: std::env::var("STEWARD_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        actor: Some(actor.to_string()),
        json: false,
        tls_ca: std::env::var_os("STEWARD_TLS_CA").map(Into::into),
    }
}

/// Prints one line of the current step.
fn say(line: impl AsRef<str>) {
    println!("  {}", line.as_ref());
}

/// A spinner on stderr while the demo waits for the server, only when stdout is a terminal
/// (a piped demo prints its lines and nothing else). Cleared when dropped.
struct Waiting(Option<ProgressBar>);

impl Waiting {
    fn new(msg: &str) -> Waiting {
        if !std::io::stdout().is_terminal() {
            return Waiting(None);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"));
        bar.set_message(msg.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        Waiting(Some(bar))
    }

    /// Updates the spinner's message.
    fn set(&self, msg: String) {
        if let Some(b) = &self.0 {
            b.set_message(msg);
        }
    }

    /// Prints a line of the step without tearing the spinner.
    fn say(&self, line: impl AsRef<str>) {
        match &self.0 {
            Some(b) => b.suspend(|| say(line)),
            None => say(line),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// Polls `check` every 100 ms until it returns a value, failing after `limit` with `what`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("gave up after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The demo's data directory: a new temporary one, removed at the end, or `--keep DIR`.
struct DataDir {
    path: PathBuf,
    temp: Option<tempfile::TempDir>,
}

impl DataDir {
    fn create(keep: Option<PathBuf>) -> Result<DataDir> {
        match keep {
            Some(path) => {
                let empty = match std::fs::read_dir(&path) {
                    Ok(mut entries) => entries.next().is_none(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                    Err(e) => return Err(e).with_context(|| format!("--keep {}", path.display())),
                };
                if !empty {
                    bail!(
                        "--keep {}: the directory is not empty; give a new or empty one",
                        path.display()
                    );
                }
                std::fs::create_dir_all(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                Ok(DataDir { path, temp: None })
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("steward-demo-")
                    .tempdir()
                    .context("cannot create a temporary data dir")?;
                Ok(DataDir {
                    path: temp.path().to_path_buf(),
                    temp: Some(temp),
                })
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Removes a temporary dir (`None`), or returns the kept one.
    fn finish(self) -> Result<Option<PathBuf>> {
        match self.temp {
            Some(t) => {
                let p = t.path().display().to_string();
                t.close().with_context(|| format!("cannot remove {p}"))?;
                Ok(None)
            }
            None => Ok(Some(self.path)),
        }
    }
}
