//! Command implementations.

mod ab;
mod aliases;
mod artifacts;
mod audit;
mod backup;
mod datasets;
mod demo;
mod deploy;
mod deployment_json;
mod deployments;
mod experiments;
mod explain;
mod keys;
mod lineage;
mod models;
mod monitoring;
pub(crate) mod names;
mod output;
pub(crate) mod plan;
mod registry_json;
mod rollouts;
mod runs;
mod up;
mod versions;

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
        Command::Demo {
            keep,
            tracking,
            registry,
            deployment,
            monitoring,
        } => {
            let remote = match (tracking, registry, deployment, monitoring) {
                (Some(tracking), Some(registry), Some(deployment), Some(monitoring)) => {
                    Some(demo::Endpoints {
                        tracking,
                        registry,
                        deployment,
                        monitoring,
                    })
                }
                _ => None,
            };
            demo::run(keep, remote).await
        }
        Command::Backup { dir, server } => backup::backup(dir, server).await,
        Command::Restore { dir, force, server } => backup::restore(dir, force, server).await,
        Command::Keys { cmd } => keys::keys(cmd).await,
        Command::Grants { cmd, client } => keys::grants(cmd, &client).await,
        Command::Whoami { client } => keys::whoami(&client).await,
        Command::Experiments { cmd, client } => experiments::run(cmd, &client).await,
        Command::Runs { cmd, client } => runs::run(cmd, &client).await,
        Command::Artifacts { cmd, client } => artifacts::run(cmd, &client).await,
        Command::Datasets { cmd, client } => datasets::run(cmd, &client).await,
        Command::Reproduce {
            model_version,
            into,
            client,
        } => datasets::reproduce(model_version, into, &client).await,
        Command::Models { cmd, client } => models::run(cmd, &client).await,
        Command::Versions { cmd, client } => versions::run(cmd, &client).await,
        Command::Alias { cmd, client } => aliases::run(cmd, &client).await,
        Command::Approve { args, client } => versions::approve(args, &client).await,
        Command::Audit { cmd, client } => audit::run(cmd, &client).await,
        Command::Deploy { args, client } => deploy::run(args, &client).await,
        Command::Rollout { cmd, client } => rollouts::run(cmd, &client).await,
        Command::Ab { cmd, client } => ab::run(cmd, &client).await,
        Command::Explain { args, client } => explain::run(args, &client).await,
        Command::Deployments { cmd, client } => deployments::run(cmd, &client).await,
        Command::Environments { cmd, client } => deployments::environments(cmd, &client).await,
        Command::Baselines { cmd, client } => monitoring::baselines(cmd, &client).await,
        Command::Monitors { cmd, client } => monitoring::monitors(cmd, &client).await,
        Command::Drift { cmd, client } => monitoring::drift(cmd, &client).await,
        Command::Alerts { cmd, client } => monitoring::alerts(cmd, &client).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The channel every CLI client uses: the token and the actor attached to each call.
pub(crate) type CliChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CliInterceptor>;

/// The CLI's tracking client type.
pub(crate) type TrackingClient =
    steward_proto::tracking::tracking_service_client::TrackingServiceClient<CliChannel>;

/// The CLI's registry client type.
pub(crate) type RegistryClient =
    steward_proto::registry::registry_service_client::RegistryServiceClient<CliChannel>;

/// Largest message the CLI decodes.
const MAX_DECODE: usize = 64 * 1024 * 1024;

/// A tracking client for the CLI, with the token and actor attached.
pub(crate) async fn tracking_client(c: &ClientArgs) -> anyhow::Result<TrackingClient> {
    Ok(TrackingClient::new(channel(c).await?).max_decoding_message_size(MAX_DECODE))
}

/// A registry client for the CLI (same server, same port), with the token and actor attached.
pub(crate) async fn registry_client(c: &ClientArgs) -> anyhow::Result<RegistryClient> {
    Ok(RegistryClient::new(channel(c).await?).max_decoding_message_size(MAX_DECODE))
}

/// The CLI's audit client type.
pub(crate) type AuditClient =
    steward_proto::audit::audit_service_client::AuditServiceClient<CliChannel>;

/// An audit client for the CLI (same server, same port), with the token and actor attached.
pub(crate) async fn audit_client(c: &ClientArgs) -> anyhow::Result<AuditClient> {
    Ok(AuditClient::new(channel(c).await?).max_decoding_message_size(MAX_DECODE))
}

/// The CLI's deployment client type.
pub(crate) type DeploymentClient =
    steward_proto::deployment::deployment_service_client::DeploymentServiceClient<CliChannel>;

/// A deployment client for the CLI (same server, same port), with the token and actor attached.
pub(crate) async fn deployment_client(c: &ClientArgs) -> anyhow::Result<DeploymentClient> {
    Ok(DeploymentClient::new(channel(c).await?).max_decoding_message_size(MAX_DECODE))
}

/// The CLI's monitoring client type.
pub(crate) type MonitoringClient =
    steward_proto::monitoring::monitoring_service_client::MonitoringServiceClient<CliChannel>;

/// A monitoring client for the CLI (same server, same port), with the token and actor attached.
pub(crate) async fn monitoring_client(c: &ClientArgs) -> anyhow::Result<MonitoringClient> {
    Ok(MonitoringClient::new(channel(c).await?)
        .max_decoding_message_size(MAX_DECODE)
        .max_encoding_message_size(MAX_DECODE))
}

/// The CLI's Open Inference Protocol client type.
pub(crate) type InferenceClient =
    steward_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient<CliChannel>;

/// An Open Inference Protocol client for the CLI (same server, same port), with the token and
/// actor attached.
pub(crate) async fn inference_client(c: &ClientArgs) -> anyhow::Result<InferenceClient> {
    Ok(InferenceClient::new(channel(c).await?).max_decoding_message_size(MAX_DECODE))
}

/// Connects to `--addr` and wraps the channel in the [`CliInterceptor`].
async fn channel(c: &ClientArgs) -> anyhow::Result<CliChannel> {
    // Accept `host:port` as well as `http://host:port` (the form `--listen` prints).
    let addr = if c.addr.contains("://") {
        c.addr.clone()
    } else {
        format!("http://{}", c.addr)
    };
    let mut endpoint = tonic::transport::Endpoint::from_shared(addr.clone()).map_err(|e| {
        anyhow::anyhow!(
            "--addr {:?} is not a URL such as http://127.0.0.1:50051: {e}",
            c.addr
        )
    })?;
    if addr.starts_with("https://") {
        let ca = c.tls_ca.as_ref().ok_or_else(|| {
            anyhow::anyhow!("--addr is https: give the server's CA with --tls-ca (STEWARD_TLS_CA)")
        })?;
        let pem = std::fs::read(ca)
            .map_err(|e| anyhow::anyhow!("cannot read --tls-ca {}: {e}", ca.display()))?;
        endpoint = endpoint.tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
        )?;
    }
    let channel = endpoint.connect().await.map_err(|e| {
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
    // `--actor` / `STEWARD_ACTOR`, else the login name.
    let actor = match c.actor.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(a.parse().map_err(|_| {
            anyhow::anyhow!("--actor {a:?} contains characters not allowed in a header")
        })?),
        None => std::env::var("USER").ok().and_then(|u| u.parse().ok()),
    };
    Ok(CliChannel::new(channel, CliInterceptor { auth, actor }))
}

/// Adds the bearer token and the actor to every call.
#[derive(Clone)]
pub(crate) struct CliInterceptor {
    auth: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    actor: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl tonic::service::Interceptor for CliInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(a) = &self.auth {
            req.metadata_mut().insert("authorization", a.clone());
        }
        if let Some(a) = &self.actor {
            req.metadata_mut().insert("x-steward-actor", a.clone());
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
