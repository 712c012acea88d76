//! `steward-deployment`: the deployment service and the inference front door alone, for the
//! distributed deployment.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    steward_runtime::service_main(
        "steward-deployment",
        "Steward deployment service (steward.deployment.v1.DeploymentService and inference.GRPCInferenceService)",
        steward_deployment::server::run,
    )
    .await
}
