//! `steward rollout status|promote|rollback DEPLOYMENT`.

use anyhow::{Result, bail};
use serde_json::json;
use steward_proto::deployment as pb;

use super::deployment_json as js;
use super::deployments::{deployment_name, get, id_of, split_text};
use super::experiments::uuid_like;
use super::output::{table, time};
use super::plan::{pb_duration_text, pct};
use super::registry_json::print;
use super::{DeploymentClient, deployment_client, status_err};
use crate::cli::{ClientArgs, RolloutCmd};

/// `max error rate 0.01, max p99 50 ms, min requests 100`, or `none`.
pub fn guardrails_text(r: &pb::Rollout) -> String {
    let Some(g) = &r.guardrails else {
        return "none".into();
    };
    let mut parts = Vec::new();
    if g.max_error_rate > 0.0 {
        parts.push(format!("max error rate {}", g.max_error_rate));
    }
    if g.max_p99_latency_ms > 0.0 {
        parts.push(format!("max p99 {} ms", g.max_p99_latency_ms));
    }
    if g.min_requests > 0 {
        parts.push(format!("min requests {}", g.min_requests));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// `2 of 4: canary 25%`.
pub fn step_text(r: &pb::Rollout) -> String {
    let i = usize::try_from(r.current_step).unwrap_or(0);
    let weight = r
        .steps
        .get(i)
        .map(|s| pct(s.weight_bp))
        .unwrap_or_else(|| "-".into());
    format!("{} of {}: canary {weight}", i + 1, r.steps.len())
}

/// `RUNNING`, `SUCCEEDED`, `ROLLED_BACK`.
fn state(r: &pb::Rollout) -> String {
    js::rollout_state(r.state)
}

/// The running rollout of `d`, else its latest, else an error.
async fn latest(client: &mut DeploymentClient, d: &pb::Deployment) -> Result<pb::Rollout> {
    if !d.active_rollout.is_empty() {
        return Ok(client
            .get_rollout(pb::GetRolloutRequest {
                name: d.active_rollout.clone(),
            })
            .await
            .map_err(status_err)?
            .into_inner());
    }
    let all = client
        .list_rollouts(pb::ListRolloutsRequest {
            deployment: d.name.clone(),
        })
        .await
        .map_err(status_err)?
        .into_inner()
        .rollouts;
    // Newest first.
    match all.into_iter().next() {
        Some(r) => Ok(r),
        None => bail!(
            "{} has no rollouts (start one with `steward deploy VERSION --env {} --canary`)",
            d.name,
            id_of(&d.environment)
        ),
    }
}

/// The running rollout's name, or an error saying there is none.
fn running(d: &pb::Deployment) -> Result<String> {
    if d.active_rollout.is_empty() {
        bail!(
            "no rollout is running on {} (see `steward rollout status {}`)",
            d.name,
            id_of(&d.name)
        );
    }
    Ok(d.active_rollout.clone())
}

/// Prints a rollout and the deployment's split now.
fn print_status(r: &pb::Rollout, d: &pb::Deployment) {
    let mut t = table(&["FIELD", "VALUE"]);
    let mut row = |k: &str, v: String| {
        if !v.is_empty() {
            t.add_row(vec![k.to_string(), v]);
        }
    };
    row("rollout", r.name.clone());
    row("version", format!("{} (v{})", r.model_version, r.version));
    row("state", state(r));
    let running = r.state == pb::RolloutState::Running as i32;
    if running {
        row("step", step_text(r));
        row("step started", time(&r.step_start_time));
    }
    let bakes: Vec<String> = r
        .steps
        .iter()
        .map(|s| format!("{} for {}", pct(s.weight_bp), pb_duration_text(&s.bake)))
        .collect();
    row("steps", bakes.join(" -> "));
    row("guardrails", guardrails_text(r));
    row("base revision", r.base_revision.to_string());
    row("reason", r.reason.clone());
    row("creator", r.creator.clone());
    row("created", time(&r.create_time));
    row("updated", time(&r.update_time));
    if let Some(rev) = &d.current_revision {
        row(
            "weights now",
            format!("{} (revision {})", split_text(rev), rev.number),
        );
    }
    println!("{t}");
    let mut h = table(&["TIME", "EVENT", "STEP", "ACTOR", "REASON"]);
    for e in &r.history {
        h.add_row(vec![
            time(&e.time),
            e.kind.clone(),
            (e.step + 1).to_string(),
            e.actor.clone(),
            e.reason.clone(),
        ]);
    }
    println!("history:\n{h}");
}

/// Runs a rollout command.
pub async fn run(cmd: RolloutCmd, c: &ClientArgs) -> Result<()> {
    let mut client = deployment_client(c).await?;
    match cmd {
        RolloutCmd::Status { deployment } => {
            let d = get(&mut client, &deployment_name(&deployment)?).await?;
            let r = latest(&mut client, &d).await?;
            if c.json {
                print(&json!({"rollout": js::rollout(&r), "deployment": js::deployment(&d)}));
            } else {
                print_status(&r, &d);
            }
        }
        RolloutCmd::Promote { deployment, reason } => {
            let name = deployment_name(&deployment)?;
            let d = get(&mut client, &name).await?;
            let r = client
                .promote_rollout(pb::PromoteRolloutRequest {
                    name: running(&d)?,
                    reason,
                    request_id: uuid_like(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            let d = get(&mut client, &name).await?;
            if c.json {
                print(&json!({"rollout": js::rollout(&r), "deployment": js::deployment(&d)}));
                return Ok(());
            }
            if r.state == pb::RolloutState::Succeeded as i32 {
                println!(
                    "promoted {}: SUCCEEDED, v{} serves all traffic",
                    r.name, r.version
                );
            } else {
                println!("promoted {}: now at step {}", r.name, step_text(&r));
            }
            print_split(&d);
        }
        RolloutCmd::Rollback { deployment, reason } => {
            let name = deployment_name(&deployment)?;
            let d = get(&mut client, &name).await?;
            let r = client
                .rollback_rollout(pb::RollbackRolloutRequest {
                    name: running(&d)?,
                    reason,
                    request_id: uuid_like(),
                })
                .await
                .map_err(status_err)?
                .into_inner();
            let d = get(&mut client, &name).await?;
            if c.json {
                print(&json!({"rollout": js::rollout(&r), "deployment": js::deployment(&d)}));
                return Ok(());
            }
            println!(
                "rolled back {}: {}, back on the split of revision {}{}",
                r.name,
                state(&r),
                r.base_revision,
                if r.reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.reason)
                }
            );
            print_split(&d);
        }
    }
    Ok(())
}

/// `  split: main 100% (v1) (revision 3)`.
fn print_split(d: &pb::Deployment) {
    if let Some(rev) = &d.current_revision {
        println!("  split: {} (revision {})", split_text(rev), rev.number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_guardrails_read_as_text() {
        let mut r = pb::Rollout {
            steps: [500, 2_500, 10_000]
                .into_iter()
                .map(|weight_bp| pb::RolloutStep {
                    weight_bp,
                    bake: None,
                })
                .collect(),
            current_step: 1,
            ..Default::default()
        };
        assert_eq!(step_text(&r), "2 of 3: canary 25%");
        assert_eq!(guardrails_text(&r), "none");
        r.guardrails = Some(pb::Guardrails {
            max_error_rate: 0.01,
            max_p99_latency_ms: 50.0,
            min_requests: 100,
        });
        assert_eq!(
            guardrails_text(&r),
            "max error rate 0.01, max p99 50 ms, min requests 100"
        );
        let d = pb::Deployment {
            name: "deployments/d".into(),
            ..Default::default()
        };
        let e = running(&d).unwrap_err().to_string();
        assert!(e.contains("rollout status d"), "{e}");
    }
}
