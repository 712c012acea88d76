//! `steward.registry.v1.RegistryService` over the app layer.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use steward_artifacts::ArtifactPath;
use steward_common::Error;
use steward_common::names::{ModelName, VersionRef, parse_alias};
use steward_common::validate;
use steward_grpc::{PageTokenCodec, from_ts, to_status};
use steward_proto::registry as pb;
use steward_proto::registry::registry_service_server::RegistryService;
use steward_runtime::request::{ctx, mask_paths, scope};
use tonic::{Request, Response, Status};

use super::convert;
use crate::app::Registry;
use crate::app::aliases::AliasHistoryQuery;
use crate::app::models::{ListModels, ModelPatch, NewModel};
use crate::app::versions::{ListVersions, NewVersion, VersionPatch, VersionSource};
use crate::domain::validate as rules;

type Result<T> = std::result::Result<Response<T>, Status>;

/// Max description length.
const MAX_DESCRIPTION: usize = rules::MAX_DESCRIPTION;

/// The gRPC service.
#[derive(Clone)]
pub struct RegistryApi {
    app: Registry,
    tokens: Arc<PageTokenCodec>,
}

impl RegistryApi {
    /// Wraps the app; `tokens` signs page tokens.
    pub fn new(app: Registry, tokens: Arc<PageTokenCodec>) -> Self {
        Self { app, tokens }
    }
}

fn st(e: Error) -> Status {
    to_status(&e)
}

fn model_of(s: &str, field: &str) -> std::result::Result<String, Status> {
    Ok(ModelName::parse(s, field)
        .map_err(st)?
        .model
        .as_str()
        .to_string())
}

fn vref(s: &str, field: &str) -> std::result::Result<VersionRef, Status> {
    VersionRef::parse(s, field).map_err(st)
}

impl RegistryApi {
    fn page_size(&self, v: i32) -> std::result::Result<usize, Status> {
        validate::page_size(v, 100, self.app.limits().max_page_size).map_err(st)
    }

    fn cursor<T: DeserializeOwned>(
        &self,
        sc: &str,
        token: &str,
    ) -> std::result::Result<Option<T>, Status> {
        if token.is_empty() {
            Ok(None)
        } else {
            Ok(Some(self.tokens.decode(sc, token).map_err(st)?))
        }
    }

    fn token<T: Serialize>(&self, sc: &str, next: Option<T>) -> String {
        next.map(|c| self.tokens.encode(sc, &c)).unwrap_or_default()
    }
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn create_registered_model(
        &self,
        req: Request<pb::CreateRegisteredModelRequest>,
    ) -> Result<pb::RegisteredModel> {
        let c = ctx(&req);
        let r = req.into_inner();
        let m = r
            .registered_model
            .ok_or_else(|| st(Error::invalid_field("registered_model", "required")))?;
        let name = ModelName::parse_lenient(&m.name, "registered_model.name").map_err(st)?;
        validate::text(
            "registered_model.description",
            &m.description,
            MAX_DESCRIPTION,
        )
        .map_err(st)?;
        let tags =
            validate::tag_map(&m.tags, "registered_model.tags", self.app.limits()).map_err(st)?;
        let new = NewModel {
            name: name.model.as_str().to_string(),
            description: m.description,
            tags,
        };
        let out = self
            .app
            .create_model(&c, new, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::model(&out)))
    }

    async fn get_registered_model(
        &self,
        req: Request<pb::GetRegisteredModelRequest>,
    ) -> Result<pb::RegisteredModel> {
        let m = model_of(&req.get_ref().name, "name")?;
        let out = self.app.get_model(&m).await.map_err(st)?;
        Ok(Response::new(convert::model(&out)))
    }

    async fn list_registered_models(
        &self,
        req: Request<pb::ListRegisteredModelsRequest>,
    ) -> Result<pb::ListRegisteredModelsResponse> {
        let r = req.into_inner();
        let page_size = self.page_size(r.page_size)?;
        let sc = scope(&["models", &r.filter, &r.order_by]);
        let cursor = self.cursor(&sc, &r.page_token)?;
        let (items, next) = self
            .app
            .list_models(ListModels {
                filter: r.filter,
                order_by: r.order_by,
                page_size,
                cursor,
            })
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListRegisteredModelsResponse {
            registered_models: items.iter().map(convert::model).collect(),
            next_page_token: self.token(&sc, next),
        }))
    }

    async fn update_registered_model(
        &self,
        req: Request<pb::UpdateRegisteredModelRequest>,
    ) -> Result<pb::RegisteredModel> {
        let c = ctx(&req);
        let r = req.into_inner();
        let m = r
            .registered_model
            .ok_or_else(|| st(Error::invalid_field("registered_model", "required")))?;
        let name = model_of(&m.name, "registered_model.name")?;
        let paths = mask_paths(&r.update_mask);
        if paths.is_empty() {
            return Err(st(Error::invalid_field(
                "update_mask",
                "name the fields to update: description, tags",
            )));
        }
        let mut patch = ModelPatch::default();
        for p in &paths {
            match p.as_str() {
                "description" => {
                    validate::text(
                        "registered_model.description",
                        &m.description,
                        MAX_DESCRIPTION,
                    )
                    .map_err(st)?;
                    patch.description = Some(m.description.clone());
                }
                "tags" => {
                    patch.tags = Some(
                        validate::tag_map(&m.tags, "registered_model.tags", self.app.limits())
                            .map_err(st)?,
                    )
                }
                other => {
                    return Err(st(Error::invalid_field(
                        "update_mask",
                        format!("{other:?} cannot be updated (description, tags)"),
                    )));
                }
            }
        }
        let out = self
            .app
            .update_model(&c, &name, patch, &m.etag, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::model(&out)))
    }

    async fn delete_registered_model(
        &self,
        req: Request<pb::DeleteRegisteredModelRequest>,
    ) -> Result<pb::DeleteRegisteredModelResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let name = model_of(&r.name, "name")?;
        self.app
            .delete_model(&c, &name, &r.etag, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeleteRegisteredModelResponse {}))
    }

    async fn create_model_version(
        &self,
        req: Request<pb::CreateModelVersionRequest>,
    ) -> Result<pb::ModelVersion> {
        let c = ctx(&req);
        let r = req.into_inner();
        let model = model_of(&r.parent, "parent")?;
        let v = r
            .model_version
            .ok_or_else(|| st(Error::invalid_field("model_version", "required")))?;
        let source = match (v.source_run.is_empty(), v.source_uri.is_empty()) {
            (false, true) => {
                steward_common::names::RunName::parse(&v.source_run, "model_version.source_run")
                    .map_err(st)?;
                if v.artifact_path.is_empty() {
                    return Err(st(Error::invalid_field(
                        "model_version.artifact_path",
                        "required with source_run (the model's directory or file, e.g. \"model\")",
                    )));
                }
                let path = ArtifactPath::parse(
                    v.artifact_path.trim_end_matches('/'),
                    "model_version.artifact_path",
                )
                .map_err(st)?;
                if !v.content_digest.is_empty() {
                    return Err(st(Error::invalid_field(
                        "model_version.content_digest",
                        "is computed from the run's artifacts; leave it empty",
                    )));
                }
                VersionSource::Run {
                    run: v.source_run.clone(),
                    artifact_path: path.as_str().to_string(),
                }
            }
            (true, false) => {
                rules::external_uri("model_version.source_uri", &v.source_uri).map_err(st)?;
                if !v.content_digest.is_empty() {
                    rules::digest("model_version.content_digest", &v.content_digest).map_err(st)?;
                }
                if !v.artifact_path.is_empty() {
                    return Err(st(Error::invalid_field(
                        "model_version.artifact_path",
                        "only with source_run",
                    )));
                }
                VersionSource::External {
                    uri: v.source_uri.clone(),
                    digest: v.content_digest.clone(),
                }
            }
            _ => {
                return Err(st(Error::invalid_field(
                    "model_version.source_run",
                    "set exactly one of source_run (with artifact_path) or source_uri",
                )));
            }
        };
        let format = rules::format("model_version.format", &v.format).map_err(st)?;
        let signature = convert::signature_in(v.signature.as_ref());
        rules::signature("model_version.signature", &signature).map_err(st)?;
        validate::text("model_version.description", &v.description, MAX_DESCRIPTION).map_err(st)?;
        let tags =
            validate::tag_map(&v.tags, "model_version.tags", self.app.limits()).map_err(st)?;
        let new = NewVersion {
            source,
            format,
            signature,
            description: v.description,
            tags,
        };
        let out = self
            .app
            .create_version(&c, &model, new, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::version(&out)))
    }

    async fn get_model_version(
        &self,
        req: Request<pb::GetModelVersionRequest>,
    ) -> Result<pb::ModelVersion> {
        let r = vref(&req.get_ref().name, "name")?;
        let out = self.app.get_version(&r).await.map_err(st)?;
        Ok(Response::new(convert::version(&out)))
    }

    async fn list_model_versions(
        &self,
        req: Request<pb::ListModelVersionsRequest>,
    ) -> Result<pb::ListModelVersionsResponse> {
        let r = req.into_inner();
        let model = model_of(&r.parent, "parent")?;
        let page_size = self.page_size(r.page_size)?;
        let sc = scope(&["versions", &model, &r.filter, &r.order_by]);
        let cursor = self.cursor(&sc, &r.page_token)?;
        let (items, next) = self
            .app
            .list_versions(ListVersions {
                model,
                filter: r.filter,
                order_by: r.order_by,
                page_size,
                cursor,
            })
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListModelVersionsResponse {
            model_versions: items.iter().map(convert::version).collect(),
            next_page_token: self.token(&sc, next),
        }))
    }

    async fn update_model_version(
        &self,
        req: Request<pb::UpdateModelVersionRequest>,
    ) -> Result<pb::ModelVersion> {
        let c = ctx(&req);
        let r = req.into_inner();
        let v = r
            .model_version
            .ok_or_else(|| st(Error::invalid_field("model_version", "required")))?;
        let target = vref(&v.name, "model_version.name")?;
        let paths = mask_paths(&r.update_mask);
        if paths.is_empty() {
            return Err(st(Error::invalid_field(
                "update_mask",
                "name the fields to update: description, tags, status, status_message, content_digest",
            )));
        }
        let mut patch = VersionPatch::default();
        for p in &paths {
            match p.as_str() {
                "description" => {
                    validate::text("model_version.description", &v.description, MAX_DESCRIPTION)
                        .map_err(st)?;
                    patch.description = Some(v.description.clone());
                }
                "tags" => {
                    patch.tags = Some(
                        validate::tag_map(&v.tags, "model_version.tags", self.app.limits())
                            .map_err(st)?,
                    )
                }
                "status" => {
                    patch.status =
                        Some(convert::target_status(v.status, "model_version.status").map_err(st)?)
                }
                "status_message" => {
                    validate::text(
                        "model_version.status_message",
                        &v.status_message,
                        MAX_DESCRIPTION,
                    )
                    .map_err(st)?;
                    patch.status_message = Some(v.status_message.clone());
                }
                "content_digest" => {
                    rules::digest("model_version.content_digest", &v.content_digest).map_err(st)?;
                    patch.content_digest = Some(v.content_digest.clone());
                }
                other => {
                    return Err(st(Error::invalid_field(
                        "update_mask",
                        format!(
                            "{other:?} cannot be updated (description, tags, status, status_message, content_digest)"
                        ),
                    )));
                }
            }
        }
        let out = self
            .app
            .update_version(&c, &target, patch, &v.etag, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::version(&out)))
    }

    async fn get_lineage(&self, req: Request<pb::GetLineageRequest>) -> Result<pb::Lineage> {
        let r = vref(&req.get_ref().name, "name")?;
        let (v, l) = self.app.lineage(&r).await.map_err(st)?;
        let mut out = convert::lineage(&v, &l);
        out.deployments = self.app.served_by(&v).await.map_err(st)?;
        Ok(Response::new(out))
    }

    async fn compare_model_versions(
        &self,
        req: Request<pb::CompareModelVersionsRequest>,
    ) -> Result<pb::ModelVersionComparison> {
        let r = req.into_inner();
        let a = vref(&r.base, "base")?;
        let b = vref(&r.other, "other")?;
        let (bv, ov, c) = self.app.compare(&a, &b).await.map_err(st)?;
        Ok(Response::new(convert::comparison(&bv, &ov, &c)))
    }

    async fn set_model_version_alias(
        &self,
        req: Request<pb::SetModelVersionAliasRequest>,
    ) -> Result<pb::ModelAlias> {
        let c = ctx(&req);
        let r = req.into_inner();
        let model = model_of(&r.registered_model, "registered_model")?;
        let alias = parse_alias(&r.alias, "alias").map_err(st)?;
        if r.version < 1 {
            return Err(st(Error::invalid_field(
                "version",
                "must be a version number (1 or more)",
            )));
        }
        let mv = self
            .app
            .set_alias(&c, &model, &alias, r.version, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::alias(&mv)))
    }

    async fn delete_model_version_alias(
        &self,
        req: Request<pb::DeleteModelVersionAliasRequest>,
    ) -> Result<pb::DeleteModelVersionAliasResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let model = model_of(&r.registered_model, "registered_model")?;
        let alias = parse_alias(&r.alias, "alias").map_err(st)?;
        self.app
            .delete_alias(&c, &model, &alias, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeleteModelVersionAliasResponse {}))
    }

    async fn list_alias_history(
        &self,
        req: Request<pb::ListAliasHistoryRequest>,
    ) -> Result<pb::ListAliasHistoryResponse> {
        let r = req.into_inner();
        let model = model_of(&r.registered_model, "registered_model")?;
        let alias = if r.alias.is_empty() {
            None
        } else {
            Some(parse_alias(&r.alias, "alias").map_err(st)?)
        };
        let as_of = match &r.as_of {
            Some(t) => {
                if alias.is_none() {
                    return Err(st(Error::invalid_field("alias", "required with as_of")));
                }
                Some(from_ts(t, "as_of").map_err(st)?)
            }
            None => None,
        };
        let page_size = self.page_size(r.page_size)?;
        let sc = scope(&["alias-history", &model, alias.as_deref().unwrap_or("")]);
        let before_id: Option<i64> = self.cursor(&sc, &r.page_token)?;
        let rows = self
            .app
            .alias_history(AliasHistoryQuery {
                model,
                alias,
                as_of,
                page_size,
                before_id,
            })
            .await
            .map_err(st)?;
        let next = (as_of.is_none() && rows.len() == page_size)
            .then(|| rows.last().map(|(id, _)| *id))
            .flatten();
        Ok(Response::new(pb::ListAliasHistoryResponse {
            entries: rows.iter().map(|(_, m)| convert::alias_entry(m)).collect(),
            next_page_token: self.token(&sc, next),
        }))
    }

    async fn review_model_version(
        &self,
        req: Request<pb::ReviewModelVersionRequest>,
    ) -> Result<pb::ModelVersion> {
        let c = ctx(&req);
        let r = req.into_inner();
        let target = vref(&r.name, "name")?;
        let decision = convert::decision(r.decision, "decision").map_err(st)?;
        validate::text("comment", &r.comment, MAX_DESCRIPTION).map_err(st)?;
        let out = self
            .app
            .review(&c, &target, decision, &r.comment, &r.etag, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::version(&out)))
    }

    async fn list_approval_history(
        &self,
        req: Request<pb::ListApprovalHistoryRequest>,
    ) -> Result<pb::ListApprovalHistoryResponse> {
        let r = req.into_inner();
        let target = vref(&r.name, "name")?;
        let page_size = self.page_size(r.page_size)?;
        let sc = scope(&["reviews", &target.to_string()]);
        let before_id: Option<i64> = self.cursor(&sc, &r.page_token)?;
        let rows = self
            .app
            .review_history(&target, before_id, page_size)
            .await
            .map_err(st)?;
        let next = (rows.len() == page_size)
            .then(|| rows.last().map(|(id, _)| *id))
            .flatten();
        Ok(Response::new(pb::ListApprovalHistoryResponse {
            reviews: rows.iter().map(|(_, r)| convert::review_out(r)).collect(),
            next_page_token: self.token(&sc, next),
        }))
    }

    async fn set_model_policy(
        &self,
        req: Request<pb::SetModelPolicyRequest>,
    ) -> Result<pb::ModelPolicy> {
        let c = ctx(&req);
        let r = req.into_inner();
        let p = r
            .policy
            .ok_or_else(|| st(Error::invalid_field("policy", "required")))?;
        let model = model_of(&p.registered_model, "policy.registered_model")?;
        let rules = convert::rules_in(&p.rules);
        let out = self
            .app
            .set_policy(&c, &model, rules, &p.etag, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::policy(&out)))
    }

    async fn get_model_policy(
        &self,
        req: Request<pb::GetModelPolicyRequest>,
    ) -> Result<pb::ModelPolicy> {
        let model = model_of(&req.get_ref().registered_model, "registered_model")?;
        let out = self.app.get_policy(&model).await.map_err(st)?;
        Ok(Response::new(convert::policy(&out)))
    }

    async fn get_reproducibility_manifest(
        &self,
        req: Request<pb::GetReproducibilityManifestRequest>,
    ) -> Result<pb::ReproducibilityManifest> {
        let r = vref(&req.get_ref().name, "name")?;
        let m = self.app.reproducibility(&r).await.map_err(st)?;
        Ok(Response::new(pb::ReproducibilityManifest {
            model_version: m.model_version.clone(),
            artifact_uri: m.artifact_uri.clone(),
            content_digest: m.content_digest.clone(),
            format: m.format.clone(),
            code_version: Some(pb::CodeVersion {
                git_commit: m.code.git_commit.clone(),
                git_repo: m.code.git_repo.clone(),
                git_dirty: m.code.git_dirty,
            }),
            source_run: m.source_run.clone(),
            datasets: m
                .datasets
                .iter()
                .map(|d| pb::ReproducibleDataset {
                    dataset: Some(pb::DatasetRef {
                        name: d.dataset.name.clone(),
                        digest: d.dataset.digest.clone(),
                        source_uri: d.dataset.source_uri.clone(),
                        context: d.dataset.context.clone(),
                    }),
                    version: d.version.clone().unwrap_or_default(),
                })
                .collect(),
            params: m.params.clone().into_iter().collect(),
            environment_files: m
                .environment_files
                .iter()
                .map(|(path, size, sha)| pb::EnvironmentFile {
                    path: path.clone(),
                    size_bytes: *size,
                    sha256: sha.clone(),
                })
                .collect(),
            complete: m.complete(),
            missing: m.missing.clone(),
        }))
    }
}
