//! Starting a server binary and waiting until it serves.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use steward_proto::tracking::tracking_service_client::TrackingServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::binaries;
use super::process::{Proc, command};

/// How long a server may take to become SERVING (migrations on a busy 2-core machine, a
/// bucket created on S3).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP address on loopback: bind port 0, read the port back, release it.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr")
}

/// A running server process on `addr`.
pub struct Server {
    /// The process (killed on drop).
    pub proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
    /// A channel to it, connected once it was SERVING.
    pub channel: Channel,
}

impl Server {
    /// `steward up --listen <free port> --data-dir <data_dir>` with extra environment `env`.
    pub async fn steward_up(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let addr = free_addr();
        let mut cmd = command(binaries::path(binaries::STEWARD));
        cmd.args(["up", "--listen", &addr.to_string(), "--data-dir"])
            .arg(data_dir)
            .envs(env.iter().copied());
        Server::start("steward up", cmd, addr).await
    }

    /// Starts `cmd` (which must listen on `addr`) and waits until its health check says
    /// SERVING; fails the test if it exits first or takes longer than [`START_TIMEOUT`].
    pub async fn start(name: &str, cmd: std::process::Command, addr: SocketAddr) -> Server {
        let mut proc = Proc::spawn(name, cmd);
        let channel = wait_serving(&mut proc, addr).await;
        Server {
            proc,
            addr,
            channel,
        }
    }

    /// `http://{addr}`, for `--addr` and clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's channel, for other clients.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A tracking client on the server's channel.
    pub fn tracking(&self) -> TrackingServiceClient<Channel> {
        TrackingServiceClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }
}

/// Polls `grpc.health.v1.Health/Check` (server-wide, service `""`) on `addr` until SERVING.
async fn wait_serving(proc: &mut Proc, addr: SocketAddr) -> Channel {
    let deadline = Instant::now() + START_TIMEOUT;
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(5));
    let mut last = String::from("not connected yet");
    loop {
        if let Some(status) = proc.try_exit() {
            panic!(
                "server exited with {status} before it was SERVING\n{}",
                proc.logs()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "server on {addr} not SERVING within {START_TIMEOUT:?} (last: {last})\n{}",
                proc.logs()
            );
        }
        match endpoint.connect().await {
            Ok(channel) => {
                let reply = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                match reply.map(|r| r.into_inner().status()) {
                    Ok(ServingStatus::Serving) => return channel,
                    Ok(other) => last = format!("health {other:?}"),
                    Err(e) => last = format!("health check failed: {e}"),
                }
            }
            Err(e) => last = format!("connect failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
