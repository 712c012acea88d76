//! `steward deployments ...` and `steward environments ...`, and what the deployment commands
//! share: short deployment and environment names, finding a model's deployment in an
//! environment, and a revision's split in one line.

use anyhow::{Result, bail};
use steward_proto::deployment as pb;

use super::deployment_json as js;
use super::output::{table, time};
use super::plan::pct;
use super::registry_json::print;
use super::{DeploymentClient, deployment_client, names, status_err};
use crate::cli::{ClientArgs, DeploymentsCmd, EnvironmentsCmd};

const DEPLOYMENTS: &str = "deployments/";
const ENVIRONMENTS: &str = "environments/";

/// `{prefix}{id}` for `{id}` or the full name; `what` names the kind in the error.
fn resource(s: &str, prefix: &str, what: &str) -> Result<String> {
    let id = s.strip_prefix(prefix).unwrap_or(s);
    if id.is_empty() || id.contains('/') || id.contains('@') || id.contains(char::is_whitespace) {
        bail!("{s:?} is not {what}: give `{{id}}` or `{prefix}{{id}}`");
    }
    Ok(format!("{prefix}{id}"))
}

/// `deployments/{d}` for `{d}` or the full name.
pub fn deployment_name(s: &str) -> Result<String> {
    resource(s, DEPLOYMENTS, "a deployment")
}

/// `environments/{env}` for `{env}` or the full name.
pub fn environment_name(s: &str) -> Result<String> {
    resource(s, ENVIRONMENTS, "an environment")
}

/// The model of a version name (`registeredModels/{m}/versions/{v}` or
/// `registeredModels/{m}@{alias}`, as [`names::version_name`] gives): `registeredModels/{m}`.
pub fn model_of(version: &str) -> String {
    let end = version
        .find('@')
        .or_else(|| version.find("/versions/"))
        .unwrap_or(version.len());
    version[..end].to_string()
}

/// The last path segment of a resource name (`r1` of `deployments/d/rollouts/r1`).
pub fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// `main 90% (v1), canary 10% (v2)`, plus `+ shadow s (v3)`.
pub fn split_text(r: &pb::Revision) -> String {
    let mut s = r
        .variants
        .iter()
        .map(|v| format!("{} {} (v{})", v.name, pct(v.weight_bp), v.version))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(sh) = &r.shadow {
        s.push_str(&format!(" + shadow {} (v{})", sh.name, sh.version));
    }
    s
}

/// A deployment by name.
pub async fn get(client: &mut DeploymentClient, name: &str) -> Result<pb::Deployment> {
    Ok(client
        .get_deployment(pb::GetDeploymentRequest {
            name: name.to_string(),
        })
        .await
        .map_err(status_err)?
        .into_inner())
}

/// The deployment of `model` in `env`: the one named `name` if given (None when it does not
/// exist yet), else the only one there is (None when there is none). Refuses a named
/// deployment of another model or environment, and a choice between several.
pub async fn find(
    client: &mut DeploymentClient,
    model: &str,
    env: &str,
    name: Option<&str>,
) -> Result<Option<pb::Deployment>> {
    if let Some(n) = name {
        let n = deployment_name(n)?;
        return match client
            .get_deployment(pb::GetDeploymentRequest { name: n.clone() })
            .await
        {
            Ok(d) => {
                let d = d.into_inner();
                if d.registered_model != model || d.environment != env {
                    bail!(
                        "{n} serves {} in {}, not {model} in {env}",
                        d.registered_model,
                        d.environment
                    );
                }
                Ok(Some(d))
            }
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(status_err(s)),
        };
    }
    let page = client
        .list_deployments(pb::ListDeploymentsRequest {
            registered_model: model.to_string(),
            environment: env.to_string(),
            page_size: 10,
            ..Default::default()
        })
        .await
        .map_err(status_err)?
        .into_inner();
    match page.deployments.as_slice() {
        [] => Ok(None),
        [d] => Ok(Some(d.clone())),
        many => bail!(
            "{model} has several deployments in {env} ({}): pick one with --name",
            many.iter()
                .map(|d| id_of(&d.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs a deployments command.
pub async fn run(cmd: DeploymentsCmd, c: &ClientArgs) -> Result<()> {
    let mut client = deployment_client(c).await?;
    match cmd {
        DeploymentsCmd::List { model, env, limit } => {
            let registered_model = model
                .as_deref()
                .map(names::model_name)
                .transpose()?
                .unwrap_or_default();
            let environment = env
                .as_deref()
                .map(environment_name)
                .transpose()?
                .unwrap_or_default();
            let mut rows = Vec::new();
            let mut token = String::new();
            loop {
                let page = client
                    .list_deployments(pb::ListDeploymentsRequest {
                        registered_model: registered_model.clone(),
                        environment: environment.clone(),
                        model_version: String::new(),
                        page_size: (limit - rows.len()).min(1000) as i32,
                        page_token: token,
                    })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                rows.extend(page.deployments);
                token = page.next_page_token;
                if token.is_empty() || rows.len() >= limit {
                    break;
                }
            }
            if c.json {
                rows.iter().for_each(|d| print(&js::deployment(d)));
                return Ok(());
            }
            let mut t = table(&[
                "NAME", "MODEL", "ENV", "REV", "SPLIT", "ROLLOUT", "A/B TEST", "UPDATED",
            ]);
            for d in &rows {
                let (rev, split) = d
                    .current_revision
                    .as_ref()
                    .map(|r| (r.number.to_string(), split_text(r)))
                    .unwrap_or_else(|| ("-".into(), "-".into()));
                let dash = |s: &str| {
                    if s.is_empty() {
                        "-".to_string()
                    } else {
                        id_of(s).to_string()
                    }
                };
                t.add_row(vec![
                    d.name.clone(),
                    id_of(&d.registered_model).to_string(),
                    id_of(&d.environment).to_string(),
                    rev,
                    split,
                    dash(&d.active_rollout),
                    dash(&d.active_ab_test),
                    time(&d.update_time),
                ]);
            }
            println!("{t}");
            println!(
                "{} deployment(s){}",
                rows.len(),
                if token.is_empty() {
                    ""
                } else {
                    " (more: raise --limit)"
                }
            );
        }
    }
    Ok(())
}

/// `approved versions only; after staging`, or `-`.
fn policy_text(p: Option<&pb::EnvironmentPolicy>) -> String {
    let mut parts = Vec::new();
    if let Some(p) = p {
        if p.require_approved {
            parts.push("approved versions only".to_string());
        }
        if !p.require_previous_environment.is_empty() {
            parts.push(format!(
                "deployed in {} first",
                id_of(&p.require_previous_environment)
            ));
        }
        if p.require_reproducible {
            parts.push("reproducible versions only".to_string());
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

/// Runs an environments command.
pub async fn environments(cmd: EnvironmentsCmd, c: &ClientArgs) -> Result<()> {
    let mut client = deployment_client(c).await?;
    match cmd {
        EnvironmentsCmd::List => {
            let envs = client
                .list_environments(pb::ListEnvironmentsRequest {})
                .await
                .map_err(status_err)?
                .into_inner()
                .environments;
            if c.json {
                envs.iter().for_each(|e| print(&js::environment(e)));
                return Ok(());
            }
            let mut t = table(&["NAME", "ORDER", "POLICY", "UPSTREAM", "DESCRIPTION"]);
            for e in &envs {
                t.add_row(vec![
                    e.name.clone(),
                    e.order.to_string(),
                    policy_text(e.policy.as_ref()),
                    if e.upstream_url.is_empty() {
                        "-".into()
                    } else {
                        e.upstream_url.clone()
                    },
                    e.description.clone(),
                ]);
            }
            println!("{t}");
            println!("{} environment(s)", envs.len());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_expand() {
        assert_eq!(deployment_name("d").unwrap(), "deployments/d");
        assert_eq!(deployment_name("deployments/d").unwrap(), "deployments/d");
        assert_eq!(environment_name("staging").unwrap(), "environments/staging");
        for bad in ["", "deployments/", "a/b", "d@x", "a b"] {
            assert!(deployment_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn models_of_versions() {
        assert_eq!(
            model_of("registeredModels/m/versions/3"),
            "registeredModels/m"
        );
        assert_eq!(model_of("registeredModels/m@prod"), "registeredModels/m");
        assert_eq!(id_of("deployments/d/rollouts/r1"), "r1");
    }

    #[test]
    fn splits_read_in_one_line() {
        let v = |name: &str, version, weight_bp| pb::Variant {
            name: name.into(),
            version,
            weight_bp,
            ..Default::default()
        };
        let r = pb::Revision {
            variants: vec![v("main", 1, 9_000), v("canary", 2, 1_000)],
            shadow: Some(v("next", 3, 0)),
            ..Default::default()
        };
        assert_eq!(
            split_text(&r),
            "main 90% (v1), canary 10% (v2) + shadow next (v3)"
        );
        assert_eq!(policy_text(None), "-");
        let p = pb::EnvironmentPolicy {
            require_approved: true,
            require_previous_environment: "environments/staging".into(),
            require_reproducible: true,
        };
        assert_eq!(
            policy_text(Some(&p)),
            "approved versions only; deployed in staging first; reproducible versions only"
        );
    }
}
