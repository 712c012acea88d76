//! Connections of the deployment suite, and the caller identity the seed acts as.

use std::time::Duration;

use anyhow::{Context, Result};
use steward_proto::deployment::deployment_service_client::DeploymentServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// Longest any single RPC may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// The deployment client of the read-back (no caller identity: reads need none).
pub type Deployments = DeploymentServiceClient<Channel>;

/// A channel of its own (one HTTP/2 connection).
pub async fn channel(url: &str) -> Result<Channel> {
    Endpoint::from_shared(url.to_string())
        .with_context(|| format!("{url} is not a URL"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(RPC_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// Sends `x-steward-actor` (open local mode): the seed creates as one person and approves as
/// another, as the registry requires.
#[derive(Clone)]
pub struct Actor(pub &'static str);

impl Interceptor for Actor {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut()
            .insert("x-steward-actor", MetadataValue::from_static(self.0));
        Ok(r)
    }
}

/// A channel that acts as `actor`.
pub type AsActor = InterceptedService<Channel, Actor>;

/// `ch` acting as `actor`.
pub fn as_actor(ch: Channel, actor: &'static str) -> AsActor {
    InterceptedService::new(ch, Actor(actor))
}
