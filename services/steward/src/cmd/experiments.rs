//! `steward experiments ...`

use steward_proto::tracking as pb;

use super::output::{table, time};
use super::{status_err, tracking_client};
use crate::cli::{ClientArgs, ExperimentsCmd};

/// Resolves `experiments/{id}` or a display name to a resource name.
pub(crate) async fn resolve(client: &mut super::TrackingClient, e: &str) -> anyhow::Result<String> {
    if e.starts_with("experiments/") {
        return Ok(e.to_string());
    }
    let x = client
        .get_experiment(pb::GetExperimentRequest {
            name: String::new(),
            display_name: e.to_string(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    Ok(x.name)
}

fn state(s: i32) -> &'static str {
    match pb::LifecycleState::try_from(s) {
        Ok(pb::LifecycleState::Deleted) => "deleted",
        _ => "active",
    }
}

/// Runs an experiments command.
pub async fn run(cmd: ExperimentsCmd, c: &ClientArgs) -> anyhow::Result<()> {
    let mut client = tracking_client(c).await?;
    match cmd {
        ExperimentsCmd::List { filter, all, limit } => {
            let mut rows = Vec::new();
            let mut token = String::new();
            loop {
                let page = client
                    .list_experiments(pb::ListExperimentsRequest {
                        page_size: (limit - rows.len()).min(1000) as i32,
                        page_token: token,
                        filter: filter.clone(),
                        order_by: String::new(),
                        show_deleted: all,
                    })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                rows.extend(page.experiments);
                token = page.next_page_token;
                if token.is_empty() || rows.len() >= limit {
                    break;
                }
            }
            if c.json {
                for e in &rows {
                    println!(
                        "{}",
                        serde_json::json!({"name": e.name, "display_name": e.display_name, "state": state(e.state), "tags": e.tags})
                    );
                }
                return Ok(());
            }
            let mut t = table(&["NAME", "DISPLAY NAME", "STATE", "CREATED", "TAGS"]);
            for e in &rows {
                let mut tags: Vec<String> =
                    e.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                tags.sort();
                t.add_row(vec![
                    e.name.clone(),
                    e.display_name.clone(),
                    state(e.state).into(),
                    time(&e.create_time),
                    tags.join(", "),
                ]);
            }
            println!("{t}");
            println!("{} experiment(s)", rows.len());
        }
        ExperimentsCmd::Create { name, description } => {
            let e = client
                .create_experiment(pb::CreateExperimentRequest {
                    experiment: Some(pb::Experiment {
                        display_name: name,
                        description,
                        ..Default::default()
                    }),
                    request_id: uuid_like(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            println!("created {} ({})", e.name, e.display_name);
        }
        ExperimentsCmd::Get { experiment } => {
            let name = resolve(&mut client, &experiment).await?;
            let e = client
                .get_experiment(pb::GetExperimentRequest {
                    name,
                    display_name: String::new(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            let mut t = table(&["FIELD", "VALUE"]);
            t.add_row(vec!["name".into(), e.name]);
            t.add_row(vec!["display name".into(), e.display_name]);
            t.add_row(vec!["description".into(), e.description]);
            t.add_row(vec!["state".to_string(), state(e.state).to_string()]);
            t.add_row(vec!["created".into(), time(&e.create_time)]);
            t.add_row(vec!["artifacts".into(), e.artifact_location]);
            for (k, v) in e.tags {
                t.add_row(vec![format!("tag {k}"), v]);
            }
            println!("{t}");
        }
    }
    Ok(())
}

/// A random request id so a retried CLI call is not applied twice.
pub(crate) fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("cli-{n:x}-{}", std::process::id())
}
