//! The gRPC layer: `steward.monitoring.v1.MonitoringService` over the app.

pub mod convert;
pub mod service;

pub use service::MonitoringApi;
