//! `steward baselines|monitors|drift|alerts ...`.

use anyhow::{Context, Result, bail};
use serde_json::json;
use steward_proto::monitoring as pb;

use super::output::{table, time};
use super::registry_json::print;
use super::{monitoring_client, names, status_err};
use crate::cli::{
    AlertsCmd, BaselinesCmd, ClientArgs, CmpArg, DriftCmd, MonitorsCmd, StateArg, TaskArg,
};

fn named(s: &str, prefix: &str) -> String {
    if s.starts_with(&format!("{prefix}/")) {
        s.to_string()
    } else {
        format!("{prefix}/{s}")
    }
}

fn duration(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Reads a simple CSV (header row, comma-separated, no quoted commas) into columns.
pub fn read_csv(text: &str, categorical: &[String]) -> Result<Vec<pb::Column>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .context("the CSV file is empty")?
        .split(',')
        .map(|h| h.trim().to_string())
        .collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    for (i, line) in lines.enumerate() {
        let row: Vec<&str> = line.split(',').collect();
        if row.len() != header.len() {
            bail!(
                "line {} has {} cells; the header has {}",
                i + 2,
                row.len(),
                header.len()
            );
        }
        for (c, v) in row.into_iter().enumerate() {
            cells[c].push(v.trim().to_string());
        }
    }
    Ok(header
        .into_iter()
        .zip(cells)
        .map(|(name, vals)| {
            let numeric = !categorical.contains(&name)
                && vals
                    .iter()
                    .all(|v| v.is_empty() || v.parse::<f64>().is_ok());
            if numeric {
                pb::Column {
                    name,
                    kind: pb::FeatureKind::Numeric as i32,
                    numbers: vals.iter().map(|v| v.parse().unwrap_or(f64::NAN)).collect(),
                    categories: vec![],
                }
            } else {
                pb::Column {
                    name,
                    kind: pb::FeatureKind::Categorical as i32,
                    numbers: vec![],
                    categories: vals,
                }
            }
        })
        .collect())
}

/// `steward baselines ...`
pub async fn baselines(cmd: BaselinesCmd, c: &ClientArgs) -> Result<()> {
    let mut client = monitoring_client(c).await?;
    match cmd {
        BaselinesCmd::Create {
            id,
            csv,
            prediction_column,
            categorical,
            run,
            dataset,
            model_version,
        } => {
            let source = match (csv, run, dataset) {
                (Some(path), _, _) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    pb::create_baseline_request::Source::Sample(pb::ReferenceSample {
                        columns: read_csv(&text, &categorical)?,
                        prediction_column: prediction_column.unwrap_or_default(),
                    })
                }
                (None, Some(run), Some(dataset)) => {
                    pb::create_baseline_request::Source::Profile(pb::ProfileSource { run, dataset })
                }
                _ => bail!("give --csv FILE, or --run and --dataset"),
            };
            let b = client
                .create_baseline(pb::CreateBaselineRequest {
                    baseline_id: id,
                    model_version: match model_version {
                        Some(v) => names::version_name(&v)?,
                        None => String::new(),
                    },
                    source: Some(source),
                    request_id: String::new(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if c.json {
                print(
                    &json!({"name": b.name, "rows": b.num_rows, "features": b.features.len(), "source": b.source}),
                );
            } else {
                println!(
                    "created {} ({} rows, {} features, from {})",
                    b.name,
                    b.num_rows,
                    b.features.len(),
                    b.source
                );
            }
        }
        BaselinesCmd::List => {
            let r = client
                .list_baselines(pb::ListBaselinesRequest::default())
                .await
                .map_err(status_err)?
                .into_inner();
            let mut t = table(&[
                "BASELINE",
                "MODEL VERSION",
                "SOURCE",
                "ROWS",
                "FEATURES",
                "CREATED",
            ]);
            for b in &r.baselines {
                t.add_row(vec![
                    b.name.clone(),
                    b.model_version.clone(),
                    b.source.clone(),
                    b.num_rows.to_string(),
                    b.features.len().to_string(),
                    time(&b.create_time),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(())
}

fn window_text(w: &Option<pb::Window>) -> String {
    match w.as_ref().and_then(|w| w.size.as_ref()) {
        Some(pb::window::Size::Duration(d)) => format!("{}s", d.seconds),
        Some(pb::window::Size::Count(n)) => format!("{n} predictions"),
        None => "-".into(),
    }
}

/// `steward monitors ...`
pub async fn monitors(cmd: MonitorsCmd, c: &ClientArgs) -> Result<()> {
    let mut client = monitoring_client(c).await?;
    match cmd {
        MonitorsCmd::Create {
            id,
            baseline,
            deployment,
            window,
            window_rows,
            drift_share,
            fdr,
            task,
            positive_label,
            retrain_channel,
            description,
        } => {
            let size = match (window, window_rows) {
                (Some(d), _) => pb::window::Size::Duration(duration(d)),
                (None, Some(n)) => pb::window::Size::Count(n),
                _ => bail!("give --window DURATION or --window-rows N"),
            };
            let m = client
                .create_monitor(pb::CreateMonitorRequest {
                    monitor_id: id,
                    monitor: Some(pb::Monitor {
                        description,
                        deployment: deployment
                            .map(|d| named(&d, "deployments"))
                            .unwrap_or_default(),
                        baseline: named(&baseline, "baselines"),
                        window: Some(pb::Window { size: Some(size) }),
                        drift_share: drift_share.unwrap_or(0.0),
                        fdr_correction: fdr,
                        task: match task {
                            None => pb::Task::Unspecified,
                            Some(TaskArg::Classification) => pb::Task::Classification,
                            Some(TaskArg::Regression) => pb::Task::Regression,
                        } as i32,
                        positive_label: positive_label.unwrap_or_default(),
                        retrain_channel: retrain_channel
                            .map(|r| named(&r, "channels"))
                            .unwrap_or_default(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            println!(
                "created {} over {} ({} features, windows of {})",
                m.name,
                m.baseline,
                m.features.len(),
                window_text(&m.window)
            );
        }
        MonitorsCmd::List { deployment } => {
            let r = client
                .list_monitors(pb::ListMonitorsRequest {
                    filter: deployment
                        .map(|d| format!("deployment = \"{}\"", named(&d, "deployments")))
                        .unwrap_or_default(),
                    ..Default::default()
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if c.json {
                print(&json!(
                    r.monitors
                        .iter()
                        .map(|m| json!({
                            "name": m.name, "deployment": m.deployment, "baseline": m.baseline,
                            "features": m.features.len(), "window": window_text(&m.window),
                        }))
                        .collect::<Vec<_>>()
                ));
                return Ok(());
            }
            let mut t = table(&["MONITOR", "DEPLOYMENT", "BASELINE", "FEATURES", "WINDOW"]);
            for m in &r.monitors {
                t.add_row(vec![
                    m.name.clone(),
                    m.deployment.clone(),
                    m.baseline.clone(),
                    m.features.len().to_string(),
                    window_text(&m.window),
                ]);
            }
            println!("{t}");
        }
        MonitorsCmd::Show { monitor } => {
            let name = named(&monitor, "monitors");
            let m = client
                .get_monitor(pb::GetMonitorRequest { name: name.clone() })
                .await
                .map_err(status_err)?
                .into_inner();
            let ws = client
                .list_windows(pb::ListWindowsRequest {
                    monitor: name,
                    page_size: 10,
                    page_token: String::new(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            println!(
                "{}  baseline {}  deployment {}  windows of {}  drift share {}",
                m.name,
                m.baseline,
                if m.deployment.is_empty() {
                    "-"
                } else {
                    &m.deployment
                },
                window_text(&m.window),
                m.drift_share
            );
            let mut t = table(&[
                "WINDOW",
                "START",
                "END",
                "ROWS",
                "STATE",
                "DRIFT SHARE",
                "DATASET DRIFT",
            ]);
            for w in &ws.windows {
                t.add_row(vec![
                    w.number.to_string(),
                    time(&w.start_time),
                    time(&w.end_time),
                    w.rows.to_string(),
                    w.state.clone(),
                    format!("{:.2}", w.drift_share),
                    if w.state == "CLOSED" {
                        w.dataset_drift.to_string()
                    } else {
                        "-".into()
                    },
                ]);
            }
            println!("{t}");
        }
    }
    Ok(())
}

fn method(m: i32) -> String {
    pb::DriftMethod::try_from(m)
        .map(|m| m.as_str_name().to_string())
        .unwrap_or_else(|_| m.to_string())
}

/// `steward drift ...`
pub async fn drift(cmd: DriftCmd, c: &ClientArgs) -> Result<()> {
    let mut client = monitoring_client(c).await?;
    let DriftCmd::Report { monitor, window } = cmd;
    let r = client
        .get_drift_report(pb::GetDriftReportRequest {
            monitor: named(&monitor, "monitors"),
            window: window.unwrap_or(0),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if c.json {
        print(&json!({
            "monitor": r.monitor,
            "window": r.window.as_ref().map(|w| w.number),
            "dataset_drift": r.dataset_drift,
            "drift_share": r.drift_share,
            "drifted_features": r.drifted_features,
            "features": r.features.iter().map(|f| json!({
                "name": f.name, "method": method(f.method), "score": f.score,
                "threshold": f.threshold, "drifted": f.drifted, "computation": f.computation,
                "missing_rate": f.missing_rate, "new_categories": f.new_categories,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let w = r.window.clone().unwrap_or_default();
    println!(
        "{} window {} ({} rows, {} .. {}): {} of {} features drifted (share {:.2}, threshold {:.2}) -> dataset drift: {}",
        r.monitor,
        w.number,
        w.rows,
        time(&w.start_time),
        time(&w.end_time),
        r.drifted_features,
        r.features.len(),
        r.drift_share,
        r.drift_share_threshold,
        if r.dataset_drift { "YES" } else { "no" }
    );
    let mut t = table(&[
        "FEATURE",
        "METHOD",
        "SCORE",
        "THRESHOLD",
        "DRIFTED",
        "MISSING",
        "COMPUTED",
    ]);
    for f in r.features.iter().chain(r.prediction.iter()) {
        t.add_row(vec![
            f.name.clone(),
            method(f.method),
            format!("{:.6}", f.score),
            format!("{}", f.threshold),
            if f.drifted { "YES".into() } else { "no".into() },
            format!("{:.1}%", f.missing_rate * 100.0),
            f.computation.clone(),
        ]);
    }
    println!("{t}");
    if !r.missing_features.is_empty() {
        println!(
            "missing from every record: {}",
            r.missing_features.join(", ")
        );
    }
    Ok(())
}

/// `steward alerts ...`
pub async fn alerts(cmd: AlertsCmd, c: &ClientArgs) -> Result<()> {
    let mut client = monitoring_client(c).await?;
    match cmd {
        AlertsCmd::List {
            state,
            monitor,
            limit,
        } => {
            let mut f = Vec::new();
            if let Some(s) = state {
                f.push(format!(
                    "state = \"{}\"",
                    match s {
                        StateArg::Firing => "FIRING",
                        StateArg::Resolved => "RESOLVED",
                    }
                ));
            }
            if let Some(m) = monitor {
                f.push(format!("monitor = \"{}\"", named(&m, "monitors")));
            }
            let r = client
                .list_alerts(pb::ListAlertsRequest {
                    page_size: limit,
                    page_token: String::new(),
                    filter: f.join(" AND "),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if c.json {
                print(&json!(r.alerts.iter().map(|a| json!({
                    "name": a.name, "state": a.state, "severity": a.severity, "monitor": a.monitor,
                    "deployment": a.deployment, "metric": a.metric, "value": a.value,
                    "threshold": a.threshold, "reason": a.reason,
                })).collect::<Vec<_>>()));
                return Ok(());
            }
            let mut t = table(&[
                "ALERT", "STATE", "SEVERITY", "MONITOR", "REASON", "FIRED", "RESOLVED",
            ]);
            for a in &r.alerts {
                t.add_row(vec![
                    a.name.clone(),
                    a.state.clone(),
                    a.severity.clone(),
                    a.monitor.clone(),
                    a.reason.clone(),
                    time(&a.fire_time),
                    time(&a.resolve_time),
                ]);
            }
            println!("{t}");
        }
        AlertsCmd::Rule {
            monitor,
            id,
            metric,
            cmp,
            threshold,
            window,
            hold,
            severity,
            channels,
        } => {
            let r = client
                .create_alert_rule(pb::CreateAlertRuleRequest {
                    monitor: named(&monitor, "monitors"),
                    rule_id: id.unwrap_or_default(),
                    rule: Some(pb::AlertRule {
                        metric,
                        comparator: match cmp {
                            CmpArg::Gt => pb::Comparator::Greater,
                            CmpArg::Ge => pb::Comparator::GreaterOrEqual,
                            CmpArg::Lt => pb::Comparator::Less,
                            CmpArg::Le => pb::Comparator::LessOrEqual,
                        } as i32,
                        threshold,
                        window: window.map(duration),
                        hold: hold.map(duration),
                        severity,
                        channels: channels.iter().map(|c| named(c, "channels")).collect(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            println!("created {} ({} ...)", r.name, r.metric);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_get_kinds() {
        let cols = read_csv(
            "amount,country,label\n1.5,de,1\n2,fr,0\n,de,1\n",
            &["label".into()],
        )
        .unwrap();
        assert_eq!(cols[0].kind, pb::FeatureKind::Numeric as i32);
        assert!(cols[0].numbers[2].is_nan());
        assert_eq!(cols[1].categories, vec!["de", "fr", "de"]);
        assert_eq!(cols[2].kind, pb::FeatureKind::Categorical as i32);
        assert!(read_csv("a,b\n1\n", &[]).is_err());
        assert!(read_csv("", &[]).is_err());
    }
}
