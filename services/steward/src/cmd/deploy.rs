//! `steward deploy`: create a model's deployment in an environment, apply a revision that
//! gives a version its weight, or (`--canary`) start a step-by-step rollout of a version on the
//! existing deployment.

use anyhow::{Result, bail};
use serde_json::json;
use steward_proto::deployment as pb;
use steward_proto::inference as oip;

use super::deployment_json as js;
use super::deployments::{environment_name, find, id_of, model_of, split_text};
use super::experiments::uuid_like;
use super::plan::{
    DEFAULT_BAKE, FULL_BP, Share, default_steps, duration_text, pct, to_pb_duration, with_variant,
};
use super::registry_json::print;
use super::{DeploymentClient, deployment_client, inference_client, names, status_err};
use crate::cli::{ClientArgs, DeployArgs};

/// Runs `steward deploy`.
pub async fn run(a: DeployArgs, c: &ClientArgs) -> Result<()> {
    let version = names::version_name(&a.model_version)?;
    let model = model_of(&version);
    let env = environment_name(&a.env)?;
    let mut client = deployment_client(c).await?;
    let existing = find(&mut client, &model, &env, a.name.as_deref()).await?;
    if a.canary {
        let Some(d) = existing else {
            bail!(
                "{model} has no deployment in {env} to roll {version} out on: deploy a version \
                 first (without --canary)"
            );
        };
        return canary(&mut client, c, &a, &d, &version).await;
    }
    let weight = a.weight.unwrap_or(FULL_BP);
    let created = existing.is_none();
    let d = match existing {
        None => {
            if weight != FULL_BP {
                bail!(
                    "a new deployment sends all traffic to its one variant: drop --weight, then \
                     deploy another version with --weight to split"
                );
            }
            client
                .create_deployment(pb::CreateDeploymentRequest {
                    deployment: Some(pb::Deployment {
                        name: a
                            .name
                            .as_deref()
                            .map(super::deployments::deployment_name)
                            .transpose()?
                            .unwrap_or_default(),
                        registered_model: model.clone(),
                        environment: env.clone(),
                        ..Default::default()
                    }),
                    variants: vec![pb::Variant {
                        name: a.variant.clone(),
                        model_version: version.clone(),
                        weight_bp: FULL_BP,
                        ..Default::default()
                    }],
                    shadow: None,
                    request_id: uuid_like(),
                })
                .await
                .map_err(status_err)?
                .into_inner()
        }
        Some(d) => apply(&mut client, &d, &a.variant, &version, weight).await?,
    };
    let ready = model_ready(c, &d.name).await;
    if c.json {
        print(&json!({"deployment": js::deployment(&d), "ready": ready.is_ok()}));
        return Ok(());
    }
    let rev = d.current_revision.clone().unwrap_or_default();
    if created {
        println!(
            "created {} in {}: revision {}",
            d.name,
            id_of(&d.environment),
            rev.number
        );
    } else {
        println!("applied revision {} to {}", rev.number, d.name);
    }
    println!("  split:   {}", split_text(&rev));
    match ready {
        Ok(()) => println!(
            "  serving: ready (Open Inference Protocol model {})",
            d.name
        ),
        Err(why) => println!("  serving: not ready ({why})"),
    }
    Ok(())
}

/// Applies a revision to `d` that gives `version` (as variant `variant`) `weight` basis points,
/// the other variants sharing the rest. The kept variants are pinned to the version numbers
/// they serve now (an alias that moved since does not move them) and keep their upstreams;
/// the shadow stays.
async fn apply(
    client: &mut DeploymentClient,
    d: &pb::Deployment,
    variant: &str,
    version: &str,
    weight: i32,
) -> Result<pb::Deployment> {
    let rev = d.current_revision.clone().unwrap_or_default();
    let pin = |v: &pb::Variant| format!("{}/versions/{}", d.registered_model, v.version);
    let current: Vec<Share> = rev
        .variants
        .iter()
        .map(|v| Share {
            name: v.name.clone(),
            model_version: pin(v),
            weight_bp: v.weight_bp,
        })
        .collect();
    let new = Share {
        name: variant.to_string(),
        model_version: version.to_string(),
        weight_bp: weight,
    };
    let variants = with_variant(&current, new)?
        .into_iter()
        .map(|s| {
            let upstream_url = rev
                .variants
                .iter()
                .find(|v| v.name == s.name && s.name != variant)
                .map(|v| v.upstream_url.clone())
                .unwrap_or_default();
            pb::Variant {
                name: s.name,
                model_version: s.model_version,
                weight_bp: s.weight_bp,
                upstream_url,
                ..Default::default()
            }
        })
        .collect();
    let shadow = rev.shadow.as_ref().map(|v| pb::Variant {
        name: v.name.clone(),
        model_version: pin(v),
        upstream_url: v.upstream_url.clone(),
        ..Default::default()
    });
    Ok(client
        .apply_revision(pb::ApplyRevisionRequest {
            deployment: d.name.clone(),
            variants,
            shadow,
            reason: format!("steward deploy {version} ({})", pct(weight)),
            etag: d.etag.clone(),
            request_id: uuid_like(),
        })
        .await
        .map_err(status_err)?
        .into_inner())
}

/// Whether the deployment can serve predictions now (ModelReady loads its model).
async fn model_ready(c: &ClientArgs, name: &str) -> Result<(), String> {
    let mut oip = inference_client(c).await.map_err(|e| e.to_string())?;
    match oip
        .model_ready(oip::ModelReadyRequest {
            name: name.to_string(),
            version: String::new(),
        })
        .await
    {
        Ok(r) if r.get_ref().ready => Ok(()),
        Ok(_) => {
            Err("its version could not be loaded; a non-ONNX version needs an upstream_url".into())
        }
        Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
    }
}

/// `deploy --canary`: starts a rollout of `version` on `d`.
async fn canary(
    client: &mut DeploymentClient,
    c: &ClientArgs,
    a: &DeployArgs,
    d: &pb::Deployment,
    version: &str,
) -> Result<()> {
    let plan = a.steps.clone().unwrap_or_else(default_steps);
    let bake = a.bake.unwrap_or(DEFAULT_BAKE);
    let guardrails = pb::Guardrails {
        max_error_rate: a.max_error_rate.unwrap_or(0.0),
        max_p99_latency_ms: a.max_p99_ms.unwrap_or(0.0),
        min_requests: a.min_requests.unwrap_or(0),
    };
    let r = client
        .start_rollout(pb::StartRolloutRequest {
            deployment: d.name.clone(),
            model_version: version.to_string(),
            steps: plan
                .0
                .iter()
                .map(|bp| pb::RolloutStep {
                    weight_bp: *bp,
                    bake: Some(to_pb_duration(bake)),
                })
                .collect(),
            guardrails: Some(guardrails),
            request_id: uuid_like(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if c.json {
        print(&js::rollout(&r));
        return Ok(());
    }
    let steps: Vec<String> = plan.0.iter().map(|bp| pct(*bp)).collect();
    println!(
        "started {}: {} as canary at {} (step 1 of {})",
        r.name,
        r.model_version,
        steps.first().map(String::as_str).unwrap_or("-"),
        steps.len()
    );
    println!(
        "  steps:      {} (each baking {})",
        steps.join(" -> "),
        duration_text(bake)
    );
    println!("  guardrails: {}", super::rollouts::guardrails_text(&r));
    println!("  follow it:  steward rollout status {}", id_of(&d.name));
    Ok(())
}
