//! Cache freshness across replicas: the replica that moves an alias resolves the new version at
//! once; every other replica within 1 s, also while Redis does not answer.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use steward_config::{Config, Overrides};
use steward_grpc::GrpcServer;
use steward_proto::registry as pb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_registry::app::cache::TTL;
use steward_runtime::Backends;
use tonic::transport::Channel;

/// Slack for the test's own request latency on a loaded machine, on top of the 1 s bound.
const SLACK: Duration = Duration::from_millis(600);

struct Replica {
    client: RegistryServiceClient<Channel>,
    stop: tokio::sync::oneshot::Sender<()>,
    invalidator: tokio::task::JoinHandle<()>,
}

async fn replica(b: &Backends, redis: Option<&str>, prefix: &str) -> Replica {
    let mut cfg = Config::load(None, &Default::default(), &Overrides::default()).unwrap();
    cfg.redis_url = redis.map(str::to_string);
    cfg.redis_key_prefix = prefix.into();
    // No run sources in this test: tracking is never called.
    let svc = steward_registry::server::services(b, &cfg, "http://127.0.0.1:9", None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = GrpcServer::new(steward_runtime::server_config(&cfg)).add_service(svc.registry);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = server
            .serve(listener, async {
                let _ = rx.await;
            })
            .await;
    });
    let ch = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Replica {
        client: RegistryServiceClient::new(ch),
        stop,
        invalidator: svc.invalidator,
    }
}

async fn resolve(c: &mut RegistryServiceClient<Channel>, name: &str) -> i64 {
    c.get_model_version(pb::GetModelVersionRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .version
}

async fn setup(a: &mut RegistryServiceClient<Channel>) -> String {
    a.create_registered_model(pb::CreateRegisteredModelRequest {
        registered_model: Some(pb::RegisteredModel {
            name: "fraud".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap();
    for i in 0..2 {
        a.create_model_version(pb::CreateModelVersionRequest {
            parent: "registeredModels/fraud".into(),
            model_version: Some(pb::ModelVersion {
                source_uri: format!("s3://models/fraud/{i}"),
                content_digest: format!("sha256:{}", "c".repeat(64)),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    }
    move_alias(a, 1).await;
    "registeredModels/fraud@production".into()
}

async fn move_alias(a: &mut RegistryServiceClient<Channel>, version: i64) {
    a.set_model_version_alias(pb::SetModelVersionAliasRequest {
        registered_model: "registeredModels/fraud".into(),
        alias: "production".into(),
        version,
        request_id: String::new(),
    })
    .await
    .unwrap();
}

/// Polls `c` until it resolves `name` to `want`; returns how long it took.
async fn converge(c: &mut RegistryServiceClient<Channel>, name: &str, want: i64) -> Duration {
    let t = Instant::now();
    while resolve(c, name).await != want {
        assert!(t.elapsed() < Duration::from_secs(5), "never converged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}

async fn two_replicas_converge(redis: Option<&str>, pause: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let t = steward_runtime::testing::open(false, dir.path()).await;
    let prefix = format!("replicas-test-{}:", uuid::Uuid::new_v4().simple());
    let mut a = replica(&t.backends, redis, &prefix).await;
    let mut b = replica(&t.backends, redis, &prefix).await;
    let name = setup(&mut a.client).await;
    // Both replicas have version 1 cached.
    for _ in 0..3 {
        assert_eq!(resolve(&mut a.client, &name).await, 1);
        assert_eq!(resolve(&mut b.client, &name).await, 1);
    }
    if let Some(url) = pause {
        // Redis stops answering (every client blocks) for longer than the cache TTL.
        let client = redis::Client::open(url).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(2500)
            .arg("ALL")
            .query_async(&mut c)
            .await
            .unwrap();
    }
    move_alias(&mut a.client, 2).await;
    assert_eq!(
        resolve(&mut a.client, &name).await,
        2,
        "the moving replica resolves the new version at once"
    );
    let took = converge(&mut b.client, &name, 2).await;
    assert!(
        took <= TTL + SLACK,
        "other replica converged after {took:?}"
    );
    if pause.is_some() {
        // After Redis answers again, no stale entry comes back.
        tokio::time::sleep(Duration::from_millis(2600)).await;
        for _ in 0..5 {
            assert_eq!(resolve(&mut b.client, &name).await, 2);
            assert_eq!(resolve(&mut a.client, &name).await, 2);
        }
    }
    for r in [a, b] {
        r.invalidator.abort();
        let _ = r.stop.send(());
    }
    t.db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_in_process_caches_converge_within_a_second() {
    two_replicas_converge(None, None).await;
}

/// A private Redis (never the shared one: the test pauses it).
struct PrivateRedis {
    child: Child,
    url: String,
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn private_redis() -> Option<PrivateRedis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let url = format!("redis://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(PrivateRedis { child, url });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_redis_cache_converge_also_while_redis_is_unresponsive() {
    if steward_runtime::testing::env("STEWARD_TEST_REDIS_URL").is_none() {
        eprintln!(
            "Redis tier not asked for (set STEWARD_TEST_REDIS_URL); this test starts its own redis-server when it is"
        );
        return;
    }
    let r = private_redis()
        .expect("redis-server asked for (STEWARD_TEST_REDIS_URL) but cannot be started");
    two_replicas_converge(Some(&r.url), None).await;
    two_replicas_converge(Some(&r.url), Some(&r.url)).await;
}
