//! `steward.deployment.v1.DeploymentService` over the app layer.

use std::sync::Arc;

use steward_common::Error;
use steward_common::names::{ModelId, ModelName};
use steward_common::validate;
use steward_grpc::{PageTokenCodec, to_status};
use steward_proto::deployment as pb;
use steward_proto::deployment::deployment_service_server::DeploymentService;
use steward_runtime::request::{ctx, scope};
use tonic::{Request, Response, Status};

use super::convert;
use crate::app::Deployments;
use crate::app::ab::NewAbTest;
use crate::app::deployments::NewDeployment;
use crate::app::environments::EnvironmentPatch;
use crate::domain::Environment;

type Result<T> = std::result::Result<Response<T>, Status>;
type R<T> = std::result::Result<T, Status>;

/// Longest decision key: a request id (at most 128) plus the `:shadow` suffix of shadow records.
const MAX_DECISION_ID: usize = 200;

/// The gRPC service.
#[derive(Clone)]
pub struct DeploymentApi {
    app: Deployments,
    tokens: Arc<PageTokenCodec>,
}

impl DeploymentApi {
    /// Wraps the app.
    pub fn new(app: Deployments, tokens: Arc<PageTokenCodec>) -> Self {
        Self { app, tokens }
    }
}

fn st(e: Error) -> Status {
    to_status(&e)
}

/// `deployments/{d}` (or a bare id when `lenient`) to the id.
pub fn dep_id(s: &str, field: &str) -> std::result::Result<String, Error> {
    let id = s.strip_prefix("deployments/").unwrap_or(s);
    Ok(ModelId::parse(id, field)
        .map_err(|_| {
            Error::invalid_field(
                field,
                format!("{s:?} is not of the form deployments/{{deployment}}"),
            )
        })?
        .as_str()
        .to_string())
}

fn sub_id(s: &str, kind: &str, field: &str) -> R<(String, String)> {
    let bad = || {
        st(Error::invalid_field(
            field,
            format!("{s:?} is not of the form deployments/{{d}}/{kind}/{{id}}"),
        ))
    };
    let rest = s.strip_prefix("deployments/").ok_or_else(bad)?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [d, k, id]
            if *k == kind
                && !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok((dep_id(d, field).map_err(st)?, id.to_string()))
        }
        _ => Err(bad()),
    }
}

fn env_id(s: &str, field: &str) -> R<String> {
    let n = s.strip_prefix("environments/").unwrap_or(s);
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.as_bytes()[0].is_ascii_lowercase()
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(n.to_string())
    } else {
        Err(st(Error::invalid_field(
            field,
            "environments/{name}: lowercase letters, digits, '-' or '_'",
        )))
    }
}

fn url(u: &str, field: &str) -> R<()> {
    if u.is_empty()
        || ((u.starts_with("http://") || u.starts_with("https://"))
            && u.len() <= 2048
            && !u.chars().any(char::is_whitespace))
    {
        Ok(())
    } else {
        Err(st(Error::invalid_field(
            field,
            "an http(s)://host:port URL",
        )))
    }
}

/// A decision key: a request id, or `{id}:shadow` for a shadow's record.
fn decision_id(id: &str) -> R<()> {
    if id.is_empty() || id.len() > MAX_DECISION_ID {
        return Err(st(Error::invalid_field(
            "request_id",
            "1-200 characters (a request id, or {id}:shadow)",
        )));
    }
    Ok(())
}

fn reason(s: &str, field: &str) -> R<()> {
    validate::text(field, s, 2000).map_err(st)
}

#[tonic::async_trait]
impl DeploymentService for DeploymentApi {
    async fn create_environment(
        &self,
        req: Request<pb::CreateEnvironmentRequest>,
    ) -> Result<pb::Environment> {
        let c = ctx(&req);
        let r = req.into_inner();
        let e = r
            .environment
            .ok_or_else(|| st(Error::invalid_field("environment", "required")))?;
        let name = env_id(&e.name, "environment.name")?;
        validate::text("environment.description", &e.description, 10_000).map_err(st)?;
        url(&e.upstream_url, "environment.upstream_url")?;
        let policy = e.policy.unwrap_or_default();
        let prev = if policy.require_previous_environment.is_empty() {
            String::new()
        } else {
            env_id(
                &policy.require_previous_environment,
                "environment.policy.require_previous_environment",
            )?
        };
        let env = Environment {
            name,
            order: i64::from(e.order),
            description: e.description,
            require_approved: policy.require_approved,
            require_previous_env: prev,
            require_reproducible: policy.require_reproducible,
            upstream_url: e.upstream_url,
            create_time: 0,
            update_time: 0,
            revision: 0,
        };
        let out = self
            .app
            .create_environment(&c, env, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::environment(&out)))
    }

    async fn get_environment(
        &self,
        req: Request<pb::GetEnvironmentRequest>,
    ) -> Result<pb::Environment> {
        let n = env_id(&req.get_ref().name, "name")?;
        Ok(Response::new(convert::environment(
            &self.app.get_environment(&n).await.map_err(st)?,
        )))
    }

    async fn list_environments(
        &self,
        _req: Request<pb::ListEnvironmentsRequest>,
    ) -> Result<pb::ListEnvironmentsResponse> {
        let all = self.app.list_environments().await.map_err(st)?;
        Ok(Response::new(pb::ListEnvironmentsResponse {
            environments: all.iter().map(convert::environment).collect(),
        }))
    }

    async fn update_environment(
        &self,
        req: Request<pb::UpdateEnvironmentRequest>,
    ) -> Result<pb::Environment> {
        let c = ctx(&req);
        let r = req.into_inner();
        let e = r
            .environment
            .ok_or_else(|| st(Error::invalid_field("environment", "required")))?;
        let name = env_id(&e.name, "environment.name")?;
        if r.update_mask.is_empty() {
            return Err(st(Error::invalid_field(
                "update_mask",
                "name the fields: order, description, policy, upstream_url",
            )));
        }
        let mut p = EnvironmentPatch::default();
        for m in &r.update_mask {
            match m.as_str() {
                "order" => p.order = Some(i64::from(e.order)),
                "description" => {
                    validate::text("environment.description", &e.description, 10_000)
                        .map_err(st)?;
                    p.description = Some(e.description.clone())
                }
                "policy" => {
                    let pol = e.policy.clone().unwrap_or_default();
                    let prev = if pol.require_previous_environment.is_empty() {
                        String::new()
                    } else {
                        env_id(
                            &pol.require_previous_environment,
                            "environment.policy.require_previous_environment",
                        )?
                    };
                    p.policy = Some((pol.require_approved, prev, pol.require_reproducible));
                }
                "upstream_url" => {
                    url(&e.upstream_url, "environment.upstream_url")?;
                    p.upstream_url = Some(e.upstream_url.clone())
                }
                other => {
                    return Err(st(Error::invalid_field(
                        "update_mask",
                        format!("{other:?} cannot be updated"),
                    )));
                }
            }
        }
        let out = self
            .app
            .update_environment(&c, &name, p, &e.etag, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::environment(&out)))
    }

    async fn create_deployment(
        &self,
        req: Request<pb::CreateDeploymentRequest>,
    ) -> Result<pb::Deployment> {
        let c = ctx(&req);
        let r = req.into_inner();
        let d = r
            .deployment
            .ok_or_else(|| st(Error::invalid_field("deployment", "required")))?;
        let model = ModelName::parse(&d.registered_model, "deployment.registered_model")
            .map_err(st)?
            .model
            .as_str()
            .to_string();
        let env = env_id(&d.environment, "deployment.environment")?;
        let id = if d.name.is_empty() {
            String::new()
        } else {
            dep_id(&d.name, "deployment.name").map_err(st)?
        };
        for (i, v) in r.variants.iter().enumerate() {
            url(&v.upstream_url, &format!("variants[{i}].upstream_url"))?;
        }
        let new = NewDeployment {
            id,
            model,
            environment: env,
            variants: r.variants.iter().map(convert::spec).collect(),
            shadow: r.shadow.as_ref().map(convert::spec),
        };
        let out = self
            .app
            .create_deployment(&c, new, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::deployment(&out)))
    }

    async fn get_deployment(
        &self,
        req: Request<pb::GetDeploymentRequest>,
    ) -> Result<pb::Deployment> {
        let id = dep_id(&req.get_ref().name, "name").map_err(st)?;
        Ok(Response::new(convert::deployment(
            &self.app.get_deployment(&id).await.map_err(st)?,
        )))
    }

    async fn list_deployments(
        &self,
        req: Request<pb::ListDeploymentsRequest>,
    ) -> Result<pb::ListDeploymentsResponse> {
        let r = req.into_inner();
        let model = if r.registered_model.is_empty() {
            None
        } else {
            Some(
                ModelName::parse(&r.registered_model, "registered_model")
                    .map_err(st)?
                    .model
                    .as_str()
                    .to_string(),
            )
        };
        let env = if r.environment.is_empty() {
            None
        } else {
            Some(env_id(&r.environment, "environment")?)
        };
        let served = if r.model_version.is_empty() {
            None
        } else {
            match steward_common::names::VersionRef::parse(&r.model_version, "model_version")
                .map_err(st)?
            {
                steward_common::names::VersionRef::Number(m, v) => {
                    Some((m.as_str().to_string(), v))
                }
                _ => {
                    return Err(st(Error::invalid_field(
                        "model_version",
                        "a version number, not an alias",
                    )));
                }
            }
        };
        let page_size =
            validate::page_size(r.page_size, 100, self.app.limits().max_page_size).map_err(st)?;
        let sc = scope(&[
            "deployments",
            &r.registered_model,
            &r.environment,
            &r.model_version,
        ]);
        let after: Option<String> = if r.page_token.is_empty() {
            None
        } else {
            Some(self.tokens.decode(&sc, &r.page_token).map_err(st)?)
        };
        let items = self
            .app
            .list_deployments(
                model.as_deref(),
                env.as_deref(),
                served.as_ref().map(|(m, v)| (m.as_str(), *v)),
                after.as_deref(),
                page_size,
            )
            .await
            .map_err(st)?;
        let next = if items.len() == page_size {
            items
                .last()
                .map(|v| self.tokens.encode(&sc, &v.deployment.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListDeploymentsResponse {
            deployments: items.iter().map(convert::deployment).collect(),
            next_page_token: next,
        }))
    }

    async fn apply_revision(
        &self,
        req: Request<pb::ApplyRevisionRequest>,
    ) -> Result<pb::Deployment> {
        let c = ctx(&req);
        let r = req.into_inner();
        let id = dep_id(&r.deployment, "deployment").map_err(st)?;
        reason(&r.reason, "reason")?;
        for (i, v) in r.variants.iter().enumerate() {
            url(&v.upstream_url, &format!("variants[{i}].upstream_url"))?;
        }
        let out = self
            .app
            .apply_revision(
                &c,
                &id,
                r.variants.iter().map(convert::spec).collect(),
                r.shadow.as_ref().map(convert::spec),
                &r.reason,
                &r.etag,
                &r.request_id,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::deployment(&out)))
    }

    async fn list_revisions(
        &self,
        req: Request<pb::ListRevisionsRequest>,
    ) -> Result<pb::ListRevisionsResponse> {
        let r = req.into_inner();
        let id = dep_id(&r.deployment, "deployment").map_err(st)?;
        let page_size =
            validate::page_size(r.page_size, 100, self.app.limits().max_page_size).map_err(st)?;
        let sc = scope(&["revisions", &id]);
        let before: Option<i64> = if r.page_token.is_empty() {
            None
        } else {
            Some(self.tokens.decode(&sc, &r.page_token).map_err(st)?)
        };
        let revs = self
            .app
            .list_revisions(&id, before, page_size)
            .await
            .map_err(st)?;
        let next = if revs.len() == page_size {
            revs.last()
                .map(|x| self.tokens.encode(&sc, &x.number))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListRevisionsResponse {
            revisions: revs.iter().map(convert::revision).collect(),
            next_page_token: next,
        }))
    }

    async fn rollback_deployment(
        &self,
        req: Request<pb::RollbackDeploymentRequest>,
    ) -> Result<pb::Deployment> {
        let c = ctx(&req);
        let r = req.into_inner();
        let id = dep_id(&r.deployment, "deployment").map_err(st)?;
        if r.revision < 1 {
            return Err(st(Error::invalid_field(
                "revision",
                "a revision number (1 or more)",
            )));
        }
        reason(&r.reason, "reason")?;
        let out = self
            .app
            .rollback(&c, &id, r.revision, &r.reason, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::deployment(&out)))
    }

    async fn delete_deployment(
        &self,
        req: Request<pb::DeleteDeploymentRequest>,
    ) -> Result<pb::DeleteDeploymentResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let id = dep_id(&r.name, "name").map_err(st)?;
        self.app
            .delete_deployment(&c, &id, &r.etag, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeleteDeploymentResponse {}))
    }

    async fn start_rollout(&self, req: Request<pb::StartRolloutRequest>) -> Result<pb::Rollout> {
        let c = ctx(&req);
        let r = req.into_inner();
        let id = dep_id(&r.deployment, "deployment").map_err(st)?;
        let steps = convert::steps(&r.steps).map_err(st)?;
        let g = convert::guardrails(r.guardrails.as_ref()).map_err(st)?;
        let out = self
            .app
            .start_rollout(&c, &id, &r.model_version, steps, g, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::rollout(&out)))
    }

    async fn get_rollout(&self, req: Request<pb::GetRolloutRequest>) -> Result<pb::Rollout> {
        let (d, id) = sub_id(&req.get_ref().name, "rollouts", "name")?;
        Ok(Response::new(convert::rollout(
            &self.app.get_rollout(&d, &id).await.map_err(st)?,
        )))
    }

    async fn list_rollouts(
        &self,
        req: Request<pb::ListRolloutsRequest>,
    ) -> Result<pb::ListRolloutsResponse> {
        let id = dep_id(&req.get_ref().deployment, "deployment").map_err(st)?;
        let all = self.app.list_rollouts(&id).await.map_err(st)?;
        Ok(Response::new(pb::ListRolloutsResponse {
            rollouts: all.iter().map(convert::rollout).collect(),
        }))
    }

    async fn promote_rollout(
        &self,
        req: Request<pb::PromoteRolloutRequest>,
    ) -> Result<pb::Rollout> {
        let c = ctx(&req);
        let r = req.into_inner();
        let (d, id) = sub_id(&r.name, "rollouts", "name")?;
        reason(&r.reason, "reason")?;
        Ok(Response::new(convert::rollout(
            &self
                .app
                .promote_rollout(&c, &d, &id, &r.reason, &r.request_id)
                .await
                .map_err(st)?,
        )))
    }

    async fn rollback_rollout(
        &self,
        req: Request<pb::RollbackRolloutRequest>,
    ) -> Result<pb::Rollout> {
        let c = ctx(&req);
        let r = req.into_inner();
        let (d, id) = sub_id(&r.name, "rollouts", "name")?;
        reason(&r.reason, "reason")?;
        Ok(Response::new(convert::rollout(
            &self
                .app
                .rollback_rollout(&c, &d, &id, &r.reason, &r.request_id)
                .await
                .map_err(st)?,
        )))
    }

    async fn create_ab_test(&self, req: Request<pb::CreateAbTestRequest>) -> Result<pb::AbTest> {
        let c = ctx(&req);
        let r = req.into_inner();
        let id = dep_id(&r.deployment, "deployment").map_err(st)?;
        let t = r
            .ab_test
            .ok_or_else(|| st(Error::invalid_field("ab_test", "required")))?;
        let new = NewAbTest {
            variants: t.variants,
            metric: t.metric,
            kind: convert::metric_kind(t.metric_kind).map_err(st)?,
            alpha: if t.alpha == 0.0 { 0.05 } else { t.alpha },
            sequential: t.sequential,
        };
        Ok(Response::new(convert::ab_test(
            &self
                .app
                .create_ab_test(&c, &id, new, &r.request_id)
                .await
                .map_err(st)?,
        )))
    }

    async fn get_ab_test(&self, req: Request<pb::GetAbTestRequest>) -> Result<pb::AbTest> {
        let (d, id) = sub_id(&req.get_ref().name, "abTests", "name")?;
        Ok(Response::new(convert::ab_test(
            &self.app.get_ab_test(&d, &id).await.map_err(st)?,
        )))
    }

    async fn report_outcome(
        &self,
        req: Request<pb::ReportOutcomeRequest>,
    ) -> Result<pb::ReportOutcomeResponse> {
        let r = req.into_inner();
        let (d, id) = sub_id(&r.ab_test, "abTests", "ab_test")?;
        if r.request_id.is_empty() || r.request_id.len() > 128 {
            return Err(st(Error::invalid_field(
                "request_id",
                "the routed request's id (1-128 characters)",
            )));
        }
        let variant = self
            .app
            .report_outcome(&d, &id, &r.request_id, r.value)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ReportOutcomeResponse { variant }))
    }

    async fn get_ab_test_results(
        &self,
        req: Request<pb::GetAbTestResultsRequest>,
    ) -> Result<pb::AbTestResults> {
        let (d, id) = sub_id(&req.get_ref().name, "abTests", "name")?;
        Ok(Response::new(convert::results(
            &self.app.ab_results(&d, &id).await.map_err(st)?,
        )))
    }

    async fn conclude_ab_test(
        &self,
        req: Request<pb::ConcludeAbTestRequest>,
    ) -> Result<pb::AbTest> {
        let c = ctx(&req);
        let r = req.into_inner();
        let (d, id) = sub_id(&r.name, "abTests", "name")?;
        Ok(Response::new(convert::ab_test(
            &self
                .app
                .conclude_ab_test(&c, &d, &id, &r.winner, r.promote_best, &r.request_id)
                .await
                .map_err(st)?,
        )))
    }

    async fn route(&self, req: Request<pb::RouteRequest>) -> Result<pb::RouteResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let id = dep_id(&r.deployment, "deployment").map_err(st)?;
        if r.routing_key.len() > 512 || r.routing_key.contains('\0') {
            return Err(st(Error::invalid_field(
                "routing_key",
                "at most 512 bytes, no NUL",
            )));
        }
        if r.request_id.len() > 128 || r.request_id.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(st(Error::invalid_field(
                "request_id",
                "1-128 printable ASCII characters",
            )));
        }
        let out = self
            .app
            .route(&c, &id, &r.routing_key, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::RouteResponse {
            request_id: out.request_id,
            variant: out.variant.name.clone(),
            model_version: format!(
                "registeredModels/{}/versions/{}",
                out.deployment.model, out.variant.version
            ),
            artifact_uri: out.variant.artifact_uri.clone(),
            format: out.variant.format.clone(),
            revision: out.revision,
            upstream_url: out.variant.upstream_url.clone(),
        }))
    }

    async fn explain_decision(
        &self,
        req: Request<pb::ExplainDecisionRequest>,
    ) -> Result<pb::DecisionExplanation> {
        let id = &req.get_ref().request_id;
        decision_id(id)?;
        Ok(Response::new(convert::explanation(
            &self.app.explain(id).await.map_err(st)?,
        )))
    }

    async fn get_decision(
        &self,
        req: Request<pb::GetDecisionRequest>,
    ) -> Result<pb::DecisionRecord> {
        let id = &req.get_ref().request_id;
        decision_id(id)?;
        Ok(Response::new(convert::decision(
            &self.app.get_decision(id).await.map_err(st)?,
        )))
    }

    async fn erase_decision_inputs(
        &self,
        req: Request<pb::EraseDecisionInputsRequest>,
    ) -> Result<pb::EraseDecisionInputsResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        if r.request_ids.is_empty() || r.request_ids.len() > 1000 {
            return Err(st(Error::invalid_field(
                "request_ids",
                "1 to 1000 request ids",
            )));
        }
        reason(&r.reason, "reason")?;
        let erased = self
            .app
            .erase_inputs(&c, &r.request_ids, &r.reason, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::EraseDecisionInputsResponse {
            erased: erased as i64,
        }))
    }
}
