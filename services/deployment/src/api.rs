//! The gRPC layer: `steward.deployment.v1.DeploymentService` and the Open Inference Protocol.

pub mod convert;
pub mod inference;
pub mod service;

pub use inference::InferenceApi;
pub use service::DeploymentApi;
