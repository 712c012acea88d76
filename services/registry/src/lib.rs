//! The model registry (`steward.registry.v1.RegistryService`): registered models, immutable
//! versions with a frozen lineage snapshot, aliases with history, approvals, alias policies and
//! comparison; and the audit read API (`steward.audit.v1.AuditService`) over every service's
//! chain.
//!
//! Layers: [`api`] (gRPC, thin) -> [`app`] (use cases, transactions, idempotency, audit,
//! events, cache) -> [`domain`] (pure rules) and [`store`] (SQL over the shared schema).

pub mod api;
pub mod app;
pub mod audit_api;
pub mod domain;
pub mod server;
pub mod store;

pub use app::{Ctx, Registry};
