//! `steward runs ...`

use steward_proto::tracking as pb;

use super::output::{table, time};
use super::{status_err, tracking_client};
use crate::cli::{ClientArgs, RunsCmd};

fn status(s: i32) -> String {
    pb::RunStatus::try_from(s)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| s.to_string())
}

fn fmt_value(v: f64) -> String {
    if v.is_finite() && v.abs() < 1e6 {
        format!("{v:.4}")
    } else {
        format!("{v}")
    }
}

/// Runs a runs command.
pub async fn run(cmd: RunsCmd, c: &ClientArgs) -> anyhow::Result<()> {
    let mut client = tracking_client(c).await?;
    match cmd {
        RunsCmd::Search {
            experiments,
            filter,
            order_by,
            limit,
        } => {
            let mut names = Vec::new();
            for e in &experiments {
                names.push(super::experiments::resolve(&mut client, e).await?);
            }
            let mut runs = Vec::new();
            let mut token = String::new();
            loop {
                let page = client
                    .search_runs(pb::SearchRunsRequest {
                        experiments: names.clone(),
                        filter: filter.clone(),
                        order_by: order_by.clone(),
                        page_size: (limit - runs.len()).min(1000) as i32,
                        page_token: token,
                        show_deleted: false,
                    })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                runs.extend(page.runs);
                token = page.next_page_token;
                if token.is_empty() || runs.len() >= limit {
                    break;
                }
            }
            if c.json {
                for r in &runs {
                    let metrics: serde_json::Map<String, serde_json::Value> = r
                        .latest_metrics
                        .iter()
                        .map(|m| (m.key.clone(), serde_json::json!(m.value)))
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({"name": r.name, "run_name": r.run_name, "status": status(r.status), "params": r.params, "metrics": metrics})
                    );
                }
                return Ok(());
            }
            let mut t = table(&["RUN", "NAME", "STATUS", "STARTED", "METRICS", "PARAMS"]);
            for r in &runs {
                let m: Vec<String> = r
                    .latest_metrics
                    .iter()
                    .take(4)
                    .map(|m| format!("{}={}", m.key, fmt_value(m.value)))
                    .collect();
                let mut p: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                p.sort();
                p.truncate(4);
                t.add_row(vec![
                    r.name.clone(),
                    r.run_name.clone(),
                    status(r.status),
                    time(&r.start_time),
                    m.join(" "),
                    p.join(" "),
                ]);
            }
            println!("{t}");
            println!(
                "{} run(s){}",
                runs.len(),
                if token.is_empty() {
                    ""
                } else {
                    " (more: raise --limit)"
                }
            );
        }
        RunsCmd::Get { run } => {
            let r = client
                .get_run(pb::GetRunRequest { name: run })
                .await
                .map_err(status_err)?
                .into_inner();
            let mut t = table(&["FIELD", "VALUE"]);
            t.add_row(vec!["name".into(), r.name.clone()]);
            t.add_row(vec!["run name".into(), r.run_name.clone()]);
            t.add_row(vec!["status".into(), status(r.status)]);
            t.add_row(vec!["started".into(), time(&r.start_time)]);
            t.add_row(vec!["ended".into(), time(&r.end_time)]);
            t.add_row(vec!["creator".into(), r.creator.clone()]);
            t.add_row(vec!["artifacts".into(), r.artifact_uri.clone()]);
            if !r.parent_run.is_empty() {
                t.add_row(vec!["parent".into(), r.parent_run.clone()]);
            }
            let mut params: Vec<_> = r.params.iter().collect();
            params.sort();
            for (k, v) in params {
                t.add_row(vec![format!("param {k}"), v.clone()]);
            }
            for m in &r.latest_metrics {
                t.add_row(vec![
                    format!("metric {}", m.key),
                    format!("{} (step {})", fmt_value(m.value), m.step),
                ]);
            }
            let mut tags: Vec<_> = r.tags.iter().collect();
            tags.sort();
            for (k, v) in tags {
                t.add_row(vec![format!("tag {k}"), v.clone()]);
            }
            for i in &r.inputs {
                if let Some(d) = &i.dataset {
                    t.add_row(vec![
                        format!("dataset ({})", i.context),
                        format!("{} {}", d.name, d.digest),
                    ]);
                }
            }
            println!("{t}");
        }
    }
    Ok(())
}
