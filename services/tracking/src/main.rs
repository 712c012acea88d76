//! `steward-tracking`: the tracking service alone, for the distributed deployment.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    steward_runtime::service_main(
        "steward-tracking",
        "Steward tracking service (steward.tracking.v1.TrackingService)",
        steward_tracking::server::run,
    )
    .await
}
