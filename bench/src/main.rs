//! `steward-bench`: Steward's benchmark suites (the contract is the Benchmarks section of
//! TESTING.md).
//!
//! ```text
//! cargo build --release --workspace
//! cargo run --release -p steward-bench -- tracking [--addr ADDR] [--backend sqlite|postgres] [--quick]
//! cargo run --release -p steward-bench -- registry [--addr ADDR] [--backend sqlite|postgres] [--quick]
//! cargo run --release -p steward-bench -- deployment [--addr ADDR] [--backend sqlite|postgres] [--quick]
//! cargo run --release -p steward-bench -- monitoring [--addr ADDR] [--backend sqlite|postgres] [--quick] [--no-evidently]
//! cargo run --release -p steward-bench -- datasets [--addr ADDR] [--backend sqlite|postgres] [--quick]
//! ```
//!
//! Without `--addr` the suite starts the `steward` binary beside this executable as a child
//! process and measures its memory; it prints a table, then one JSON line per figure.

mod datasets;
mod deployment;
mod monitoring;
mod procfs;
mod registry;
mod report;
mod server;
mod stats;
mod tracking;

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Steward benchmark suites.
#[derive(Parser, Debug)]
#[command(name = "steward-bench", version, about)]
struct Cli {
    /// Which suite to run.
    #[command(subcommand)]
    suite: Suite,
}

/// The suites.
#[derive(Subcommand, Debug)]
enum Suite {
    /// Experiment tracking: metric ingest (stream and batch), CreateRun latency, metric
    /// history reads, run search, server memory.
    Tracking(Opts),
    /// Model registry: CreateModelVersion throughput (from a run's artifacts and from
    /// external URIs), alias resolution latency (one client and 8 clients), server memory.
    Registry(Opts),
    /// Deployment: Route throughput and latency with durable decision records (one client and
    /// 64 in flight), the 90/10 split over distinct keys, ModelInfer throughput on the demo
    /// ONNX model, server memory.
    Deployment(Opts),
    /// Monitoring: prediction ingest into windows, the drift report of a 1,000,000-row window
    /// (20 numeric + 10 categorical features), Evidently's report on the same data beside it.
    Monitoring {
        #[command(flatten)]
        opts: Opts,
        /// Skip the Evidently comparison (which creates a Python venv with Evidently once).
        #[arg(long)]
        no_evidently: bool,
    },
    /// Dataset versions: upload of a ~1 GB CSV version (profiling excluded), the commit's
    /// profiling speed, restore (download, SHA-256 verified), and the new bytes stored for a
    /// second version with 1% of the rows changed in one block and at random places, server
    /// memory.
    Datasets(Opts),
}

/// Options every suite takes.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// A running server (`127.0.0.1:PORT` or `http://127.0.0.1:PORT`); by default the suite
    /// starts `steward up` from beside this executable. Only loopback addresses are allowed.
    #[arg(long)]
    addr: Option<String>,
    /// The database the server runs on; figure names get the suffix `_pg` for Postgres.
    /// With `--addr` this only names the figures: the server's own configuration decides.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Every size shrunk about 20x (a smoke run; same code paths).
    #[arg(long)]
    quick: bool,
    /// Run only these sections (comma-separated; for investigating one area), e.g.
    /// `--only history,search`. Sections of tracking: create_run, ingest_stream, ingest_batch,
    /// ingest_batch_series, history, search; of registry: version_create,
    /// version_create_external, alias_resolve, alias_resolve_concurrent; of deployment:
    /// route_sequential, route, infer; of datasets: upload, profile, restore, delta.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Database backend of the server under test.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in the temporary data dir.
    Sqlite,
    /// A fresh database on the local Postgres (`$STEWARD_BENCH_PG_URL`).
    Postgres,
}

impl Backend {
    /// The figure-name suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => "_pg",
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl Opts {
    /// `--addr` as a URL, refusing anything but a loopback host.
    fn addr_url(&self) -> Result<Option<String>> {
        let Some(a) = &self.addr else {
            return Ok(None);
        };
        let url = if a.contains("://") {
            a.clone()
        } else {
            format!("http://{a}")
        };
        let host = url
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("");
        let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            bail!("--addr {a:?}: the benchmark only talks to 127.0.0.1 (or localhost)");
        }
        Ok(Some(url))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let run = async {
        match cli.suite {
            Suite::Tracking(opts) => tracking::run(&opts).await,
            Suite::Registry(opts) => registry::run(&opts).await,
            Suite::Deployment(opts) => deployment::run(&opts).await,
            Suite::Monitoring { opts, no_evidently } => monitoring::run(&opts, !no_evidently).await,
            Suite::Datasets(opts) => datasets::run(&opts).await,
        }
    };
    // Ctrl-C drops the suite future, whose guards stop the server and drop its database.
    let result = tokio::select! {
        r = run => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(addr: &str) -> Opts {
        Opts {
            addr: Some(addr.into()),
            backend: Backend::Sqlite,
            quick: false,
            only: Vec::new(),
        }
    }

    #[test]
    fn addr_must_be_loopback() {
        assert_eq!(
            opts("127.0.0.1:50051").addr_url().unwrap().as_deref(),
            Some("http://127.0.0.1:50051")
        );
        assert!(opts("http://localhost:1").addr_url().is_ok());
        assert!(opts("10.0.0.1:50051").addr_url().is_err());
        assert!(opts("http://example.com:80").addr_url().is_err());
    }

    #[test]
    fn cli_parses() {
        let c = Cli::try_parse_from(["b", "tracking", "--backend", "postgres", "--quick"]).unwrap();
        let Suite::Tracking(o) = c.suite else {
            panic!("tracking expected");
        };
        assert_eq!(o.backend, Backend::Postgres);
        assert!(o.quick);
        let c =
            Cli::try_parse_from(["b", "registry", "--quick", "--only", "alias_resolve"]).unwrap();
        let Suite::Registry(o) = c.suite else {
            panic!("registry expected");
        };
        assert_eq!(o.backend, Backend::Sqlite);
        assert_eq!(o.only, vec!["alias_resolve".to_string()]);
    }
}
