//! `steward-registry`: the model registry and the audit API alone, for the distributed deployment.

use std::path::PathBuf;

use clap::Parser;

/// Steward model registry.
#[derive(Parser, Debug)]
#[command(
    name = "steward-registry",
    version,
    about = "Steward model registry (steward.registry.v1.RegistryService and steward.audit.v1.AuditService)"
)]
struct Args {
    /// Listen address, e.g. 0.0.0.0:50051.
    #[arg(long, env = "STEWARD_LISTEN")]
    listen: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "STEWARD_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite file and local artifacts) when no other backend is configured.
    #[arg(long, env = "STEWARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Do not apply database migrations at start-up.
    #[arg(long)]
    no_migrate: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let guard = match steward_telemetry::TelemetryConfig::from_env("steward-registry")
        .and_then(|c| steward_telemetry::init(&c))
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let overrides = steward_config::Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        no_migrate: args.no_migrate,
    };
    let cfg = match steward_config::Config::from_process(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = steward_registry::server::run(cfg, steward_grpc::shutdown_signal()).await;
    guard.shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            std::process::ExitCode::FAILURE
        }
    }
}
