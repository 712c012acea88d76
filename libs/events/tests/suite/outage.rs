//! A real Redis outage, on a private `redis-server` (never the shared one): the relay keeps rows
//! pending while Redis is down and publishes them once it is back; a live subscription recovers.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use steward_common::ErrorKind;
use steward_events::{
    EVENT_BUS_UNAVAILABLE, EventBus, RedisBus, RedisBusOptions, Relay, RelayOptions,
};

use crate::support::{MemOutbox, SOON, assert_quiet, envelope, log_to_test_output, receive};

/// A `redis-server` of our own on `port`, without persistence.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = Self {
            port,
            child: Some(child),
        };
        let client = redis::Client::open(server.url()).unwrap();
        let deadline = std::time::Instant::now() + SOON;
        loop {
            let ping = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").exec(&mut c));
            match ping {
                Ok(()) => return server,
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("private redis-server on port {port} did not come up: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn redis_server_available() -> bool {
    match Command::new("redis-server").arg("--version").output() {
        Ok(out) => out.status.success(),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "skipping the Redis outage test: redis-server is not on PATH ({e})"
            );
            false
        }
    }
}

#[tokio::test]
async fn relay_and_subscription_survive_a_redis_restart() {
    if !redis_server_available() {
        return;
    }
    let _logs = log_to_test_output();
    let port = free_port();
    let mut server = PrivateRedis::start(port);
    let opts = RedisBusOptions {
        redeliver_after: Duration::from_secs(60),
        connect_timeout: Duration::from_millis(500),
        ..RedisBusOptions::default()
    };
    let bus = Arc::new(
        RedisBus::connect_with_options(&server.url(), "outage:", opts)
            .await
            .unwrap(),
    );
    let mut sub = bus.subscribe("g", "c").await.unwrap();
    let store = Arc::new(MemOutbox::default());
    let relay = Relay::spawn(
        store.clone(),
        bus.clone(),
        RelayOptions {
            poll_interval: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..RelayOptions::default()
        },
    );

    let first = envelope(1);
    store.insert(first.clone());
    relay.notify();
    assert_eq!(receive(&mut sub, 1).await, vec![first]);

    server.kill();

    let err = bus.publish(&envelope(99)).await.unwrap_err();
    assert_eq!(
        (err.kind, err.reason),
        (ErrorKind::Unavailable, EVENT_BUS_UNAVAILABLE)
    );

    let during: Vec<_> = (2..=4).map(envelope).collect();
    let ids: Vec<_> = during.iter().map(|e| store.insert(e.clone())).collect();
    relay.notify();
    let err = relay.flush().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    tokio::time::sleep(Duration::from_millis(800)).await; // the relay keeps retrying meanwhile
    assert_eq!(
        store.pending_ids(),
        ids,
        "rows stay pending while Redis is down"
    );
    assert!(!relay_task_panicked(&relay).await);

    let _server = PrivateRedis::start(port);
    let deadline = tokio::time::Instant::now() + SOON;
    while let Err(e) = relay.flush().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "relay did not recover: {e}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.pending_ids().is_empty());
    // The same subscription recovers on its own (its group is recreated on the fresh server).
    assert_eq!(receive(&mut sub, during.len()).await, during);

    let after = envelope(5);
    store.insert(after.clone());
    relay.notify();
    assert_eq!(receive(&mut sub, 1).await, vec![after]);
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    relay.shutdown().await.unwrap();
}

/// Whether the relay has stopped (a flush would then fail with `OUTBOX_RELAY_STOPPED`).
async fn relay_task_panicked(relay: &steward_events::RelayHandle) -> bool {
    matches!(relay.flush().await, Err(e) if e.reason == "OUTBOX_RELAY_STOPPED")
}

#[tokio::test]
async fn connecting_to_an_unreachable_redis_is_unavailable() {
    let url = format!("redis://127.0.0.1:{}", free_port()); // nothing listens there
    let err = RedisBus::connect(&url, "x:").await.unwrap_err();
    assert_eq!(
        (err.kind, err.reason),
        (ErrorKind::Unavailable, EVENT_BUS_UNAVAILABLE)
    );
    let err = RedisBus::connect("not a url", "x:").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
}
