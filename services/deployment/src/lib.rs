//! The deployment service (`steward.deployment.v1.DeploymentService`): environments with
//! policies, deployments with revisions, canary rollouts, A/B tests, routing and decision
//! records; and the Open Inference Protocol front door (`inference.GRPCInferenceService`).

pub mod domain;
pub mod infer;
