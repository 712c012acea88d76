//! Steps 6, 7 and 9: the canary rollout of the candidate in production, live ModelInfer
//! traffic under a drift monitor while the canary advances, and the shifted inputs whose drift
//! alert rolls the canary back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use steward_proto::deployment as dpb;
use steward_proto::inference as oip;
use steward_proto::monitoring as mpb;

use super::data::{self, FEATURES, SHIFT, SHIFTED, SHIFTED_OFFSET, TRAINING_ROWS};
use super::lifecycle::{Demo, PRODUCTION};
use super::{Waiting, say, wait_for};
use crate::cmd::deployment_json::rollout_state;
use crate::cmd::deployments::{id_of, split_text};
use crate::cmd::plan::{duration_text, pct, to_pb_duration};
use crate::cmd::rollouts::guardrails_text;
use crate::cmd::status_err;

/// The monitor of the production deployment.
const MONITOR: &str = "monitors/fraud-production";
/// Predictions per drift window.
const WINDOW_ROWS: i64 = 100;
/// The canary's steps: share in basis points and bake time. The second step bakes long, so
/// the canary is still running there when the drift comes.
const STEPS: [(i32, Duration); 3] = [
    (1_000, Duration::from_secs(2)),
    (5_000, Duration::from_secs(600)),
    (10_000, Duration::ZERO),
];
/// Canary decisions each step needs before it may finish.
const MIN_REQUESTS: i64 = 20;
/// How long any wait for the server's background work may take.
const PATIENCE: Duration = Duration::from_secs(60);

impl Demo {
    /// Step 6: a canary rollout of the candidate on the production deployment.
    pub async fn canary(&mut self) -> Result<()> {
        let r = self
            .deploy
            .start_rollout(dpb::StartRolloutRequest {
                deployment: PRODUCTION.into(),
                model_version: self.candidate.clone(),
                steps: STEPS
                    .iter()
                    .map(|(bp, bake)| dpb::RolloutStep {
                        weight_bp: *bp,
                        bake: (!bake.is_zero()).then(|| to_pb_duration(*bake)),
                    })
                    .collect(),
                guardrails: Some(dpb::Guardrails {
                    max_error_rate: 0.05,
                    max_p99_latency_ms: 0.0,
                    min_requests: MIN_REQUESTS,
                }),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        let plan: Vec<String> = STEPS
            .iter()
            .map(|(bp, bake)| {
                if bake.is_zero() {
                    pct(*bp)
                } else {
                    format!("{} (bake {})", pct(*bp), duration_text(*bake))
                }
            })
            .collect();
        say(format!(
            "started {} by {}: {} as canary",
            r.name, r.creator, r.model_version
        ));
        say(format!("steps: {}", plan.join(" -> ")));
        say(format!("guardrails: {} (per step)", guardrails_text(&r)));
        let d = self.deployment(PRODUCTION).await?;
        let rev = d.current_revision.unwrap_or_default();
        say(format!(
            "{} revision {} (\"{}\"): {}",
            d.name,
            rev.number,
            rev.reason,
            split_text(&rev)
        ));
        self.rollout = r.name;
        Ok(())
    }

    /// Step 7: a drift monitor on production, then normal traffic through ModelInfer until
    /// the canary has advanced, every drift window clean.
    pub async fn serve_traffic(&mut self) -> Result<()> {
        self.watch().await?;
        let wait = Waiting::new("sending transactions to production");
        let started = Instant::now();
        let mut step = 0;
        let mut by_variant: BTreeMap<String, (String, i64, f64)> = BTreeMap::new();
        loop {
            for _ in 0..WINDOW_ROWS / 5 {
                let id = format!("txn-{:05}", self.served);
                let resp = self
                    .infer
                    .model_infer(data::infer_request(
                        id_of(PRODUCTION),
                        &id,
                        self.served,
                        false,
                    ))
                    .await
                    .map_err(status_err)
                    .with_context(|| format!("ModelInfer {id}"))?
                    .into_inner();
                self.served += 1;
                let variant = string_param(&resp, "variant");
                let version = string_param(&resp, "registered_model_version");
                let s = score(&resp)?;
                if variant == "canary" && self.canary_request.is_empty() {
                    self.canary_request = resp.id.clone();
                    wait.say(format!(
                        "first canary answer: {} -> {} ({version}), fraud score {s:.4}",
                        resp.id, variant
                    ));
                }
                let e = by_variant.entry(variant).or_insert((version, 0, 0.0));
                e.1 += 1;
                e.2 += f64::from(s);
            }
            wait.set(format!("{} transactions sent to production", self.served));
            let r = self.get_rollout().await?;
            if r.state != dpb::RolloutState::Running as i32 {
                bail!(
                    "the canary stopped early: {} ({})",
                    rollout_state(r.state),
                    r.reason
                );
            }
            if r.current_step != step {
                step = r.current_step;
                let d = self.deployment(PRODUCTION).await?;
                wait.say(format!(
                    "after {} requests the canary is at step {} of {} ({}): {}",
                    self.served,
                    step + 1,
                    r.steps.len(),
                    r.reason,
                    split_text(&d.current_revision.unwrap_or_default())
                ));
            }
            // Past the first step, and whole windows only, so the drift lands in a window
            // of its own.
            if step >= 1 && self.served % WINDOW_ROWS == 0 {
                break;
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "the canary did not leave step 1 within {PATIENCE:?} ({} requests): {}",
                    self.served,
                    r.reason
                );
            }
        }
        drop(wait);
        for (variant, (version, n, sum)) in &by_variant {
            say(format!(
                "served {n:>3} predictions by {variant:<6} ({version}), mean fraud score {:.4}",
                sum / *n as f64
            ));
        }
        let windows = self.served / WINDOW_ROWS;
        let wait = Waiting::new("waiting for the drift reports");
        let mut most = 0;
        for n in 0..windows {
            let rep = self.report(n).await?;
            if rep.dataset_drift {
                bail!(
                    "window {n} of normal traffic drifted: {}",
                    drifted_text(&rep)
                );
            }
            most = most.max(rep.drifted_features);
        }
        drop(wait);
        say(format!(
            "drift windows 0..{} ({} predictions): no dataset drift (at most {most} of {} \
             features drifted)",
            windows - 1,
            self.served,
            FEATURES.len()
        ));
        Ok(())
    }

    /// The training data as the baseline, a monitor of production in windows of
    /// [`WINDOW_ROWS`], and an alert rule on dataset drift.
    async fn watch(&mut self) -> Result<()> {
        let b = self
            .monitor
            .create_baseline(mpb::CreateBaselineRequest {
                baseline_id: "transactions".into(),
                model_version: self.candidate.clone(),
                source: Some(mpb::create_baseline_request::Source::Sample(
                    mpb::ReferenceSample {
                        columns: FEATURES
                            .iter()
                            .enumerate()
                            .map(|(j, f)| mpb::Column {
                                name: (*f).into(),
                                kind: mpb::FeatureKind::Numeric as i32,
                                numbers: data::training_column(j),
                                categories: vec![],
                            })
                            .collect(),
                        prediction_column: String::new(),
                    },
                )),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        let m = self
            .monitor
            .create_monitor(mpb::CreateMonitorRequest {
                monitor_id: id_of(MONITOR).into(),
                monitor: Some(mpb::Monitor {
                    description: "inputs of the production fraud model".into(),
                    deployment: PRODUCTION.into(),
                    baseline: b.name.clone(),
                    window: Some(mpb::Window {
                        size: Some(mpb::window::Size::Count(WINDOW_ROWS)),
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        let rule = self
            .monitor
            .create_alert_rule(mpb::CreateAlertRuleRequest {
                monitor: m.name.clone(),
                rule_id: "dataset-drift".into(),
                rule: Some(mpb::AlertRule {
                    metric: "drift.dataset".into(),
                    comparator: mpb::Comparator::GreaterOrEqual as i32,
                    threshold: 1.0,
                    severity: "critical".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        say(format!(
            "baseline {}: the {TRAINING_ROWS} training rows of {} features",
            b.name,
            b.features.len()
        ));
        say(format!(
            "monitor {} on {PRODUCTION}: windows of {WINDOW_ROWS} predictions; alert rule {}: \
             {} >= {} ({})",
            m.name, rule.name, rule.metric, rule.threshold, rule.severity
        ));
        Ok(())
    }

    /// Step 9: transactions with shifted features until a window drifts; the alert fires and
    /// the canary rolls back.
    pub async fn drift(&mut self) -> Result<()> {
        let shifted: Vec<&str> = SHIFTED.iter().map(|j| FEATURES[*j]).collect();
        say(format!(
            "sending transactions with {} shifted by +{SHIFT}",
            shifted.join(", ")
        ));
        let wait = Waiting::new("sending shifted transactions");
        let mut drifted = None;
        for w in 0..3 {
            let window = self.served / WINDOW_ROWS;
            for k in 0..WINDOW_ROWS {
                let id = format!("txn-{:05}", self.served);
                self.infer
                    .model_infer(data::infer_request(
                        id_of(PRODUCTION),
                        &id,
                        SHIFTED_OFFSET + w * WINDOW_ROWS + k,
                        true,
                    ))
                    .await
                    .map_err(status_err)
                    .with_context(|| format!("ModelInfer {id}"))?;
                self.served += 1;
            }
            wait.set(format!("waiting for the drift report of window {window}"));
            let rep = self.report(window).await?;
            if rep.dataset_drift {
                drifted = Some(rep);
                break;
            }
            wait.say(format!(
                "window {window}: no dataset drift yet ({})",
                drifted_text(&rep)
            ));
        }
        drop(wait);
        let Some(rep) = drifted else {
            bail!("3 windows of shifted transactions did not drift");
        };
        let w = rep.window.clone().unwrap_or_default();
        say(format!(
            "window {} ({} predictions): DATASET DRIFT, {} (threshold {:.2})",
            w.number,
            w.rows,
            drifted_text(&rep),
            rep.drift_share_threshold
        ));
        for f in &rep.features {
            say(format!(
                "  {:<13} {} {:<8} (threshold {}) {}",
                f.name,
                mpb::DriftMethod::try_from(f.method)
                    .map(|m| m.as_str_name())
                    .unwrap_or("?"),
                sci(f.score),
                f.threshold,
                if f.drifted { "DRIFTED" } else { "ok" }
            ));
        }
        let wait = Waiting::new("waiting for the alert");
        let filter = format!("state = \"FIRING\" AND monitor = \"{MONITOR}\"");
        let monitor = self.monitor.clone();
        let alert = wait_for("the drift alert", PATIENCE, || {
            let mut m = monitor.clone();
            let filter = filter.clone();
            async move {
                let alerts = m
                    .list_alerts(mpb::ListAlertsRequest {
                        page_size: 10,
                        page_token: String::new(),
                        filter,
                    })
                    .await
                    .map_err(status_err)?
                    .into_inner()
                    .alerts;
                Ok(alerts.into_iter().next())
            }
        })
        .await?;
        drop(wait);
        say(format!(
            "alert {} {} ({}) on {}: {}",
            alert.name, alert.state, alert.severity, alert.deployment, alert.reason
        ));
        let wait = Waiting::new("waiting for the rollback");
        let deploy = self.deploy.clone();
        let name = self.rollout.clone();
        let r = wait_for("the canary to roll back", PATIENCE, || {
            let mut d = deploy.clone();
            let name = name.clone();
            async move {
                let r = d
                    .get_rollout(dpb::GetRolloutRequest { name })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                Ok((r.state != dpb::RolloutState::Running as i32).then_some(r))
            }
        })
        .await?;
        drop(wait);
        if r.state != dpb::RolloutState::RolledBack as i32 {
            bail!(
                "the canary ended {} instead of rolling back: {}",
                rollout_state(r.state),
                r.reason
            );
        }
        let by = r
            .history
            .last()
            .map(|e| e.actor.clone())
            .unwrap_or_default();
        say(format!(
            "rollout {} {} by {by}: {}",
            r.name,
            rollout_state(r.state),
            r.reason
        ));
        let d = self.deployment(PRODUCTION).await?;
        let rev = d.current_revision.unwrap_or_default();
        say(format!(
            "{} is back on the base split: revision {}: {}",
            d.name,
            rev.number,
            split_text(&rev)
        ));
        Ok(())
    }

    /// A deployment by name.
    pub(super) async fn deployment(&mut self, name: &str) -> Result<dpb::Deployment> {
        Ok(self
            .deploy
            .get_deployment(dpb::GetDeploymentRequest { name: name.into() })
            .await
            .map_err(status_err)?
            .into_inner())
    }

    /// The canary rollout as it is now.
    async fn get_rollout(&mut self) -> Result<dpb::Rollout> {
        Ok(self
            .deploy
            .get_rollout(dpb::GetRolloutRequest {
                name: self.rollout.clone(),
            })
            .await
            .map_err(status_err)?
            .into_inner())
    }

    /// The drift report of window `n`, once the monitor has computed it.
    async fn report(&mut self, n: i64) -> Result<mpb::DriftReport> {
        let monitor = self.monitor.clone();
        wait_for(&format!("the drift report of window {n}"), PATIENCE, || {
            let mut m = monitor.clone();
            async move {
                match m
                    .get_drift_report(mpb::GetDriftReportRequest {
                        monitor: MONITOR.into(),
                        window: n,
                    })
                    .await
                {
                    Ok(r) => Ok(Some(r.into_inner())),
                    Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
                    Err(s) => Err(status_err(s)),
                }
            }
        })
        .await
    }
}

/// A string parameter of a ModelInfer response.
fn string_param(r: &oip::ModelInferResponse, key: &str) -> String {
    match r
        .parameters
        .get(key)
        .and_then(|p| p.parameter_choice.as_ref())
    {
        Some(oip::infer_parameter::ParameterChoice::StringParam(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The fraud score of a one-row ModelInfer response.
fn score(r: &oip::ModelInferResponse) -> Result<f32> {
    r.outputs
        .first()
        .and_then(|o| o.contents.as_ref())
        .and_then(|c| c.fp32_contents.first().copied())
        .ok_or_else(|| anyhow::anyhow!("ModelInfer {} returned no FP32 score", r.id))
}

/// `4 of 8 features drifted (amount, distance, ...), share 0.50`.
fn drifted_text(r: &mpb::DriftReport) -> String {
    let names: Vec<&str> = r
        .features
        .iter()
        .filter(|f| f.drifted)
        .map(|f| f.name.as_str())
        .collect();
    format!(
        "{} of {} features drifted{}, share {:.2}",
        r.drifted_features,
        r.features.len(),
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        },
        r.drift_share
    )
}

/// A score in a short form: `0.4312`, or `3.1e-25` when tiny.
fn sci(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-3 {
        format!("{x:.1e}")
    } else {
        format!("{x:.4}")
    }
}
