//! The `deployment` suite: `Route` throughput and latency with durable decision records (one
//! client, then many requests in flight over a few HTTP/2 connections), the 90/10 split of the
//! answers over distinct routing keys, `ModelInfer` throughput on the shipped demo ONNX model,
//! and the server's peak memory.
//!
//! The seed is what a team does before it serves a model: two training runs logged through the
//! tracking API, each with the demo model (`model/model.onnx`), a dataset input and a code
//! version; two registered models (one for Route, one for ModelInfer) with a version from each
//! run, approved by another actor; and their deployments in `environments/staging` that split
//! 90/10 between the versions (`stable` v1, `canary` v2). Every section warms up first, is bounded
//! in request count and time, checks every answer (the variant, revision and version; the
//! prediction's shape and range), reads a sample of the decision records back with
//! GetDecision, and records the CPU the server, the client and Postgres used while it ran.

mod client;
mod h2c;
mod hpack;
mod load;
mod seed;
mod split;
// The targets and verdicts are the registry suite's, shared rather than copied (the registry
// module keeps its `target` private; making it `pub(crate)` there would remove this).
#[expect(
    clippy::duplicate_mod,
    reason = "the registry suite's target module, compiled once more here"
)]
#[path = "registry/target.rs"]
mod target;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::procfs::CpuProbe;
use crate::report::{Report, human};
use crate::server::Server;
use crate::{Backend, Opts};

/// Longest any one section may take.
const SECTION_BUDGET: Duration = Duration::from_secs(20 * 60);

/// Names of the sections, in the order they run.
pub const SECTIONS: [&str; 3] = ["route_sequential", "route", "infer"];

/// Sizes of every section; [`Sizes::quick`] divides the counts by about 20.
#[derive(Debug, Clone)]
struct Sizes {
    /// HTTP/2 connections the concurrent sections spread their requests over.
    connections: usize,
    /// Requests in flight at any time in the concurrent sections (closed loop: each of these
    /// tasks sends its next request when the previous one was answered).
    in_flight: usize,
    /// Sequential Route calls of one client before the timed ones, and timed.
    seq_warmup: usize,
    seq_calls: usize,
    /// Concurrent Route calls before the timed reps, and per timed rep (each with its own
    /// routing key, so the split check sees `route_per_rep * route_reps` distinct keys).
    route_warmup: usize,
    route_per_rep: usize,
    route_reps: usize,
    /// Route calls per rep of the open loop at the target rate, and its reps.
    open_per_rep: usize,
    open_reps: usize,
    /// Concurrent ModelInfer calls before the timed reps, and per timed rep.
    infer_warmup: usize,
    infer_per_rep: usize,
    infer_reps: usize,
    /// Decision records read back per section (spread evenly over its timed calls).
    verify_sample: usize,
}

impl Sizes {
    fn normal() -> Sizes {
        Sizes {
            connections: 4,
            in_flight: 64,
            seq_warmup: 1_000,
            seq_calls: 10_000,
            route_warmup: 6_400,
            route_per_rep: 64_000,
            route_reps: 3,
            open_per_rep: 60_000,
            open_reps: 3,
            infer_warmup: 6_400,
            infer_per_rep: 32_000,
            infer_reps: 3,
            verify_sample: 1_000,
        }
    }

    fn quick() -> Sizes {
        let n = Sizes::normal();
        Sizes {
            seq_warmup: n.seq_warmup / 20,
            seq_calls: n.seq_calls / 20,
            route_warmup: n.route_warmup / 20,
            route_per_rep: n.route_per_rep / 20,
            open_per_rep: n.open_per_rep / 20,
            infer_warmup: n.infer_warmup / 20,
            infer_per_rep: n.infer_per_rep / 20,
            verify_sample: n.verify_sample / 10,
            ..n
        }
    }
}

/// What every section needs.
struct Ctx {
    url: String,
    sizes: Sizes,
    probe: CpuProbe,
    /// Distinguishes this run's request ids and routing keys from earlier runs on the server.
    tag: String,
    /// The seeded model and deployments.
    seed: seed::Seed,
}

/// Runs the suite and prints its report (also when a section fails, with what was measured).
pub async fn run(opts: &Opts) -> Result<()> {
    let sizes = if opts.quick {
        Sizes::quick()
    } else {
        Sizes::normal()
    };
    let mut report = crate::report::begin("deployment", &SECTIONS, opts)?;

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
        report.note(format!(
            "seed: {} (Route) and {} (ModelInfer) in environments/staging, each stable v1 90% \
             / canary v2 10%, v1 and v2 from two runs with the demo ONNX model, approved",
            seed.route.deployment, seed.infer.deployment
        ));
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
                "route_sequential" => load::route_sequential(ctx, report).await,
                "route" => load::route(ctx, report, verdicts).await,
                "infer" => load::infer(ctx, report, verdicts).await,
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
        assert_eq!(n.route_per_rep / q.route_per_rep, 20);
        assert_eq!(n.open_per_rep / q.open_per_rep, 20);
        // The open loop runs at least a second per rep at the target rate.
        assert!(n.open_per_rep as f64 >= load::ROUTE_TARGET_PER_S);
        assert_eq!(n.infer_per_rep / q.infer_per_rep, 20);
        assert_eq!(n.seq_calls / q.seq_calls, 20);
        // The split check needs 100,000 distinct keys in a full run.
        assert!(n.route_per_rep * n.route_reps >= 100_000);
        assert!(n.in_flight >= 64 && n.connections >= 2);
        // Every in-flight task gets the same share, and every connection the same tasks.
        for s in [&n, &q] {
            assert_eq!(s.in_flight % s.connections, 0);
            for count in [
                s.route_warmup,
                s.route_per_rep,
                s.infer_warmup,
                s.infer_per_rep,
            ] {
                assert_eq!(count % s.in_flight, 0, "{count}");
            }
            assert!(s.verify_sample > 0 && s.verify_sample <= s.route_per_rep);
        }
    }
}
