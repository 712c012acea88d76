//! Use cases of the registry: one function per operation. This layer owns transactions,
//! idempotency, audit records, outbox events and the resolution cache; it speaks domain types.

pub mod aliases;
pub mod cache;
pub mod deployments;
pub mod models;
pub mod reviews;
pub mod source;
pub mod versions;
pub mod writer;

use std::sync::Arc;

use steward_common::Error;
use steward_common::names::VersionRef;
use steward_config::Limits;
use steward_storage::Db;

pub use steward_storage::ops::Ctx;
pub(crate) use steward_storage::ops::{canonical, check_etag, remember, replay};

use crate::domain::ModelVersion;
use cache::ResolveCache;
use source::RunSource;

/// Name of this service's audit chain, outbox and idempotency records.
pub const SERVICE: &str = "registry";

/// The registry application.
#[derive(Clone)]
pub struct Registry {
    pub(crate) db: Db,
    pub(crate) limits: Limits,
    pub(crate) source: Arc<dyn RunSource>,
    pub(crate) cache: Arc<ResolveCache>,
    pub(crate) writer: writer::VersionWriter,
    pub(crate) deployments: deployments::DeploymentPeer,
}

impl Registry {
    /// A registry over `db`, checking run sources with `source` and caching resolutions in
    /// `cache`. Starts the version writer task (call within a Tokio runtime).
    pub fn new(
        db: Db,
        limits: Limits,
        source: Arc<dyn RunSource>,
        cache: Arc<ResolveCache>,
        deployments: deployments::DeploymentPeer,
    ) -> Self {
        Self {
            writer: writer::VersionWriter::spawn(db.clone()),
            deployments,
            db,
            limits,
            source,
            cache,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The resolution cache.
    pub fn cache(&self) -> &Arc<ResolveCache> {
        &self.cache
    }

    /// Resolves a version reference (number or alias) to the version, through the cache.
    pub async fn resolve(&self, r: &VersionRef) -> Result<ModelVersion, Error> {
        let key = r.to_string();
        let model = r.model().as_str();
        if let Some(v) = self.cache.get(model, &key).await {
            return Ok(v);
        }
        let ticket = self.cache.ticket(model);
        let v = self.resolve_uncached(self.db.conn(), r).await?;
        self.cache.put(model, &key, &v, ticket).await;
        Ok(v)
    }

    /// Resolves a reference straight from the database (inside a transaction, or for writes).
    pub(crate) async fn resolve_uncached<C: sea_orm::ConnectionTrait>(
        &self,
        c: &C,
        r: &VersionRef,
    ) -> Result<ModelVersion, Error> {
        let (model, number) = match r {
            VersionRef::Number(m, n) => (m.as_str(), *n),
            VersionRef::Alias(m, a) => {
                match crate::store::aliases::target(c, m.as_str(), a).await? {
                    Some(n) => (m.as_str(), n),
                    None => {
                        return Err(
                            if crate::store::models::get_row(c, m.as_str())
                                .await?
                                .is_none()
                            {
                                model_not_found(m.as_str())
                            } else {
                                Error::not_found("ALIAS_NOT_FOUND", r)
                            },
                        );
                    }
                }
            }
        };
        match crate::store::versions::get_full(c, model, number).await? {
            Some(v) => Ok(v),
            None => Err(
                if crate::store::models::get_row(c, model).await?.is_none() {
                    model_not_found(model)
                } else {
                    Error::not_found(
                        "MODEL_VERSION_NOT_FOUND",
                        steward_common::names::version_name(model, number),
                    )
                },
            ),
        }
    }
}

/// `NOT_FOUND` for a missing model.
pub(crate) fn model_not_found(model: &str) -> Error {
    Error::not_found("MODEL_NOT_FOUND", format!("registeredModels/{model}"))
}

/// `registeredModels/{m}`.
pub(crate) fn model_name(m: &str) -> String {
    format!("registeredModels/{m}")
}

steward_storage::service_ops!(SERVICE);
