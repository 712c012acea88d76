//! Distributed mode: `steward-tracking` replicas on the real backends of the test environment.
//!
//! Switched on by `STEWARD_TEST_DATABASE_URL` (a Postgres server; the test creates its own
//! database), `STEWARD_TEST_REDIS_URL` and `STEWARD_TEST_S3_ENDPOINT` (an S3 API such as moto;
//! the test creates its own bucket). A backend that is set but unreachable fails the test.
//!
//! With Postgres, three replicas start at the same moment on one fresh, unmigrated database, so
//! they run the migrations concurrently: A and B share a page-token key, C has another. Then a
//! run created through A is read and written through B, a page token from A pages on through B
//! (and is refused by C), an artifact uploaded through A is downloaded through B (with S3), and
//! the events of those writes reach the Redis stream (with Redis). Without Postgres one replica
//! on SQLite checks the Redis and S3 backends alone.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use steward_proto::tracking as pb;
use steward_storage::testing::TestDb;

use crate::support::binaries;
use crate::support::env;
use crate::support::process::command;
use crate::support::server::{Server, free_addr};
use crate::support::tracking::{self as t, Client, unique};

/// Connects to the test Redis (failing the test if it is unreachable).
async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url)
        .unwrap_or_else(|e| panic!("STEWARD_TEST_REDIS_URL is not a Redis URL: {e}"));
    tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .unwrap_or_else(|_| panic!("STEWARD_TEST_REDIS_URL is set but Redis did not answer in 5 s"))
    .unwrap_or_else(|e| panic!("STEWARD_TEST_REDIS_URL is set but Redis is unreachable: {e}"))
}

/// Event types in the Redis stream `key`, in order.
async fn stream_types(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .expect("XRANGE");
    reply
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("type"))
        .collect()
}

/// Starts `steward-tracking` replicas, all at once, each with `common` plus its own
/// `(STEWARD_PAGE_TOKEN_KEY, data dir)`.
async fn start_replicas(
    common: &[(String, String)],
    replicas: &[(&str, &str, &std::path::Path)],
) -> Vec<Server> {
    let starts = replicas.iter().map(|&(name, key, dir)| {
        let addr = free_addr();
        let mut cmd = command(binaries::path(binaries::STEWARD_TRACKING));
        cmd.args(["--listen", &addr.to_string(), "--data-dir"])
            .arg(dir)
            .envs(common.iter().map(|(k, v)| (k, v)))
            .env("STEWARD_PAGE_TOKEN_KEY", key);
        Server::start(name, cmd, addr)
    });
    futures::future::join_all(starts).await
}

/// Every run name of `experiment`, paging with `page_size` 1: the first page through `first`,
/// every later page through `rest`.
async fn page_across(first: &mut Client, rest: &mut Client, experiment: &str) -> Vec<String> {
    let req = |token: String| pb::SearchRunsRequest {
        experiments: vec![experiment.to_owned()],
        page_size: 1,
        page_token: token,
        ..Default::default()
    };
    let page = first
        .search_runs(req(String::new()))
        .await
        .expect("SearchRuns page 1")
        .into_inner();
    let mut names: Vec<String> = page.runs.into_iter().map(|r| r.name).collect();
    let mut token = page.next_page_token;
    while !token.is_empty() {
        assert!(names.len() < 10, "paging does not end: {names:?}");
        let page = rest
            .search_runs(req(token))
            .await
            .expect("a page token of one replica works on another with the same key")
            .into_inner();
        names.extend(page.runs.into_iter().map(|r| r.name));
        token = page.next_page_token;
    }
    names
}

#[tokio::test]
async fn replicas_share_real_backends() {
    let pg_base = env("STEWARD_TEST_DATABASE_URL");
    let redis_url = env("STEWARD_TEST_REDIS_URL");
    let s3_endpoint = env("STEWARD_TEST_S3_ENDPOINT");
    if pg_base.is_none() && redis_url.is_none() && s3_endpoint.is_none() {
        eprintln!(
            "real-backend tier not asked for (set STEWARD_TEST_DATABASE_URL, STEWARD_TEST_REDIS_URL, STEWARD_TEST_S3_ENDPOINT)"
        );
        return;
    }

    let mut common: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| common.push((k.to_owned(), v.to_owned()));
    let pg = match &pg_base {
        Some(_) => {
            let db = TestDb::postgres_with(false)
                .await
                .expect("STEWARD_TEST_DATABASE_URL is set");
            set("STEWARD_DATABASE_URL", &db.url);
            Some(db)
        }
        None => None,
    };
    let mut redis = None;
    if let Some(url) = &redis_url {
        let conn = redis_conn(url).await;
        let prefix = format!("{}:", unique("steward-sys"));
        set("STEWARD_REDIS_URL", url);
        set("STEWARD_REDIS_KEY_PREFIX", &prefix);
        redis = Some((conn, format!("{prefix}events")));
    }
    let bucket = unique("steward-sys");
    if let Some(endpoint) = &s3_endpoint {
        for (k, v) in [
            ("STEWARD_S3_ENDPOINT", endpoint.as_str()),
            ("STEWARD_S3_BUCKET", &bucket),
            ("STEWARD_S3_REGION", "us-east-1"),
            ("STEWARD_S3_PATH_STYLE", "true"),
            ("STEWARD_S3_ACCESS_KEY_ID", "test"),
            ("STEWARD_S3_SECRET_ACCESS_KEY", "test"),
            ("STEWARD_S3_CREATE_BUCKET", "true"),
        ] {
            set(k, v);
        }
    }

    let shared_key = hex::encode(t::content(32, 11));
    let other_key = hex::encode(t::content(32, 12));
    assert_eq!(shared_key.len(), 64);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let plan: Vec<(&str, &str, &std::path::Path)> = if pg.is_some() {
        vec![
            ("replica A", shared_key.as_str(), dirs[0].path()),
            ("replica B", shared_key.as_str(), dirs[1].path()),
            (
                "replica C (other page-token key)",
                other_key.as_str(),
                dirs[2].path(),
            ),
        ]
    } else {
        eprintln!(
            "one replica on SQLite: replicas need a shared database (set STEWARD_TEST_DATABASE_URL)"
        );
        vec![("replica A", shared_key.as_str(), dirs[0].path())]
    };
    let replicas = start_replicas(&common, &plan).await;
    let mut a = replicas[0].tracking();
    // With one replica, "B" is A again: the cross-replica checks then check one process.
    let mut b = replicas.get(1).unwrap_or(&replicas[0]).tracking();

    // Written through A, read and written through B, read back through A.
    let exp = t::create_experiment(&mut a, &unique("distributed")).await;
    let run = t::create_run(&mut a, &exp.name, "run-0").await;
    let via_b = b
        .get_run(pb::GetRunRequest {
            name: run.name.clone(),
        })
        .await
        .expect("a run created through A is readable through B")
        .into_inner();
    assert_eq!(via_b.run_name, "run-0");
    t::log(&mut b, &run.name, &[("acc", 0.8, 1)], &[("lr", "0.1")]).await;
    let via_a = a
        .get_run(pb::GetRunRequest {
            name: run.name.clone(),
        })
        .await
        .expect("GetRun through A")
        .into_inner();
    assert_eq!(t::latest(&via_a, "acc"), Some(0.8));

    // Page tokens signed by A work on B (same key) and not on C (another key).
    let mut created = BTreeSet::from([run.name.clone()]);
    for i in 1..3 {
        created.insert(
            t::create_run(&mut a, &exp.name, &format!("run-{i}"))
                .await
                .name,
        );
    }
    let paged = page_across(&mut a, &mut b, &exp.name).await;
    assert_eq!(paged.len(), 3, "every run once: {paged:?}");
    assert_eq!(paged.iter().cloned().collect::<BTreeSet<_>>(), created);
    if let Some(c_server) = replicas.get(2) {
        let token = a
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![exp.name.clone()],
                page_size: 1,
                ..Default::default()
            })
            .await
            .expect("SearchRuns")
            .into_inner()
            .next_page_token;
        let refused = c_server
            .tracking()
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![exp.name.clone()],
                page_size: 1,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect_err("a replica with another key refuses the token");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    }

    // Artifacts on S3: uploaded through A (over one 8 MiB part, so a multipart upload),
    // downloaded through B.
    if s3_endpoint.is_some() {
        let data = t::content(9 * 1024 * 1024 + 17, 3);
        let stored = t::upload(&mut a, &run.name, "model/model.onnx", &data).await;
        assert_eq!(stored.sha256, t::sha256(&data));
        assert_eq!(stored.size_bytes, data.len() as i64);
        let (meta, back) = t::download(&mut b, &run.name, "model/model.onnx").await;
        assert_eq!(meta.sha256, stored.sha256);
        assert!(back == data, "content downloaded through B differs");
        let url = b
            .get_artifact_download_url(pb::GetArtifactDownloadUrlRequest {
                run: run.name.clone(),
                path: "model/model.onnx".into(),
                expires_in: None,
            })
            .await
            .expect("a presigned URL on S3")
            .into_inner()
            .url;
        assert!(url.contains(&bucket), "{url}");
    } else if pg.is_some() {
        eprintln!(
            "S3 not asked for: artifacts are not shared between replicas (set STEWARD_TEST_S3_ENDPOINT)"
        );
    }

    // Events: the outbox relay of the replicas publishes every write to the Redis stream.
    if let Some((mut conn, key)) = redis {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let types = stream_types(&mut conn, &key).await;
            let runs_created = types
                .iter()
                .filter(|t| *t == "tracking.run.created")
                .count();
            if runs_created >= 3 && types.iter().any(|t| t == "tracking.experiment.created") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "events not in Redis stream {key} within 10 s: {types:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
    }

    // SIGTERM: every replica drains and exits 0 (what Kubernetes sends on a rollout).
    let mut replicas = replicas;
    for r in &replicas {
        r.proc.terminate();
    }
    for r in &mut replicas {
        let status = r.proc.wait_exit(Duration::from_secs(10)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "replica exit after SIGTERM: {status:?}\n{}",
            r.proc.logs()
        );
    }
    drop(replicas);
    if let Some(db) = pg {
        db.cleanup().await;
    }
}
