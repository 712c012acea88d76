//! Command implementations.

mod artifacts;
mod experiments;
mod output;
mod runs;
mod up;

use std::process::ExitCode;

use crate::cli::{Cli, ClientArgs, Command};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Up {
            listen,
            no_migrate,
            server,
        } => up::up(listen, no_migrate, server).await,
        Command::Migrate { server } => up::migrate(server).await,
        Command::Experiments { cmd, client } => experiments::run(cmd, &client).await,
        Command::Runs { cmd, client } => runs::run(cmd, &client).await,
        Command::Artifacts { cmd, client } => artifacts::run(cmd, &client).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The CLI's tracking client type.
pub(crate) type TrackingClient =
    steward_proto::tracking::tracking_service_client::TrackingServiceClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CliInterceptor>,
    >;

/// A tracking client for the CLI, with the token attached.
pub(crate) async fn tracking_client(c: &ClientArgs) -> anyhow::Result<TrackingClient> {
    // Accept `host:port` as well as `http://host:port` (the form `--listen` prints).
    let addr = if c.addr.contains("://") {
        c.addr.clone()
    } else {
        format!("http://{}", c.addr)
    };
    let channel = tonic::transport::Endpoint::from_shared(addr)
        .map_err(|e| {
            anyhow::anyhow!(
                "--addr {:?} is not a URL such as http://127.0.0.1:50051: {e}",
                c.addr
            )
        })?
        .connect()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach Steward at {}: {e} (is `steward up` running?)",
                c.addr
            )
        })?;
    let auth =
        match &c.token {
            Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| {
                anyhow::anyhow!("--token contains characters not allowed in a header")
            })?),
            None => None,
        };
    Ok(
        steward_proto::tracking::tracking_service_client::TrackingServiceClient::with_interceptor(
            channel,
            CliInterceptor { auth },
        )
        .max_decoding_message_size(64 * 1024 * 1024),
    )
}

/// Adds the bearer token and the actor to every call.
#[derive(Clone)]
pub(crate) struct CliInterceptor {
    auth: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl tonic::service::Interceptor for CliInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(a) = &self.auth {
            req.metadata_mut().insert("authorization", a.clone());
        }
        if let Ok(user) = std::env::var("USER")
            && let Ok(v) = user.parse()
        {
            req.metadata_mut().insert("x-steward-actor", v);
        }
        Ok(req)
    }
}

/// Turns a gRPC status into a readable error (message plus field violations).
pub(crate) fn status_err(s: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt;
    let mut msg = format!("{:?}: {}", s.code(), s.message());
    if let Some(br) = s.get_details_bad_request() {
        for v in br.field_violations {
            let line = format!("{}: {}", v.field, v.description);
            // Single-field errors already say this in the message.
            if !s.message().contains(&line) {
                msg.push_str(&format!("\n  {line}"));
            }
        }
    }
    anyhow::anyhow!(msg)
}
