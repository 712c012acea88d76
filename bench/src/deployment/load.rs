//! The measured sections: Route from one client, Route and ModelInfer with many requests in
//! flight, and the read-back of a sample of their decision records.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use prost::Message as _;
use steward_proto::deployment as dpb;
use steward_proto::inference as oip;
use tokio::task::JoinSet;

use super::client::{Deployments, channel};
use super::h2c::{Answered, H2Conn, Unary, closed_loop, open_loop};
use super::seed::{self, CANARY, CANARY_BP, Deployed, STABLE};
use super::split::SplitCheck;
use super::target::{Target, target_figure};
use super::{Ctx, list};
use crate::report::Report;
use crate::stats::{self, Summary};

/// The `route_per_s` target, and the rate of the open loop that measures `route_p99_ms`.
pub const ROUTE_TARGET_PER_S: f64 = 30_000.0;

/// gRPC path of Route.
const ROUTE: &str = "/steward.deployment.v1.DeploymentService/Route";
/// gRPC path of ModelInfer.
const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";

/// What every answer of a deployment must say.
struct Expect {
    deployment: String,
    /// `registeredModels/{m}`.
    model: String,
    stable: String,
    canary: String,
}

impl Expect {
    fn of(t: &Deployed) -> Arc<Expect> {
        Arc::new(Expect {
            deployment: t.deployment.clone(),
            model: t.model.clone(),
            stable: t.version(1),
            canary: t.version(2),
        })
    }

    /// Whether `variant` is the canary, checking it serves the version it should.
    fn is_canary(&self, variant: &str, model_version: &str) -> Result<bool> {
        let (canary, want) = match variant {
            STABLE => (false, &self.stable),
            CANARY => (true, &self.canary),
            other => bail!("answered with variant {other:?} (stable or canary expected)"),
        };
        ensure!(
            model_version == want,
            "variant {variant} answered with {model_version} ({want} expected)"
        );
        Ok(canary)
    }
}

/// Request id of Route call `i` of `kind` (`s` sequential, `r` concurrent, `i` infer).
fn request_id(tag: &str, kind: char, i: usize) -> String {
    format!("{tag}-{kind}{i}")
}

/// Routing key of Route call `i` of `kind`.
fn routing_key(kind: char, i: usize) -> String {
    format!("user-{kind}{i}")
}

/// Route call `i` of `kind`; its check answers whether it landed on the canary.
fn route_call(expect: Arc<Expect>, tag: Arc<str>, kind: char) -> Arc<Unary<bool>> {
    let (exp, t) = (expect.clone(), tag.clone());
    Arc::new(Unary {
        path: ROUTE,
        request: Box::new(move |i| {
            dpb::RouteRequest {
                deployment: exp.deployment.clone(),
                routing_key: routing_key(kind, i),
                request_id: request_id(&t, kind, i),
            }
            .encode_to_vec()
        }),
        answer: Box::new(move |i, bytes| {
            let rid = request_id(&tag, kind, i);
            let r = dpb::RouteResponse::decode(bytes)
                .with_context(|| format!("Route {rid}: undecodable answer"))?;
            ensure!(
                r.request_id == rid && r.revision == 1,
                "Route {rid} answered request id {:?}, revision {}",
                r.request_id,
                r.revision
            );
            expect.is_canary(&r.variant, &r.model_version)
        }),
    })
}

/// The demo model's features of row `i` (deterministic, varied).
fn features(i: usize) -> Vec<f32> {
    (0..seed::DEMO_FEATURES)
        .map(|j| ((i * 7 + j * 3) % 11) as f32 * 0.1)
        .collect()
}

/// ModelInfer call `i` (one row); its check answers whether the canary served it.
fn infer_call(expect: Arc<Expect>, tag: Arc<str>) -> Arc<Unary<bool>> {
    let (exp, t) = (expect.clone(), tag.clone());
    Arc::new(Unary {
        path: MODEL_INFER,
        request: Box::new(move |i| {
            oip::ModelInferRequest {
                model_name: exp.deployment.clone(),
                id: request_id(&t, 'i', i),
                inputs: vec![oip::model_infer_request::InferInputTensor {
                    name: seed::DEMO_INPUT.into(),
                    datatype: "FP32".into(),
                    shape: vec![1, seed::DEMO_FEATURES as i64],
                    contents: Some(oip::InferTensorContents {
                        fp32_contents: features(i),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .encode_to_vec()
        }),
        answer: Box::new(move |i, bytes| {
            let rid = request_id(&tag, 'i', i);
            let r = oip::ModelInferResponse::decode(bytes)
                .with_context(|| format!("ModelInfer {rid}: undecodable answer"))?;
            ensure!(r.id == rid, "ModelInfer {rid} answered id {:?}", r.id);
            let score = match r.outputs.as_slice() {
                [o] if o.name == seed::DEMO_OUTPUT => o
                    .contents
                    .as_ref()
                    .map(|c| c.fp32_contents.clone())
                    .unwrap_or_default(),
                other => bail!(
                    "ModelInfer {rid} answered outputs {:?} ({} expected)",
                    other.iter().map(|o| &o.name).collect::<Vec<_>>(),
                    seed::DEMO_OUTPUT
                ),
            };
            ensure!(
                score.len() == 1 && (0.0..=1.0).contains(&score[0]),
                "ModelInfer {rid} scored {score:?} (one probability expected)"
            );
            let variant = match r
                .parameters
                .get("variant")
                .and_then(|p| p.parameter_choice.as_ref())
            {
                Some(oip::infer_parameter::ParameterChoice::StringParam(s)) => s.clone(),
                _ => bail!("ModelInfer {rid} answered without its variant"),
            };
            let version = format!("{}/versions/{}", expect.model, r.model_version);
            expect.is_canary(&variant, &version)
        }),
    })
}

/// Reads back the decisions of `sample` of `calls` (spread evenly) with GetDecision, 8 at a
/// time, and checks each says what the call was answered. Returns how many were checked.
async fn verify_decisions(
    ctx: &Ctx,
    expect: &Arc<Expect>,
    calls: &[Answered<bool>],
    kind: char,
    sample: usize,
) -> Result<usize> {
    let stride = (calls.len() / sample.max(1)).max(1);
    let picked: Vec<(usize, bool)> = calls.iter().step_by(stride).map(|c| (c.i, c.out)).collect();
    let ch = channel(&ctx.url).await?;
    let tag: Arc<str> = ctx.tag.as_str().into();
    let mut set = JoinSet::new();
    let mut checked = 0;
    for chunk in picked.chunks(picked.len().div_ceil(8).max(1)) {
        let (chunk, ch, expect, tag) = (chunk.to_vec(), ch.clone(), expect.clone(), tag.clone());
        set.spawn(async move {
            let mut c = Deployments::new(ch);
            for (i, canary) in &chunk {
                let rid = request_id(&tag, kind, *i);
                let d = c
                    .get_decision(dpb::GetDecisionRequest {
                        request_id: rid.clone(),
                    })
                    .await
                    .with_context(|| {
                        format!("GetDecision {rid}: the answered call has no decision record")
                    })?
                    .into_inner();
                let want_kind = if kind == 'i' { "infer" } else { "route" };
                ensure!(
                    d.deployment == expect.deployment && d.revision == 1 && d.kind == want_kind,
                    "decision {rid} is of {} revision {} kind {:?}",
                    d.deployment,
                    d.revision,
                    d.kind
                );
                ensure!(
                    expect.is_canary(&d.variant, &d.model_version)? == *canary,
                    "decision {rid} records variant {} but the call was answered otherwise",
                    d.variant
                );
                if kind == 'i' {
                    ensure!(
                        !d.input_digest.is_empty() && d.error.is_empty(),
                        "decision {rid} has no input digest or an error {:?}",
                        d.error
                    );
                } else {
                    ensure!(
                        d.routing_key == routing_key(kind, *i),
                        "decision {rid} records routing key {:?}",
                        d.routing_key
                    );
                }
            }
            Ok::<_, anyhow::Error>(chunk.len())
        });
    }
    while let Some(r) = set.join_next().await {
        checked += r.context("a check task panicked")??;
    }
    Ok(checked)
}

/// `n` calls in `wall` per second.
fn rate(n: usize, wall: Duration) -> f64 {
    n as f64 / wall.as_secs_f64()
}

/// Section: sequential Route calls from one client (the latency without queueing).
pub async fn route_sequential(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let s = &ctx.sizes;
    let expect = Expect::of(&ctx.seed.route);
    let tag: Arc<str> = ctx.tag.as_str().into();
    let mut chans = vec![H2Conn::connect(&ctx.url).await?];
    let call = || route_call(expect.clone(), tag.clone(), 's');
    closed_loop(&mut chans, 1, 0, s.seq_warmup, call()).await?;
    let snap = ctx.probe.snapshot();
    let (calls, wall) = closed_loop(&mut chans, 1, s.seq_warmup, s.seq_calls, call()).await?;
    report.usage("route_seq (timed calls)", ctx.probe.since(&snap));
    let lat: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
    let sum = Summary::of(&stats::millis(&lat));
    let detail = format!(
        "Route, 1 client x {} sequential calls (each returns after its decision is committed) \
         after {} warm-up; no target (the targets are under load)",
        s.seq_calls, s.seq_warmup
    );
    report.figure("route_seq_p50_ms", sum.p50, "ms", detail.clone());
    report.figure("route_seq_p99_ms", sum.p99, "ms", detail);
    report.info(
        "route_seq_calls_per_s",
        rate(calls.len(), wall),
        "calls/s",
        format!("{} calls in {:.2} s", calls.len(), wall.as_secs_f64()),
    );
    let checked = verify_decisions(ctx, &expect, &calls, 's', s.verify_sample / 4).await?;
    report.info(
        "route_seq_decisions_verified",
        checked as f64,
        "records",
        "GetDecision of a sample: variant, version, revision and routing key as answered",
    );
    Ok(())
}

/// Section: Route throughput and latency with `in_flight` requests in flight, the split of the
/// answers, and a sample of their decision records.
pub async fn route(ctx: &Ctx, report: &mut Report, verdicts: &mut Vec<String>) -> Result<()> {
    let s = &ctx.sizes;
    let expect = Expect::of(&ctx.seed.route);
    let tag: Arc<str> = ctx.tag.as_str().into();
    let mut chans = H2Conn::many(&ctx.url, s.connections).await?;
    let call = || route_call(expect.clone(), tag.clone(), 'r');
    closed_loop(&mut chans, s.in_flight, 0, s.route_warmup, call()).await?;

    let snap = ctx.probe.snapshot();
    let (mut rates, mut all) = (Vec::new(), Vec::new());
    for rep in 0..s.route_reps {
        let from = s.route_warmup + rep * s.route_per_rep;
        let (calls, wall) =
            closed_loop(&mut chans, s.in_flight, from, s.route_per_rep, call()).await?;
        let r = rate(calls.len(), wall);
        eprintln!(
            "  rep {rep}: {} routes in {:.2} s = {r:.0} routes/s",
            calls.len(),
            wall.as_secs_f64()
        );
        rates.push(r);
        all.extend(calls);
    }
    report.usage("route_per_s (all reps)", ctx.probe.since(&snap));

    let load = format!(
        "{} requests in flight (closed loop) over {} HTTP/2 connections, durable decision \
         records",
        s.in_flight, s.connections
    );
    let median = stats::median(&rates).unwrap_or(f64::NAN);
    target_figure(
        report,
        verdicts,
        "route_per_s",
        median,
        "routes/s",
        Target::AtLeast(ROUTE_TARGET_PER_S),
        format!(
            "median of {} reps [{}]; {} x {} Route of a 90/10 deployment, {load}, after {} warm-up",
            rates.len(),
            list(&rates),
            s.route_reps,
            s.route_per_rep,
            s.route_warmup
        ),
    );
    let lat: Vec<Duration> = all.iter().map(|c| c.latency).collect();
    let sum = Summary::of(&stats::millis(&lat));
    let detail = format!(
        "per call at saturation, under the load above ({} calls); with a closed loop the mean \
         latency is in-flight / rate (Little's law): {} / {} = {:.2} ms",
        lat.len(),
        s.in_flight,
        crate::report::human(median),
        s.in_flight as f64 / median * 1e3
    );
    report.info("route_saturated_p50_ms", sum.p50, "ms", detail.clone());
    report.info("route_saturated_p99_ms", sum.p99, "ms", detail);

    // Latency at the target rate: an open loop offering ROUTE_TARGET_PER_S.
    let from = s.route_warmup + s.route_reps * s.route_per_rep;
    let open_call = || route_call(expect.clone(), tag.clone(), 'o');
    let snap = ctx.probe.snapshot();
    let (mut open, mut open_rates, mut worst_late) = (Vec::new(), Vec::new(), Duration::ZERO);
    for rep in 0..s.open_reps {
        let first = from + rep * s.open_per_rep;
        let (calls, wall, late) = open_loop(
            &mut chans,
            ROUTE_TARGET_PER_S,
            first,
            s.open_per_rep,
            open_call(),
        )
        .await?;
        let r = rate(calls.len(), wall);
        eprintln!(
            "  open loop rep {rep}: {} routes offered at {ROUTE_TARGET_PER_S}/s, answered in \
             {:.2} s = {r:.0} routes/s",
            calls.len(),
            wall.as_secs_f64()
        );
        open_rates.push(r);
        worst_late = worst_late.max(late);
        open.extend(calls);
    }
    report.usage("route_p99_ms (open loop)", ctx.probe.since(&snap));
    let lat: Vec<Duration> = open.iter().map(|c| c.latency).collect();
    let sum = Summary::of(&stats::millis(&lat));
    let late = Summary::of(&stats::millis(
        &open.iter().map(|c| c.late).collect::<Vec<_>>(),
    ));
    // A server that answers slower than the offered rate builds a queue: the p99 then grows
    // with the length of a rep, and says so.
    let kept_up = open_rates.iter().all(|r| *r >= 0.98 * ROUTE_TARGET_PER_S);
    let load = format!(
        "open loop offering {} routes/s (the route_per_s target) over {} HTTP/2 connections, \
         {} reps of {} calls, each sent when due however many are unanswered; latency from \
         when the call was due, so the client's own lateness counts against the server (sent \
         late by p50 {:.3} / p99 {:.3} / at most {:.2} ms); answered at [{}] routes/s{}",
        crate::report::human(ROUTE_TARGET_PER_S),
        s.connections,
        s.open_reps,
        s.open_per_rep,
        late.p50,
        late.p99,
        worst_late.as_secs_f64() * 1e3,
        list(&open_rates),
        if kept_up {
            ""
        } else {
            "; THE SERVER FELL BEHIND THE OFFERED RATE: the latencies include a growing queue"
        }
    );
    report.info(
        "route_open_client_late_p99_ms",
        late.p99,
        "ms",
        "how late the load client sent the open loop's calls (p99; counted in the latencies)",
    );
    target_figure(
        report,
        verdicts,
        "route_p99_ms",
        sum.p99,
        "ms",
        Target::AtMost(2.0),
        format!("p99 of {} calls, {load}", lat.len()),
    );
    let detail = format!("{} calls at the target rate (open loop above)", lat.len());
    report.figure("route_p50_ms", sum.p50, "ms", detail.clone());
    report.info("route_p95_ms", sum.p95, "ms", detail.clone());
    report.info(
        "route_p999_ms",
        stats::percentile(&stats::millis(&lat), 99.9).unwrap_or(f64::NAN),
        "ms",
        detail,
    );
    report.info(
        "route_open_per_s",
        stats::median(&open_rates).unwrap_or(f64::NAN),
        "routes/s",
        format!(
            "answered per second in the open loop (offered {})",
            crate::report::human(ROUTE_TARGET_PER_S)
        ),
    );
    let checked = verify_decisions(ctx, &expect, &open, 'o', s.verify_sample / 4).await?;
    report.info(
        "route_open_decisions_verified",
        checked as f64,
        "records",
        "GetDecision of a sample of the open loop's calls",
    );

    // The split over distinct routing keys (every timed call has its own key).
    let canary = all.iter().filter(|c| c.out).count();
    let check = SplitCheck::new(canary, all.len(), CANARY_BP);
    report.figure(
        "route_canary_share_pct",
        check.share_pct,
        "%",
        check.describe(),
    );
    let checked = verify_decisions(ctx, &expect, &all, 'r', s.verify_sample).await?;
    report.info(
        "route_decisions_verified",
        checked as f64,
        "records",
        "GetDecision of a sample spread over the timed calls: each exists and says what Route answered",
    );
    ensure!(
        check.ok(),
        "the split is off: {} (deployment {})",
        check.describe(),
        ctx.seed.route.deployment
    );
    Ok(())
}

/// Section: ModelInfer throughput on the demo model (one row per request) with `in_flight`
/// requests in flight, and a sample of the decision records.
pub async fn infer(ctx: &Ctx, report: &mut Report, verdicts: &mut Vec<String>) -> Result<()> {
    let s = &ctx.sizes;
    let expect = Expect::of(&ctx.seed.infer);
    let tag: Arc<str> = ctx.tag.as_str().into();
    let mut chans = H2Conn::many(&ctx.url, s.connections).await?;
    let call = || infer_call(expect.clone(), tag.clone());
    closed_loop(&mut chans, s.in_flight, 0, s.infer_warmup, call()).await?;

    let snap = ctx.probe.snapshot();
    let (mut rates, mut all) = (Vec::new(), Vec::new());
    for rep in 0..s.infer_reps {
        let from = s.infer_warmup + rep * s.infer_per_rep;
        let (calls, wall) =
            closed_loop(&mut chans, s.in_flight, from, s.infer_per_rep, call()).await?;
        let r = rate(calls.len(), wall);
        eprintln!(
            "  rep {rep}: {} predictions in {:.2} s = {r:.0} predictions/s",
            calls.len(),
            wall.as_secs_f64()
        );
        rates.push(r);
        all.extend(calls);
    }
    report.usage("infer_per_s (all reps)", ctx.probe.since(&snap));

    let median = stats::median(&rates).unwrap_or(f64::NAN);
    target_figure(
        report,
        verdicts,
        "infer_per_s",
        median,
        "predictions/s",
        Target::AtLeast(5_000.0),
        format!(
            "median of {} reps [{}]; {} x {} ModelInfer of the demo ONNX model (FP32 [1, 8]) on a \
             90/10 deployment, {} requests in flight (closed loop) over {} HTTP/2 connections, \
             durable decision records, after {} warm-up",
            rates.len(),
            list(&rates),
            s.infer_reps,
            s.infer_per_rep,
            s.in_flight,
            s.connections,
            s.infer_warmup
        ),
    );
    let lat: Vec<Duration> = all.iter().map(|c| c.latency).collect();
    let sum = Summary::of(&stats::millis(&lat));
    let detail = format!("per call under the load above ({} calls)", lat.len());
    report.figure("infer_p99_ms", sum.p99, "ms", detail.clone());
    report.info("infer_p50_ms", sum.p50, "ms", detail);
    let canary = all.iter().filter(|c| c.out).count();
    report.info(
        "infer_canary_share_pct",
        canary as f64 / all.len().max(1) as f64 * 100.0,
        "%",
        "share of predictions served by the canary (keyed by request id)",
    );
    let checked = verify_decisions(ctx, &expect, &all, 'i', s.verify_sample).await?;
    report.info(
        "infer_decisions_verified",
        checked as f64,
        "records",
        "GetDecision of a sample: each exists with its variant, version and input digest",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys_are_distinct_per_kind() {
        assert_eq!(request_id("t", 'r', 7), "t-r7");
        assert_ne!(routing_key('r', 1), routing_key('s', 1));
        assert_eq!(features(3).len(), seed::DEMO_FEATURES);
        assert!(features(3).iter().all(|f| (0.0..=1.0).contains(f)));
    }

    #[test]
    fn answers_are_classified_by_variant_and_version() {
        let e = Expect {
            deployment: "deployments/d".into(),
            model: "registeredModels/m".into(),
            stable: "registeredModels/m/versions/1".into(),
            canary: "registeredModels/m/versions/2".into(),
        };
        assert!(
            !e.is_canary(STABLE, "registeredModels/m/versions/1")
                .unwrap()
        );
        assert!(
            e.is_canary(CANARY, "registeredModels/m/versions/2")
                .unwrap()
        );
        assert!(
            e.is_canary(CANARY, "registeredModels/m/versions/1")
                .is_err()
        );
        assert!(
            e.is_canary("other", "registeredModels/m/versions/1")
                .is_err()
        );
    }
}
