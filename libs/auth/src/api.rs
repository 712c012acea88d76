//! `steward.auth.v1.AuthService`: API keys and role grants over the shared tables (served by
//! the registry and by `steward up`; the gate's rules let only global admins manage them).

use std::sync::Arc;

use steward_common::Error;
use steward_grpc::{from_ts, to_status, ts};
use steward_proto::auth as pb;
use steward_proto::auth::auth_service_server::AuthService;
use steward_storage::ops::Ctx;
use tonic::{Request, Response, Status};

use crate::admin::{AuthAdmin, NewKeyRequest};
use crate::gate::{AuthGate, AuthMode};
use crate::key::check_principal;
use crate::role::Role;
use crate::store::{self, GrantRow, KeyRow};

type Result<T> = std::result::Result<Response<T>, Status>;

fn st(e: Error) -> Status {
    to_status(&e)
}

fn ctx<T>(req: &Request<T>) -> Ctx {
    Ctx {
        actor: steward_grpc::actor(req.metadata()),
        trace_id: steward_telemetry::current_trace_id(),
        traceparent: steward_telemetry::current_traceparent(),
    }
}

/// The gRPC implementation of `steward.auth.v1.AuthService`.
#[derive(Clone, Debug)]
pub struct AuthApi {
    admin: AuthAdmin,
    gate: Arc<AuthGate>,
}

impl AuthApi {
    /// Manages keys through `admin`; `gate` answers WhoAmI.
    pub fn new(admin: AuthAdmin, gate: Arc<AuthGate>) -> Self {
        Self { admin, gate }
    }
}

fn key_pb(k: &KeyRow) -> pb::ApiKey {
    pb::ApiKey {
        name: format!("apiKeys/{}", k.id),
        principal: k.principal.clone(),
        kind: i32::from(k.kind),
        description: k.description.clone(),
        creator: k.creator.clone(),
        create_time: Some(ts(k.create_time)),
        expire_time: k.expire_time.map(ts),
        revoke_time: k.revoke_time.map(ts),
    }
}

fn grant_pb(g: &GrantRow) -> pb::Grant {
    pb::Grant {
        principal: g.principal.clone(),
        role: g.role.clone(),
        resource: g.resource.clone(),
        creator: g.creator.clone(),
        create_time: Some(ts(g.create_time)),
    }
}

fn principal_filter(p: &str) -> std::result::Result<Option<&str>, Status> {
    if p.is_empty() {
        return Ok(None);
    }
    check_principal(p, "principal").map_err(st)?;
    Ok(Some(p))
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn create_api_key(
        &self,
        req: Request<pb::CreateApiKeyRequest>,
    ) -> Result<pb::CreateApiKeyResponse> {
        let ctx = ctx(&req);
        let r = req.into_inner();
        let kind = match pb::KeyKind::try_from(r.kind) {
            Ok(pb::KeyKind::Unspecified) | Ok(pb::KeyKind::User) => 1,
            Ok(pb::KeyKind::Service) => 2,
            Err(_) => {
                return Err(st(Error::invalid_field(
                    "kind",
                    format!("{} is not a KeyKind", r.kind),
                )));
            }
        };
        let expire_time = r
            .expire_time
            .as_ref()
            .map(|t| from_ts(t, "expire_time"))
            .transpose()
            .map_err(st)?;
        let role = (!r.role.is_empty())
            .then(|| Role::parse(&r.role, "role"))
            .transpose()
            .map_err(st)?;
        let created = self
            .admin
            .create_key(
                &ctx,
                NewKeyRequest {
                    principal: r.principal,
                    kind,
                    description: r.description,
                    expire_time,
                    role,
                },
                &r.request_id,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            key: Some(key_pb(&created.key)),
            secret: created.secret,
        }))
    }

    async fn list_api_keys(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Result<pb::ListApiKeysResponse> {
        let r = req.into_inner();
        let keys = store::keys(
            self.admin.db().conn(),
            principal_filter(&r.principal)?,
            r.show_revoked,
        )
        .await
        .map_err(st)?;
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: keys.iter().map(key_pb).collect(),
        }))
    }

    async fn revoke_api_key(&self, req: Request<pb::RevokeApiKeyRequest>) -> Result<pb::ApiKey> {
        let ctx = ctx(&req);
        let r = req.into_inner();
        let k = self
            .admin
            .revoke_key(&ctx, &r.name, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(key_pb(&k)))
    }

    async fn create_grant(&self, req: Request<pb::CreateGrantRequest>) -> Result<pb::Grant> {
        let ctx = ctx(&req);
        let r = req.into_inner();
        let g = r
            .grant
            .ok_or_else(|| st(Error::invalid_field("grant", "is required")))?;
        let g = self
            .admin
            .grant(&ctx, &g.principal, &g.role, &g.resource, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(grant_pb(&g)))
    }

    async fn list_grants(
        &self,
        req: Request<pb::ListGrantsRequest>,
    ) -> Result<pb::ListGrantsResponse> {
        let r = req.into_inner();
        let grants = store::grants(self.admin.db().conn(), principal_filter(&r.principal)?)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListGrantsResponse {
            grants: grants.iter().map(grant_pb).collect(),
        }))
    }

    async fn delete_grant(
        &self,
        req: Request<pb::DeleteGrantRequest>,
    ) -> Result<pb::DeleteGrantResponse> {
        let ctx = ctx(&req);
        let r = req.into_inner();
        self.admin
            .revoke_grant(&ctx, &r.principal, &r.resource, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeleteGrantResponse {}))
    }

    async fn who_am_i(&self, req: Request<pb::WhoAmIRequest>) -> Result<pb::WhoAmIResponse> {
        let headers = req.metadata().clone().into_headers();
        match self.gate.principal(&headers).await? {
            Some(p) => {
                let mut grants: Vec<pb::Grant> = p
                    .grants
                    .iter()
                    .map(|(resource, role)| pb::Grant {
                        principal: p.name.clone(),
                        role: role.as_str().into(),
                        resource: resource.clone(),
                        ..Default::default()
                    })
                    .collect();
                grants.sort_by(|a, b| a.resource.cmp(&b.resource));
                Ok(Response::new(pb::WhoAmIResponse {
                    principal: p.name,
                    key: p.key,
                    grants,
                    open_mode: false,
                }))
            }
            None => Ok(Response::new(pb::WhoAmIResponse {
                principal: steward_grpc::actor(req.metadata()),
                key: String::new(),
                grants: Vec::new(),
                open_mode: self.gate.mode() == AuthMode::Open,
            })),
        }
    }
}

/// `steward.auth.v1.AuthService` over `db`, auditing on `service`'s chain, with message
/// limits of `max_message_bytes`.
pub fn service(
    db: &steward_storage::Db,
    service: &'static str,
    gate: Arc<AuthGate>,
    max_message_bytes: usize,
) -> steward_proto::auth::auth_service_server::AuthServiceServer<AuthApi> {
    steward_grpc::with_message_limits!(
        steward_proto::auth::auth_service_server::AuthServiceServer::new(AuthApi::new(
            AuthAdmin::new(db.clone(), service),
            gate,
        )),
        max_message_bytes
    )
}
