//! The deployment service (`steward.deployment.v1.DeploymentService`): environments with
//! policies, deployments with revisions, canary rollouts, A/B tests, routing and decision
//! records; and the Open Inference Protocol front door (`inference.GRPCInferenceService`).
//!
//! Layers: `api` (gRPC, thin) -> [`app`] (use cases, transactions, audit, events, the decision
//! writer, the rollout controller) -> [`domain`] (pure rules: routing, statistics) and
//! [`store`] (SQL over the shared schema); [`infer`] runs ONNX models in process.

pub mod api;
pub mod app;
pub mod domain;
pub mod infer;
pub mod server;
pub mod store;

pub use app::{Ctx, Deployments};
