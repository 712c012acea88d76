//! The `registry` suite: CreateModelVersion throughput from many concurrent clients (from a
//! run's artifacts, and from external URIs), alias resolution latency (GetModelVersion on
//! `registeredModels/{m}@champion`, one client and 8 concurrent clients), and the server's
//! peak memory.
//!
//! The seed is one experiment with one run (params, metrics, tags, a dataset input and a few
//! small files under `model/`) logged through the tracking API. Every section warms up first, is
//! bounded in request count and time, checks what the server answered (distinct contiguous
//! version numbers, READY, the alias resolving to the version it was set to), and records the
//! CPU the server, the client and Postgres used while it ran.

mod client;
mod load;
mod seed;
mod target;

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use tonic::transport::Channel;

use crate::procfs::CpuProbe;
use crate::report::{Report, human};

use crate::server::Server;
use crate::{Backend, Opts};
use client::{ABORTED_RETRIES, MAX_ATTEMPTS};

/// The registry client over one HTTP/2 connection.
type Registry = RegistryServiceClient<Channel>;
/// The tracking client (seeding only).
type Tracking = TrackingServiceClient<Channel>;

/// Longest any one section may take.
const SECTION_BUDGET: Duration = Duration::from_secs(20 * 60);

/// Names of the sections, in the order they run.
pub const SECTIONS: [&str; 4] = [
    "version_create",
    "version_create_external",
    "alias_resolve",
    "alias_resolve_concurrent",
];

/// Sizes of every section; [`Sizes::quick`] divides the counts by about 20.
#[derive(Debug, Clone)]
struct Sizes {
    /// Concurrent clients creating versions, each on its own connection.
    create_clients: usize,
    /// Versions created (all clients together) before the timed reps.
    create_warmup: usize,
    /// Versions created per timed rep (all clients together).
    create_per_rep: usize,
    create_reps: usize,
    resolve_warmup: usize,
    /// Sequential GetModelVersion calls of the one-client figure.
    resolve_calls: usize,
    resolve_clients: usize,
    /// Calls of the concurrent figure (all clients together).
    resolve_concurrent_calls: usize,
}

impl Sizes {
    fn normal() -> Sizes {
        Sizes {
            create_clients: 16,
            create_warmup: 320,
            create_per_rep: 16_000,
            create_reps: 3,
            resolve_warmup: 2_000,
            resolve_calls: 20_000,
            resolve_clients: 8,
            resolve_concurrent_calls: 40_000,
        }
    }

    fn quick() -> Sizes {
        let n = Sizes::normal();
        Sizes {
            create_warmup: n.create_warmup / 20,
            create_per_rep: n.create_per_rep / 20,
            resolve_warmup: n.resolve_warmup / 20,
            resolve_calls: n.resolve_calls / 20,
            resolve_concurrent_calls: n.resolve_concurrent_calls / 20,
            ..n
        }
    }
}

/// What every section needs.
struct Ctx {
    url: String,
    sizes: Sizes,
    probe: CpuProbe,
    /// Distinguishes this run's names from earlier runs on the same server.
    tag: String,
    /// The seeded run every run-sourced version points at.
    seed: seed::Seed,
}

/// Runs the suite and prints its report (also when a section fails, with what was measured).
pub async fn run(opts: &Opts) -> Result<()> {
    let sizes = if opts.quick {
        Sizes::quick()
    } else {
        Sizes::normal()
    };
    let mut report = crate::report::begin("registry", &SECTIONS, opts)?;

    let (server, url) = crate::server::start_or_given(opts, &mut report).await?;

    let mut verdicts = Vec::new();
    let result = async {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let tag = format!("{}-{ms}", std::process::id());
        eprintln!("== seed");
        let seed = seed::seed(&url, &tag).await.context("seeding")?;
        let ctx = Ctx {
            url: url.clone(),
            sizes,
            probe: CpuProbe::new(
                server.as_ref().map(Server::pid),
                (opts.backend == Backend::Postgres).then_some("postgres"),
            ),
            tag,
            seed,
        };
        suite(&ctx, &mut report, &mut verdicts, &opts.only).await
    }
    .await;
    let retries = ABORTED_RETRIES.load(Ordering::Relaxed);
    if retries > 0 {
        report.note(format!(
            "{retries} calls answered ABORTED and were retried (at most {MAX_ATTEMPTS} attempts \
             each); the retries are inside the measured times"
        ));
    }
    crate::server::finish(server, result.is_err(), &mut report).await?;
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
    for name in SECTIONS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("== {name}");
        let fut = async {
            match name {
                "version_create" => load::version_create(ctx, report, verdicts, false).await,
                "version_create_external" => {
                    load::version_create(ctx, report, verdicts, true).await
                }
                "alias_resolve" => load::alias_resolve(ctx, report, verdicts, 1).await,
                "alias_resolve_concurrent" => {
                    let n = ctx.sizes.resolve_clients;
                    load::alias_resolve(ctx, report, verdicts, n).await
                }
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

/// `1.23, 4.56` (for details).
fn list(v: &[f64]) -> String {
    v.iter().map(|x| human(*x)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_is_about_twenty_times_smaller() {
        let (n, q) = (Sizes::normal(), Sizes::quick());
        assert_eq!(n.create_per_rep / q.create_per_rep, 20);
        assert_eq!(n.resolve_calls / q.resolve_calls, 20);
        assert!(n.resolve_calls >= 20_000 && n.create_clients >= 16);
        // Every client gets the same share.
        for s in [&n, &q] {
            assert_eq!(s.create_per_rep % s.create_clients, 0);
            assert_eq!(s.create_warmup % s.create_clients, 0);
            assert_eq!(s.resolve_concurrent_calls % s.resolve_clients, 0);
        }
    }
}
