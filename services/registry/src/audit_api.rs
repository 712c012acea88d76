//! `steward.audit.v1.AuditService`: read access to the hash-chained audit log of every service
//! (listing with filters and keyset pages, verification with anchors, the chain heads).
//!
//! The log is written by each service through `steward_storage::audit`; this API only reads
//! it, so it can be served by any replica of the registry.

mod convert;

use std::sync::Arc;

use steward_common::Error;
use steward_grpc::{PageTokenCodec, to_status};
use steward_proto::audit as pb;
use steward_proto::audit::audit_service_server::AuditService;
use steward_storage::Db;
use steward_storage::audit::{self, AuditCursor};
use tonic::{Request, Response, Status};

type Result<T> = std::result::Result<Response<T>, Status>;

fn st(e: Error) -> Status {
    to_status(&e)
}

/// The gRPC implementation of `steward.audit.v1.AuditService` over the shared database.
#[derive(Clone)]
pub struct AuditApi {
    db: Db,
    tokens: Arc<PageTokenCodec>,
}

impl std::fmt::Debug for AuditApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditApi")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl AuditApi {
    /// Reads the audit chains in `db`; `tokens` signs page tokens (the key shared by replicas).
    pub fn new(db: Db, tokens: Arc<PageTokenCodec>) -> Self {
        Self { db, tokens }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        req: Request<pb::ListAuditEventsRequest>,
    ) -> Result<pb::ListAuditEventsResponse> {
        let r = req.into_inner();
        let list = convert::list_request(&r).map_err(st)?;
        let scope = convert::scope(&list.query);
        let cursor: Option<AuditCursor> =
            self.tokens.decode_opt(&scope, &r.page_token).map_err(st)?;
        // One row more than the page tells whether another page follows.
        let mut records = audit::query(
            self.db.conn(),
            &list.query,
            cursor.as_ref(),
            list.page_size as u64 + 1,
        )
        .await
        .map_err(st)?;
        let next_page_token = if records.len() > list.page_size {
            records.truncate(list.page_size);
            records
                .last()
                .map(|last| self.tokens.encode(&scope, &AuditCursor::after(last)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: records.iter().map(convert::event).collect(),
            next_page_token,
        }))
    }

    async fn verify_audit_chain(
        &self,
        req: Request<pb::VerifyAuditChainRequest>,
    ) -> Result<pb::VerifyAuditChainResponse> {
        let r = req.into_inner();
        let anchors = convert::anchors(&r.anchors).map_err(st)?;
        let conn = self.db.conn();
        let reports = if r.service.is_empty() {
            audit::verify_all(conn, &anchors).await.map_err(st)?
        } else {
            let report = audit::verify_chain_with(conn, &r.service, &anchors)
                .await
                .map_err(st)?;
            let anchored = anchors.iter().any(|a| a.service == r.service);
            if report.records == 0 && report.head.is_none() && report.ok() && !anchored {
                return Err(st(Error::not_found(
                    "AUDIT_CHAIN_NOT_FOUND",
                    format!("audit chain {:?}", r.service),
                )));
            }
            vec![report]
        };
        let chains: Vec<pb::ChainVerification> =
            reports.iter().map(convert::verification).collect();
        Ok(Response::new(pb::VerifyAuditChainResponse {
            ok: chains.iter().all(|c| c.ok),
            chains,
        }))
    }

    async fn get_audit_chain_heads(
        &self,
        _req: Request<pb::GetAuditChainHeadsRequest>,
    ) -> Result<pb::GetAuditChainHeadsResponse> {
        let heads = audit::heads(self.db.conn()).await.map_err(st)?;
        Ok(Response::new(pb::GetAuditChainHeadsResponse {
            heads: heads.iter().map(convert::head).collect(),
        }))
    }
}
