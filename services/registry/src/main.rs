//! `steward-registry`: the model registry and the audit API alone, for the distributed deployment.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    steward_runtime::service_main(
        "steward-registry",
        "Steward model registry (steward.registry.v1.RegistryService and steward.audit.v1.AuditService)",
        steward_registry::server::run,
    )
    .await
}
