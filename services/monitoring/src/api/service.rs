//! `steward.monitoring.v1.MonitoringService` over the app layer.

use std::sync::Arc;

use futures::StreamExt;
use steward_common::Error;
use steward_common::validate;
use steward_grpc::{PageTokenCodec, to_status};
use steward_proto::monitoring as pb;
use steward_proto::monitoring::monitoring_service_server::MonitoringService;
use steward_runtime::request::{ctx, scope};
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self, id_of, new_id};
use crate::app::Monitoring;
use crate::app::baselines::BaselineSource;
use crate::app::monitors::{MonitorInput, MonitorPatch};
use crate::domain::rules::Rule;
use crate::store::alerts::{FIRING, RESOLVED};
use crate::store::records::KpiRow;

type Result<T> = std::result::Result<Response<T>, Status>;
type R<T> = std::result::Result<T, Status>;

fn st(e: Error) -> Status {
    to_status(&e)
}

fn monitor_id(s: &str, field: &str) -> R<String> {
    id_of(s, "monitors", field).map_err(st)
}

/// The gRPC service.
#[derive(Clone)]
pub struct MonitoringApi {
    app: Monitoring,
    tokens: Arc<PageTokenCodec>,
}

impl MonitoringApi {
    /// Wraps the app.
    pub fn new(app: Monitoring, tokens: Arc<PageTokenCodec>) -> Self {
        Self { app, tokens }
    }

    fn page_size(&self, n: i32) -> R<usize> {
        validate::page_size(n, 100, self.app.limits().max_page_size).map_err(st)
    }

    fn after<T: serde::de::DeserializeOwned>(&self, sc: &str, token: &str) -> R<Option<T>> {
        if token.is_empty() {
            Ok(None)
        } else {
            self.tokens.decode(sc, token).map(Some).map_err(st)
        }
    }

    async fn ingest_batch(&self, r: pb::IngestPredictionsRequest) -> R<(i64, i64)> {
        let m = monitor_id(&r.monitor, "monitor")?;
        let records = convert::records(&r.records).map_err(st)?;
        let columns = match &r.columns {
            Some(c) => Some(convert::prediction_columns(c).map_err(st)?),
            None => None,
        };
        let (mut accepted, mut duplicates) = (0, 0);
        if !records.is_empty() || columns.is_none() {
            let out = self.app.ingest(&m, records).await.map_err(st)?;
            accepted += out.accepted;
            duplicates += out.duplicates;
        }
        if let Some(c) = columns {
            let out = self.app.ingest_columns(&m, c).await.map_err(st)?;
            accepted += out.accepted;
            duplicates += out.duplicates;
        }
        Ok((accepted, duplicates))
    }
}

fn sample(s: &pb::ReferenceSample) -> R<BaselineSource> {
    let mut columns = Vec::with_capacity(s.columns.len());
    for (i, c) in s.columns.iter().enumerate() {
        let (kind, col) = convert::column(c, &format!("sample.columns[{i}]")).map_err(st)?;
        columns.push((c.name.clone(), kind, col));
    }
    Ok(BaselineSource::Sample {
        columns,
        prediction_column: s.prediction_column.clone(),
    })
}

#[tonic::async_trait]
impl MonitoringService for MonitoringApi {
    async fn create_baseline(
        &self,
        req: Request<pb::CreateBaselineRequest>,
    ) -> Result<pb::Baseline> {
        let c = ctx(&req);
        let r = req.into_inner();
        let id = new_id(&r.baseline_id, "baseline_id").map_err(st)?;
        validate::text("model_version", &r.model_version, 300).map_err(st)?;
        if !r.model_version.is_empty() && !r.model_version.starts_with("registeredModels/") {
            return Err(st(Error::invalid_field(
                "model_version",
                "registeredModels/{m}/versions/{v}",
            )));
        }
        let source = match &r.source {
            Some(pb::create_baseline_request::Source::Sample(s)) => sample(s)?,
            Some(pb::create_baseline_request::Source::Profile(p)) => {
                if !p.run.starts_with("experiments/") || !p.run.contains("/runs/") {
                    return Err(st(Error::invalid_field(
                        "profile.run",
                        "experiments/{e}/runs/{r}",
                    )));
                }
                validate::key(
                    "profile.dataset",
                    &p.dataset,
                    &steward_common::limits::Limits::default(),
                )
                .map_err(st)?;
                BaselineSource::Profile {
                    run: p.run.clone(),
                    dataset: p.dataset.clone(),
                }
            }
            None => {
                return Err(st(Error::invalid_field(
                    "source",
                    "set a reference sample or a dataset profile",
                )));
            }
        };
        let b = self
            .app
            .create_baseline(&c, id, r.model_version, source, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::baseline(&b)))
    }

    async fn get_baseline(&self, req: Request<pb::GetBaselineRequest>) -> Result<pb::Baseline> {
        let id = id_of(&req.get_ref().name, "baselines", "name").map_err(st)?;
        let b = self.app.get_baseline(&id).await.map_err(st)?;
        Ok(Response::new(convert::baseline(&b)))
    }

    async fn list_baselines(
        &self,
        req: Request<pb::ListBaselinesRequest>,
    ) -> Result<pb::ListBaselinesResponse> {
        let r = req.into_inner();
        let n = self.page_size(r.page_size)?;
        let f = convert::simple_filter(&r.filter, &["model_version"]).map_err(st)?;
        let sc = scope(&["baselines", &r.filter]);
        let after: Option<String> = self.after(&sc, &r.page_token)?;
        let items = self
            .app
            .list_baselines(
                f.get("model_version").map(String::as_str),
                after.as_deref(),
                n as u64,
            )
            .await
            .map_err(st)?;
        let next = if items.len() == n {
            items
                .last()
                .map(|b| self.tokens.encode(&sc, &b.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListBaselinesResponse {
            baselines: items.iter().map(convert::baseline).collect(),
            next_page_token: next,
        }))
    }

    async fn create_monitor(&self, req: Request<pb::CreateMonitorRequest>) -> Result<pb::Monitor> {
        let c = ctx(&req);
        let r = req.into_inner();
        let m = r
            .monitor
            .ok_or_else(|| st(Error::invalid_field("monitor", "required")))?;
        validate::text("monitor.description", &m.description, 10_000).map_err(st)?;
        let input = MonitorInput {
            id: new_id(&r.monitor_id, "monitor_id").map_err(st)?,
            description: m.description.clone(),
            deployment: if m.deployment.is_empty() {
                String::new()
            } else {
                id_of(&m.deployment, "deployments", "monitor.deployment").map_err(st)?
            },
            baseline: id_of(&m.baseline, "baselines", "monitor.baseline").map_err(st)?,
            window: convert::window(&m.window).map_err(st)?,
            features: convert::features(&m.features).map_err(st)?,
            drift_share: (m.drift_share != 0.0).then_some(m.drift_share),
            fdr_correction: m.fdr_correction,
            max_exact_rows: (m.max_exact_rows != 0).then_some(m.max_exact_rows),
            task: convert::task(m.task).map_err(st)?,
            positive_label: m.positive_label.clone(),
            prediction_output: m.prediction_output.clone(),
            retrain_channel: if m.retrain_channel.is_empty() {
                String::new()
            } else {
                id_of(&m.retrain_channel, "channels", "monitor.retrain_channel").map_err(st)?
            },
        };
        validate::text("monitor.positive_label", &input.positive_label, 256).map_err(st)?;
        validate::text("monitor.prediction_output", &input.prediction_output, 256).map_err(st)?;
        let out = self
            .app
            .create_monitor(&c, input, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::monitor(&out)))
    }

    async fn get_monitor(&self, req: Request<pb::GetMonitorRequest>) -> Result<pb::Monitor> {
        let id = monitor_id(&req.get_ref().name, "name")?;
        let m = self.app.get_monitor(&id).await.map_err(st)?;
        Ok(Response::new(convert::monitor(&m)))
    }

    async fn list_monitors(
        &self,
        req: Request<pb::ListMonitorsRequest>,
    ) -> Result<pb::ListMonitorsResponse> {
        let r = req.into_inner();
        let n = self.page_size(r.page_size)?;
        let f = convert::simple_filter(&r.filter, &["deployment"]).map_err(st)?;
        let dep = match f.get("deployment") {
            Some(d) => Some(id_of(d, "deployments", "filter").map_err(st)?),
            None => None,
        };
        let sc = scope(&["monitors", &r.filter]);
        let after: Option<String> = self.after(&sc, &r.page_token)?;
        let items = self
            .app
            .list_monitors(dep.as_deref(), after.as_deref(), n as u64)
            .await
            .map_err(st)?;
        let next = if items.len() == n {
            items
                .last()
                .map(|m| self.tokens.encode(&sc, &m.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListMonitorsResponse {
            monitors: items.iter().map(convert::monitor).collect(),
            next_page_token: next,
        }))
    }

    async fn update_monitor(&self, req: Request<pb::UpdateMonitorRequest>) -> Result<pb::Monitor> {
        let c = ctx(&req);
        let r = req.into_inner();
        let m = r
            .monitor
            .ok_or_else(|| st(Error::invalid_field("monitor", "required")))?;
        let id = monitor_id(&m.name, "monitor.name")?;
        if r.update_mask.is_empty() {
            return Err(st(Error::invalid_field(
                "update_mask",
                "name the fields to update",
            )));
        }
        let mut patch = MonitorPatch::default();
        for p in &r.update_mask {
            match p.as_str() {
                "description" => {
                    validate::text("monitor.description", &m.description, 10_000).map_err(st)?;
                    patch.description = Some(m.description.clone());
                }
                "features" => patch.features = Some(convert::features(&m.features).map_err(st)?),
                "drift_share" => patch.drift_share = Some(m.drift_share),
                "fdr_correction" => patch.fdr_correction = Some(m.fdr_correction),
                "retrain_channel" => {
                    patch.retrain_channel = Some(if m.retrain_channel.is_empty() {
                        String::new()
                    } else {
                        id_of(&m.retrain_channel, "channels", "monitor.retrain_channel")
                            .map_err(st)?
                    })
                }
                other => {
                    return Err(st(Error::invalid_field(
                        "update_mask",
                        format!(
                            "{other:?} cannot be updated (description, features, drift_share, fdr_correction, retrain_channel)"
                        ),
                    )));
                }
            }
        }
        let out = self
            .app
            .update_monitor(&c, &id, patch, &m.etag, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::monitor(&out)))
    }

    async fn delete_monitor(
        &self,
        req: Request<pb::DeleteMonitorRequest>,
    ) -> Result<pb::DeleteMonitorResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let id = monitor_id(&r.name, "name")?;
        self.app
            .delete_monitor(&c, &id, &r.etag, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeleteMonitorResponse {}))
    }

    async fn ingest_predictions(
        &self,
        req: Request<pb::IngestPredictionsRequest>,
    ) -> Result<pb::IngestPredictionsResponse> {
        let (accepted, duplicates) = self.ingest_batch(req.into_inner()).await?;
        Ok(Response::new(pb::IngestPredictionsResponse {
            accepted,
            duplicates,
        }))
    }

    async fn stream_predictions(
        &self,
        req: Request<Streaming<pb::IngestPredictionsRequest>>,
    ) -> Result<pb::IngestPredictionsResponse> {
        let mut s = req.into_inner();
        let (mut accepted, mut duplicates) = (0, 0);
        // Each message is its own atomic batch; an idle stream ends after 60 s.
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_secs(60), s.next())
                .await
                .map_err(|_| {
                    Status::deadline_exceeded("no message for 60 s; the stream was closed")
                })?;
            match next {
                None => break,
                Some(msg) => {
                    let (a, d) = self.ingest_batch(msg?).await?;
                    accepted += a;
                    duplicates += d;
                }
            }
        }
        Ok(Response::new(pb::IngestPredictionsResponse {
            accepted,
            duplicates,
        }))
    }

    async fn ingest_feedback(
        &self,
        req: Request<pb::IngestFeedbackRequest>,
    ) -> Result<pb::IngestFeedbackResponse> {
        let r = req.into_inner();
        let m = monitor_id(&r.monitor, "monitor")?;
        let fb = r
            .feedback
            .iter()
            .map(|f| (f.request_id.clone(), convert::value(&f.label)))
            .collect();
        let (accepted, unmatched) = self.app.ingest_feedback(&m, fb).await.map_err(st)?;
        Ok(Response::new(pb::IngestFeedbackResponse {
            accepted,
            unmatched,
        }))
    }

    async fn ingest_kpis(
        &self,
        req: Request<pb::IngestKpisRequest>,
    ) -> Result<pb::IngestKpisResponse> {
        let r = req.into_inner();
        let m = monitor_id(&r.monitor, "monitor")?;
        let now = steward_common::time::now_ms();
        let mut rows = Vec::with_capacity(r.kpis.len());
        for (i, k) in r.kpis.iter().enumerate() {
            rows.push(KpiRow {
                name: k.name.clone(),
                value: k.value,
                request_id: k.request_id.clone(),
                time: match &k.time {
                    Some(t) => steward_grpc::from_ts(t, &format!("kpis[{i}].time")).map_err(st)?,
                    None => now,
                },
            });
        }
        let accepted = self.app.ingest_kpis(&m, rows).await.map_err(st)?;
        Ok(Response::new(pb::IngestKpisResponse { accepted }))
    }

    async fn list_windows(
        &self,
        req: Request<pb::ListWindowsRequest>,
    ) -> Result<pb::ListWindowsResponse> {
        let r = req.into_inner();
        let m = monitor_id(&r.monitor, "monitor")?;
        let n = self.page_size(r.page_size)?;
        let sc = scope(&["windows", &m]);
        let before: Option<i64> = self.after(&sc, &r.page_token)?;
        let ws = self
            .app
            .list_windows(&m, before, n as u64)
            .await
            .map_err(st)?;
        let next = if ws.len() == n {
            ws.last()
                .map(|w| self.tokens.encode(&sc, &w.number))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListWindowsResponse {
            windows: ws.iter().map(convert::window_info).collect(),
            next_page_token: next,
        }))
    }

    async fn get_drift_report(
        &self,
        req: Request<pb::GetDriftReportRequest>,
    ) -> Result<pb::DriftReport> {
        let r = req.into_inner();
        let m = monitor_id(&r.monitor, "monitor")?;
        if r.window < 0 {
            return Err(st(Error::invalid_field("window", "must not be negative")));
        }
        let (w, report) = self
            .app
            .drift_report(&m, (r.window != 0).then_some(r.window))
            .await
            .map_err(st)?;
        Ok(Response::new(convert::report(&m, &w, &report)))
    }

    async fn get_performance(
        &self,
        req: Request<pb::GetPerformanceRequest>,
    ) -> Result<pb::PerformanceReport> {
        let r = req.into_inner();
        let m = monitor_id(&r.monitor, "monitor")?;
        let now = steward_common::time::now_ms();
        let from = match &r.start_time {
            Some(t) => steward_grpc::from_ts(t, "start_time").map_err(st)?,
            None => now - 3_600_000,
        };
        let to = match &r.end_time {
            Some(t) => steward_grpc::from_ts(t, "end_time").map_err(st)?,
            None => now + 1,
        };
        let ps = self.app.get_performance(&m, from, to).await.map_err(st)?;
        Ok(Response::new(pb::PerformanceReport {
            monitor: format!("monitors/{m}"),
            start_time: Some(steward_grpc::ts(from)),
            end_time: Some(steward_grpc::ts(to)),
            variants: ps.iter().map(convert::performance).collect(),
        }))
    }

    async fn get_metric_series(
        &self,
        req: Request<pb::GetMetricSeriesRequest>,
    ) -> Result<pb::MetricSeries> {
        let r = req.into_inner();
        let m = monitor_id(&r.monitor, "monitor")?;
        let from = match &r.start_time {
            Some(t) => steward_grpc::from_ts(t, "start_time").map_err(st)?,
            None => 0,
        };
        let to = match &r.end_time {
            Some(t) => steward_grpc::from_ts(t, "end_time").map_err(st)?,
            None => i64::MAX,
        };
        let pts = self
            .app
            .metric_series(&m, &r.metric, from, to)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::MetricSeries {
            metric: r.metric,
            points: pts
                .into_iter()
                .map(|(t, v, w)| pb::MetricPoint {
                    time: Some(steward_grpc::ts(t)),
                    value: v,
                    window: w,
                })
                .collect(),
        }))
    }

    async fn create_alert_rule(
        &self,
        req: Request<pb::CreateAlertRuleRequest>,
    ) -> Result<pb::AlertRule> {
        let c = ctx(&req);
        let r = req.into_inner();
        let monitor = monitor_id(&r.monitor, "monitor")?;
        let rule = r
            .rule
            .ok_or_else(|| st(Error::invalid_field("rule", "required")))?;
        let id = new_id(&r.rule_id, "rule_id")
            .map_err(st)?
            .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string()[20..].to_string());
        validate::text("rule.metric", &rule.metric, 300).map_err(st)?;
        let mut channels = Vec::new();
        for (i, ch) in rule.channels.iter().enumerate() {
            channels.push(id_of(ch, "channels", &format!("rule.channels[{i}]")).map_err(st)?);
        }
        let out = self
            .app
            .create_rule(
                &c,
                Rule {
                    monitor,
                    id,
                    metric: rule.metric.clone(),
                    comparator: convert::comparator(rule.comparator).map_err(st)?,
                    threshold: rule.threshold,
                    window_ms: convert::duration_ms(&rule.window, "rule.window").map_err(st)?,
                    hold_ms: convert::duration_ms(&rule.hold, "rule.hold").map_err(st)?,
                    severity: if rule.severity.is_empty() {
                        "warning".into()
                    } else {
                        rule.severity.clone()
                    },
                    channels,
                    pending_since: None,
                    create_time: steward_common::time::now_ms(),
                },
                &r.request_id,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::rule(&out)))
    }

    async fn list_alert_rules(
        &self,
        req: Request<pb::ListAlertRulesRequest>,
    ) -> Result<pb::ListAlertRulesResponse> {
        let m = monitor_id(&req.get_ref().monitor, "monitor")?;
        let rules = self.app.list_rules(&m).await.map_err(st)?;
        Ok(Response::new(pb::ListAlertRulesResponse {
            rules: rules.iter().map(convert::rule).collect(),
        }))
    }

    async fn delete_alert_rule(
        &self,
        req: Request<pb::DeleteAlertRuleRequest>,
    ) -> Result<pb::DeleteAlertRuleResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let bad = || st(Error::invalid_field("name", "monitors/{m}/rules/{r}"));
        let rest = r.name.strip_prefix("monitors/").ok_or_else(bad)?;
        let (m, id) = rest.split_once("/rules/").ok_or_else(bad)?;
        let m = monitor_id(m, "name")?;
        let id = new_id(id, "name").map_err(st)?.ok_or_else(bad)?;
        self.app
            .delete_rule(&c, &m, &id, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeleteAlertRuleResponse {}))
    }

    async fn list_alerts(
        &self,
        req: Request<pb::ListAlertsRequest>,
    ) -> Result<pb::ListAlertsResponse> {
        let r = req.into_inner();
        let n = self.page_size(r.page_size)?;
        let f = convert::simple_filter(&r.filter, &["state", "monitor"]).map_err(st)?;
        let state = match f.get("state").map(String::as_str) {
            None => None,
            Some("FIRING") => Some(FIRING),
            Some("RESOLVED") => Some(RESOLVED),
            Some(_) => {
                return Err(st(Error::invalid_field(
                    "filter",
                    "state is \"FIRING\" or \"RESOLVED\"",
                )));
            }
        };
        let monitor = match f.get("monitor") {
            Some(m) => Some(monitor_id(m, "filter")?),
            None => None,
        };
        let sc = scope(&["alerts", &r.filter]);
        let after: Option<(i64, String)> = self.after(&sc, &r.page_token)?;
        let items = self
            .app
            .list_alerts(state, monitor.as_deref(), after, n as u64)
            .await
            .map_err(st)?;
        let next = if items.len() == n {
            items
                .last()
                .map(|a| self.tokens.encode(&sc, &(a.fire_time, a.id.clone())))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: items.iter().map(convert::alert).collect(),
            next_page_token: next,
        }))
    }

    async fn get_alert(&self, req: Request<pb::GetAlertRequest>) -> Result<pb::Alert> {
        let id = id_of(&req.get_ref().name, "alerts", "name").map_err(st)?;
        let a = self.app.get_alert(&id).await.map_err(st)?;
        Ok(Response::new(convert::alert(&a)))
    }

    async fn create_channel(&self, req: Request<pb::CreateChannelRequest>) -> Result<pb::Channel> {
        let c = ctx(&req);
        let r = req.into_inner();
        let ch = r
            .channel
            .ok_or_else(|| st(Error::invalid_field("channel", "required")))?;
        let out = self
            .app
            .create_channel(
                &c,
                new_id(&r.channel_id, "channel_id").map_err(st)?,
                ch.url,
                ch.secret,
                ch.allow_private,
                &r.request_id,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::channel(&out)))
    }

    async fn list_channels(
        &self,
        _req: Request<pb::ListChannelsRequest>,
    ) -> Result<pb::ListChannelsResponse> {
        let cs = self.app.list_channels().await.map_err(st)?;
        Ok(Response::new(pb::ListChannelsResponse {
            channels: cs.iter().map(convert::channel).collect(),
        }))
    }

    async fn delete_channel(
        &self,
        req: Request<pb::DeleteChannelRequest>,
    ) -> Result<pb::DeleteChannelResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let id = id_of(&r.name, "channels", "name").map_err(st)?;
        self.app
            .delete_channel(&c, &id, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeleteChannelResponse {}))
    }
}
