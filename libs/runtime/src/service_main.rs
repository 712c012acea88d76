//! The `main` of every stand-alone service binary: flags, telemetry, configuration, run.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};
use steward_common::Error;
use steward_config::Config;

/// Parses `--listen`, `--config`, `--data-dir` and `--no-migrate` (also from `STEWARD_*`),
/// starts telemetry as `name`, loads the configuration and runs `run` until SIGTERM/Ctrl-C.
/// Exit codes: 0 after a clean shutdown, 2 for a bad configuration, 1 for any other failure.
pub async fn service_main<F, Fut>(name: &'static str, about: &'static str, run: F) -> ExitCode
where
    F: FnOnce(Config, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let m = Command::new(name)
        .about(about)
        .version(env!("CARGO_PKG_VERSION"))
        .arg(Arg::new("listen").long("listen").env("STEWARD_LISTEN").help("Listen address, e.g. 0.0.0.0:50051."))
        .arg(Arg::new("config").long("config").env("STEWARD_CONFIG").value_parser(clap::value_parser!(PathBuf)).help("TOML configuration file."))
        .arg(
            Arg::new("data-dir")
                .long("data-dir")
                .env("STEWARD_DATA_DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Data directory (SQLite file and local artifacts) when no other backend is configured."),
        )
        .arg(Arg::new("no-migrate").long("no-migrate").action(ArgAction::SetTrue).help("Do not apply database migrations at start-up."))
        .get_matches();
    let guard = match steward_telemetry::TelemetryConfig::from_env(name)
        .and_then(|c| steward_telemetry::init(&c))
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let overrides = steward_config::Overrides {
        listen: m.get_one::<String>("listen").cloned(),
        data_dir: m.get_one::<PathBuf>("data-dir").cloned(),
        no_migrate: m.get_flag("no-migrate"),
    };
    let cfg = match Config::from_process(
        m.get_one::<PathBuf>("config").map(PathBuf::as_path),
        &overrides,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = run(cfg, Box::pin(steward_grpc::shutdown_signal())).await;
    guard.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::FAILURE
        }
    }
}
