//! The tracking service: experiments, runs, params, metrics, datasets and artifacts
//! (`steward.tracking.v1.TrackingService`).
//!
//! Layers: [`api`] (gRPC, thin) -> [`app`] (use cases, transactions, idempotency, audit,
//! events) -> [`domain`] (pure rules) and [`store`] (SQL over the shared schema).

pub mod api;
pub mod app;
pub mod domain;
pub mod server;
pub mod store;

pub use app::{Ctx, Tracking};
pub use server::Backends;
