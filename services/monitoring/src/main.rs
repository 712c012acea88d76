//! `steward-monitoring`: the monitoring service alone, for the distributed deployment.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    steward_runtime::service_main(
        "steward-monitoring",
        "Steward monitoring service (steward.monitoring.v1.MonitoringService)",
        steward_monitoring::server::run,
    )
    .await
}
