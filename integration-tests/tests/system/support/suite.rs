//! The four services as separate processes on the real backends: one fresh PostgreSQL
//! database, Redis (own key prefix) and S3 (own bucket), each process with its own port and
//! data dir, wired to each other by URL as in production.

use steward_storage::testing::TestDb;

use super::binaries;
use super::env;
use super::process::command;
use super::server::{Server, free_addr};
use super::tracking::unique;

/// tracking, registry, deployment and monitoring, running.
pub struct Suite {
    pub tracking: Server,
    pub registry: Server,
    pub deployment: Server,
    pub monitoring: Server,
    db: TestDb,
}

impl Suite {
    /// Starts the four services with `extra` settings for all of them; `None`, after saying
    /// so, unless `STEWARD_TEST_DATABASE_URL`, `STEWARD_TEST_REDIS_URL` and
    /// `STEWARD_TEST_S3_ENDPOINT` are all set.
    pub async fn start(extra: &[(&str, String)]) -> Option<Suite> {
        let (Some(_), Some(redis), Some(s3)) = (
            env("STEWARD_TEST_DATABASE_URL"),
            env("STEWARD_TEST_REDIS_URL"),
            env("STEWARD_TEST_S3_ENDPOINT"),
        ) else {
            eprintln!(
                "real-backend tier not asked for (set STEWARD_TEST_DATABASE_URL, STEWARD_TEST_REDIS_URL, STEWARD_TEST_S3_ENDPOINT)"
            );
            return None;
        };
        let db = TestDb::postgres_with(false)
            .await
            .expect("STEWARD_TEST_DATABASE_URL is set");
        let mut common: Vec<(&str, String)> = vec![
            ("STEWARD_DATABASE_URL", db.url.clone()),
            ("STEWARD_PAGE_TOKEN_KEY", "k".repeat(64)),
            ("STEWARD_REDIS_URL", redis),
            ("STEWARD_REDIS_KEY_PREFIX", format!("{}:", unique("suite"))),
            ("STEWARD_S3_ENDPOINT", s3),
            ("STEWARD_S3_BUCKET", unique("suite").to_lowercase()),
            ("STEWARD_S3_PATH_STYLE", "true".into()),
            ("STEWARD_S3_ACCESS_KEY_ID", "test".into()),
            ("STEWARD_S3_SECRET_ACCESS_KEY", "test".into()),
            ("STEWARD_S3_CREATE_BUCKET", "true".into()),
        ];
        common.extend(extra.iter().cloned());
        let start = |bin: &'static str, peers: Vec<(&'static str, String)>| {
            let addr = free_addr();
            let dir = tempfile::tempdir().unwrap().keep();
            let mut cmd = command(binaries::path(bin));
            cmd.args(["--listen", &addr.to_string(), "--data-dir"])
                .arg(dir)
                .envs(common.iter().map(|(k, v)| (*k, v.as_str())))
                .envs(peers.iter().map(|(k, v)| (*k, v.as_str())));
            Server::start(bin, cmd, addr)
        };
        // The first start creates the schema and the bucket; the others start together.
        let tracking = start(binaries::STEWARD_TRACKING, vec![]).await;
        let turl = tracking.url();
        let (registry, monitoring) = tokio::join!(
            start(
                binaries::STEWARD_REGISTRY,
                vec![("STEWARD_TRACKING_URL", turl.clone())],
            ),
            start(
                binaries::STEWARD_MONITORING,
                vec![("STEWARD_TRACKING_URL", turl.clone())],
            ),
        );
        let deployment = start(
            binaries::STEWARD_DEPLOYMENT,
            vec![
                ("STEWARD_TRACKING_URL", turl),
                ("STEWARD_REGISTRY_URL", registry.url()),
            ],
        )
        .await;
        Some(Suite {
            tracking,
            registry,
            deployment,
            monitoring,
            db,
        })
    }

    /// Stops the processes and drops the database.
    pub async fn stop(self) {
        let Suite {
            tracking,
            registry,
            deployment,
            monitoring,
            db,
        } = self;
        drop((deployment, monitoring, registry, tracking));
        db.cleanup().await;
    }
}
