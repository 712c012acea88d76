//! The measured sections: CreateModelVersion from concurrent clients, and alias resolution
//! (GetModelVersion on `registeredModels/{m}@champion`) from one or several clients.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use steward_proto::registry as pb;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::client::{registries, registry, retry_aborted};
use super::seed;
use super::target::{Target, target_figure};
use super::{Ctx, Registry, list};
use crate::report::Report;
use crate::stats::{self, Summary};

/// What one load task did: when it started and ended (after the common start), and its result.
struct Done<T> {
    start: Instant,
    end: Instant,
    out: T,
}

/// Runs `tasks` released together by a barrier; returns their outputs and the wall time from
/// the first start to the last end.
async fn together<T, F>(tasks: Vec<F>) -> Result<(Vec<T>, Duration)>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(tasks.len()));
    let mut set = JoinSet::new();
    for t in tasks {
        let b = barrier.clone();
        set.spawn(async move {
            b.wait().await;
            let start = Instant::now();
            let out = t.await?;
            Ok::<_, anyhow::Error>(Done {
                start,
                end: Instant::now(),
                out,
            })
        });
    }
    let mut done = Vec::new();
    while let Some(r) = set.join_next().await {
        done.push(r.context("a load task panicked")??);
    }
    let (Some(first), Some(last)) = (
        done.iter().map(|d| d.start).min(),
        done.iter().map(|d| d.end).max(),
    ) else {
        bail!("no load tasks");
    };
    Ok((done.into_iter().map(|d| d.out).collect(), last - first))
}

/// One created version: its number and digest, and how long the call took.
struct Created {
    version: i64,
    digest: String,
    latency: Duration,
}

/// The CreateModelVersion calls `reqs` of one client, in sequence; checks each is READY.
async fn create_versions(
    c: Registry,
    reqs: Vec<pb::CreateModelVersionRequest>,
) -> Result<Vec<Created>> {
    let mut out = Vec::with_capacity(reqs.len());
    for req in reqs {
        let t = Instant::now();
        let v = retry_aborted("CreateModelVersion", || {
            let (mut c, req) = (c.clone(), req.clone());
            async move { c.create_model_version(req).await }
        })
        .await?;
        let latency = t.elapsed();
        ensure!(
            v.status == pb::ModelVersionStatus::Ready as i32,
            "{} was created with status {} (READY expected)",
            v.name,
            v.status
        );
        out.push(Created {
            version: v.version,
            digest: v.content_digest,
            latency,
        });
    }
    Ok(out)
}

/// One round: `total` versions from `clients` concurrent clients (each on its own connection),
/// request indexes from `from`. Returns what was created and the wall time.
async fn create_round(
    ctx: &Ctx,
    model: &str,
    external: bool,
    from: usize,
    total: usize,
) -> Result<(Vec<Created>, Duration)> {
    let k = ctx.sizes.create_clients;
    let per = total / k;
    let clients = registries(&ctx.url, k).await?;
    let tasks = clients
        .into_iter()
        .enumerate()
        .map(|(j, c)| {
            let reqs = (from + j * per..from + (j + 1) * per)
                .map(|i| seed::version_request(&ctx.seed, model, &ctx.tag, external, i))
                .collect();
            create_versions(c, reqs)
        })
        .collect();
    let (outs, wall) = together(tasks).await?;
    Ok((outs.into_iter().flatten().collect(), wall))
}

/// Section: CreateModelVersion throughput of one model from `create_clients` concurrent
/// clients, from the seeded run's artifacts (`external` false) or from external URIs.
pub async fn version_create(
    ctx: &Ctx,
    report: &mut Report,
    verdicts: &mut Vec<String>,
    external: bool,
) -> Result<()> {
    let s = &ctx.sizes;
    let what = if external { "external" } else { "run" };
    let mut r = registry(&ctx.url).await?;
    let model = seed::create_model(&mut r, &format!("bench-create-{what}-{}", ctx.tag)).await?;

    let (mut all, _) = create_round(ctx, &model, external, 0, s.create_warmup).await?;
    let snap = ctx.probe.snapshot();
    let (mut rates, mut latencies) = (Vec::new(), Vec::new());
    for rep in 0..s.create_reps {
        let from = s.create_warmup + rep * s.create_per_rep;
        let (created, wall) = create_round(ctx, &model, external, from, s.create_per_rep).await?;
        let rate = created.len() as f64 / wall.as_secs_f64();
        eprintln!(
            "  rep {rep}: {} versions in {:.2} s = {rate:.0} versions/s",
            created.len(),
            wall.as_secs_f64()
        );
        rates.push(rate);
        latencies.extend(created.iter().map(|c| c.latency));
        all.extend(created);
    }
    let name = if external {
        "version_create_external_per_s"
    } else {
        "version_create_per_s"
    };
    report.usage(&format!("{name} (all reps)"), ctx.probe.since(&snap));

    // Every call got its own number, and together they are 1..=n.
    let mut numbers: Vec<i64> = all.iter().map(|c| c.version).collect();
    numbers.sort_unstable();
    let n = numbers.len() as i64;
    ensure!(
        numbers.iter().copied().eq(1..=n),
        "the {n} versions created are not numbered 1..={n} (first {:?}, last {:?})",
        numbers.first(),
        numbers.last()
    );
    if !external {
        let first = &all[0].digest;
        ensure!(
            first.starts_with("sha256:") && all.iter().all(|c| &c.digest == first),
            "versions of the same run directory got different digests (first {first:?})"
        );
    }

    let source = if external {
        "source_uri s3://... + content_digest (no tracking call)".to_string()
    } else {
        format!(
            "source_run + artifact_path {:?} ({} files, {} bytes)",
            seed::MODEL_DIR,
            ctx.seed.model_files,
            ctx.seed.model_bytes
        )
    };
    let detail = format!(
        "median of {} reps [{}]; {} clients x {} CreateModelVersion of one model, {source}, after {} warm-up",
        rates.len(),
        list(&rates),
        s.create_clients,
        s.create_per_rep / s.create_clients,
        s.create_warmup
    );
    let rate = stats::median(&rates).unwrap_or(f64::NAN);
    if external {
        report.figure(name, rate, "versions/s", detail);
    } else {
        target_figure(
            report,
            verdicts,
            name,
            rate,
            "versions/s",
            Target::AtLeast(2000.0),
            detail,
        );
    }
    let sum = Summary::of(&stats::millis(&latencies));
    let base = name.trim_end_matches("_per_s");
    let detail = format!("per call, under the load above ({} calls)", latencies.len());
    report.info(&format!("{base}_p50_ms"), sum.p50, "ms", detail.clone());
    report.info(&format!("{base}_p99_ms"), sum.p99, "ms", detail);
    Ok(())
}

/// `calls` sequential GetModelVersion of `name` from one client; checks each answer names
/// version `expect`; returns each call's latency.
async fn resolve_loop(
    mut c: Registry,
    name: String,
    expect: i64,
    calls: usize,
) -> Result<Vec<Duration>> {
    let mut lat = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let v = c
            .get_model_version(pb::GetModelVersionRequest { name: name.clone() })
            .await
            .with_context(|| format!("GetModelVersion {name}"))?
            .into_inner();
        lat.push(t.elapsed());
        ensure!(
            v.version == expect,
            "{name} resolved to version {} ({expect} expected)",
            v.version
        );
    }
    Ok(lat)
}

/// `total` resolutions split over `clients` concurrent clients; latencies and wall time.
async fn resolve_round(
    ctx: &Ctx,
    name: &str,
    expect: i64,
    clients: usize,
    total: usize,
) -> Result<(Vec<Duration>, Duration)> {
    let cs = registries(&ctx.url, clients).await?;
    let tasks = cs
        .into_iter()
        .map(|c| resolve_loop(c, name.to_string(), expect, total / clients))
        .collect();
    let (outs, wall) = together(tasks).await?;
    Ok((outs.into_iter().flatten().collect(), wall))
}

/// Section: alias resolution latency from `clients` clients (1: the sequential figures).
pub async fn alias_resolve(
    ctx: &Ctx,
    report: &mut Report,
    verdicts: &mut Vec<String>,
    clients: usize,
) -> Result<()> {
    let s = &ctx.sizes;
    let mut r = registry(&ctx.url).await?;
    let id = format!("bench-alias-{clients}-{}", ctx.tag);
    let (name, expect) = seed::alias_model(&mut r, &ctx.seed, &id).await?;

    resolve_round(ctx, &name, expect, clients, s.resolve_warmup).await?;
    let total = if clients == 1 {
        s.resolve_calls
    } else {
        s.resolve_concurrent_calls
    };
    let snap = ctx.probe.snapshot();
    let (lat, wall) = resolve_round(ctx, &name, expect, clients, total).await?;
    let prefix = if clients == 1 {
        "alias_resolve"
    } else {
        "alias_resolve_concurrent"
    };
    report.usage(&format!("{prefix} (timed calls)"), ctx.probe.since(&snap));
    let sum = Summary::of(&stats::millis(&lat));
    let detail = format!(
        "GetModelVersion {{m}}@{}: {} client(s) x {} sequential calls after {} warm-up",
        seed::ALIAS,
        clients,
        total / clients,
        s.resolve_warmup
    );
    if clients == 1 {
        for (suffix, v, target) in [("p50", sum.p50, 0.5), ("p99", sum.p99, 2.0)] {
            let name = format!("{prefix}_{suffix}_ms");
            let t = Target::AtMost(target);
            target_figure(report, verdicts, &name, v, "ms", t, detail.clone());
        }
    } else {
        let d = format!("{detail} (no target: the targets are for one client)");
        report.figure(&format!("{prefix}_p50_ms"), sum.p50, "ms", d.clone());
        report.figure(&format!("{prefix}_p99_ms"), sum.p99, "ms", d);
    }
    report.info(&format!("{prefix}_p95_ms"), sum.p95, "ms", detail);
    report.info(
        &format!("{prefix}_calls_per_s"),
        lat.len() as f64 / wall.as_secs_f64(),
        "calls/s",
        format!("{} calls in {:.2} s", lat.len(), wall.as_secs_f64()),
    );
    Ok(())
}
