//! Windows: closing them when due (time windows after their end plus a grace period, count
//! windows when full), computing the drift report, writing the series, evaluating the window
//! rules and triggering retraining; and reading reports.

use std::time::Instant;

use steward_common::{Error, ErrorKind};
use steward_storage::with_write_tx;

use super::{Ctx, Monitoring, SERVICE};
use crate::domain::perf::Performance;
use crate::domain::report::{self, DriftReport};
use crate::domain::rules::Metric;
use crate::domain::{Monitor, WindowSize};
use crate::store::windows::WindowRow;
use crate::store::{self, alerts as astore, channels as cstore, windows as wstore};

impl Monitoring {
    /// Closes every due window at `now`; returns how many this call closed.
    pub async fn close_due(&self, now: i64) -> Result<usize, Error> {
        let mut closed = 0;
        for w in wstore::candidates(self.db.conn(), now).await? {
            let m = match self.monitor_cached(&w.monitor).await {
                Ok(m) => m,
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let due = match m.spec.window {
                WindowSize::Time { .. } => {
                    w.state == wstore::OPEN && now >= w.end_time + m.spec.window.grace_ms()
                }
                WindowSize::Count { .. } => w.state == wstore::FULL,
            };
            if due && self.close_window(&m, &w, now).await? {
                closed += 1;
            }
        }
        Ok(closed)
    }

    /// Computes and stores window `w`'s report; false when another replica closed it first.
    pub(crate) async fn close_window(
        &self,
        m: &Monitor,
        w: &WindowRow,
        now: i64,
    ) -> Result<bool, Error> {
        let started = Instant::now();
        let chunks = wstore::chunks(self.db.conn(), &m.id, w.number).await?;
        let reference = self.reference(&m.baseline).await?;
        let spec = m.spec.clone();
        let r2 = reference.clone();
        let exact = w.rows <= m.spec.max_exact_rows;
        let kinds =
            super::ingest::chunk_kinds(m, reference.baseline.prediction.as_ref().map(|p| p.kind));
        let mut report = tokio::task::spawn_blocking(move || -> Result<DriftReport, Error> {
            if !exact {
                // Beyond the exact size: one chunk at a time into sketches.
                let mut acc = report::Accumulator::new(&kinds);
                for c in chunks {
                    let mut w = report::WindowData::default();
                    w.add_bytes(&c)?;
                    acc.add(w);
                }
                return Ok(acc.finish(&r2.prepared, &spec));
            }
            let data = report::WindowData::decode(chunks)?;
            Ok(report::compute(&r2.prepared, &spec, data))
        })
        .await
        .map_err(Error::internal)??;
        report.compute_ms = started.elapsed().as_millis() as i64;
        // Performance over the window's time range, for the series.
        let end = if w.end_time == i64::MAX {
            now
        } else {
            w.end_time
        };
        let perf = self
            .performance(m, w.start_time, end.saturating_add(1))
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let report_json = serde_json::to_string(&report).map_err(Error::internal)?;
        let points = series_points(&report, &perf);
        let ctx = Ctx {
            actor: format!("system:{SERVICE}"),
            ..Default::default()
        };
        let keep = self.settings.keep_window_values;
        let closed = with_write_tx!(self.db, "close_window", |tx| {
            if !wstore::close(
                &tx,
                &m.id,
                w.number,
                &report_json,
                report.dataset_drift,
                report.drift_share,
                now,
            )
            .await?
            {
                return Ok(false);
            }
            astore::append_series(&tx, &m.id, now, w.number, &points).await?;
            // Rules on per-window series.
            let names: Vec<String> = m.spec.features.iter().map(|f| f.name.clone()).collect();
            for mut rule in astore::rules(&*tx, Some(&m.id)).await? {
                let Ok(metric) = Metric::parse(&rule.metric, &names) else {
                    continue;
                };
                if !metric.per_window() {
                    continue;
                }
                let value = match &metric {
                    Metric::DriftShare => report.drift_share,
                    Metric::DatasetDrift => f64::from(u8::from(report.dataset_drift)),
                    Metric::Feature(f) => report
                        .features
                        .iter()
                        .find(|x| &x.name == f)
                        .map_or(f64::NAN, |x| x.score),
                    Metric::Prediction => report.prediction.as_ref().map_or(f64::NAN, |p| p.score),
                    _ => f64::NAN,
                };
                super::alerts::apply(&tx, &ctx, m, &mut rule, value, now).await?;
            }
            if report.dataset_drift && !m.spec.retrain_channel.is_empty() {
                let body = serde_json::json!({
                    "type": "retrain",
                    "monitor": format!("monitors/{}", m.id),
                    "deployment": if m.deployment.is_empty() { String::new() } else { format!("deployments/{}", m.deployment) },
                    "baseline": format!("baselines/{}", m.baseline),
                    "model_version": reference.baseline.model_version,
                    "window": {
                        "name": format!("monitors/{}/windows/{}", m.id, w.number),
                        "number": w.number,
                        "start_time_ms": w.start_time,
                        "end_time_ms": end,
                        "rows": w.rows,
                    },
                    "report": report,
                })
                .to_string();
                cstore::enqueue(&tx, &m.spec.retrain_channel, "retrain", &body, now).await?;
            }
            if w.number >= keep {
                wstore::prune_chunks(&tx, &m.id, w.number - keep).await?;
            }
            Ok(true)
        })?;
        if closed {
            tracing::info!(
                monitor = %m.id,
                window = w.number,
                rows = w.rows,
                dataset_drift = report.dataset_drift,
                drift_share = report.drift_share,
                compute_ms = report.compute_ms,
                "window closed"
            );
        }
        Ok(closed)
    }

    /// Windows of a monitor, newest first.
    pub async fn list_windows(
        &self,
        monitor: &str,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<WindowRow>, Error> {
        self.get_monitor(monitor).await?;
        wstore::list(self.db.conn(), monitor, before, limit).await
    }

    /// The report of a closed window (the latest when `n` is None).
    pub async fn drift_report(
        &self,
        monitor: &str,
        n: Option<i64>,
    ) -> Result<(WindowRow, DriftReport), Error> {
        self.get_monitor(monitor).await?;
        let (w, json) = wstore::report(self.db.conn(), monitor, n)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "REPORT_NOT_FOUND",
                    match n {
                        Some(n) => format!(
                            "monitors/{monitor}/windows/{n} has no report (not closed yet?)"
                        ),
                        None => format!("monitors/{monitor} has no closed window yet"),
                    },
                )
            })?;
        let r = store::from_json(&json, "drift report")?;
        Ok((w, r))
    }
}

/// The series a closed window adds.
fn series_points(r: &DriftReport, p: &Performance) -> Vec<(String, f64)> {
    let mut out = vec![
        ("drift.share".to_string(), r.drift_share),
        (
            "drift.dataset".to_string(),
            f64::from(u8::from(r.dataset_drift)),
        ),
    ];
    for f in &r.features {
        if f.score.is_finite() {
            out.push((format!("drift.feature.{}", f.name), f.score));
        }
    }
    if let Some(pd) = &r.prediction
        && pd.score.is_finite()
    {
        out.push(("drift.prediction".into(), pd.score));
    }
    for m in crate::domain::rules::PERFORMANCE_METRICS {
        let v = p.get(m);
        if v.is_finite() {
            out.push((format!("performance.{m}"), v));
        }
    }
    for m in crate::domain::rules::LATENCY_METRICS {
        let v = p.get(m);
        if v.is_finite() {
            out.push((format!("latency.{m}"), v));
        }
    }
    if p.error_rate.is_finite() {
        out.push(("error_rate".into(), p.error_rate));
    }
    for (k, v) in &p.kpis {
        out.push((format!("kpi.{k}"), *v));
    }
    out
}
