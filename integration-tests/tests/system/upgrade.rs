//! Schema upgrades: a database written by each earlier release (`fixtures/schema/`, made by
//! `fixtures/schema/generate.sh` from the binaries of those releases) is migrated by the
//! current `steward up` on SQLite and on Postgres, and everything it held is served again:
//! experiments, runs, params, metric history, artifacts, model versions and aliases, and
//! recorded decisions that still explain; the features added since work on the old data.

use std::path::{Path, PathBuf};

use steward_integration_tests::schema_fixture::{LATEST_FIXTURE, verify};
use steward_storage::testing::TestDb;

use crate::support::server::Server;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/schema")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// Loads fixture `v{n}-{backend}` into `db`, checks it is at schema `n`, then serves it with
/// the current `steward up` (which migrates it) and verifies the data.
async fn upgrade(db: TestDb, n: u32) {
    let dir = fixture(&format!("v{n}-{}", db.label));
    let sql = std::fs::read_to_string(dir.join("steward.sql")).unwrap();
    db.run_script(&sql).await;
    let applied = steward_storage::migrate::applied(&db.db).await.unwrap();
    assert_eq!(
        applied.len(),
        n as usize,
        "{}: the v{n} fixture holds {applied:?}",
        db.label
    );
    let data = tempfile::tempdir().unwrap();
    copy_dir(&dir.join("artifacts"), &data.path().join("artifacts"));
    let server = Server::steward_up(data.path(), &[("STEWARD_DATABASE_URL", &db.url)]).await;
    if let Err(e) = verify(server.channel.clone(), n).await {
        panic!(
            "{}: schema {n} after the upgrade: {e:#}\n{}",
            db.label,
            server.proc.logs()
        );
    }
    drop(server);
    let applied = steward_storage::migrate::applied(&db.db).await.unwrap();
    assert_eq!(
        applied,
        steward_storage::migrate::known(),
        "{}: every migration applied",
        db.label
    );
    db.cleanup().await;
}

#[tokio::test]
async fn every_earlier_schema_migrates_and_serves_its_data() {
    for n in 1..=LATEST_FIXTURE {
        upgrade(TestDb::sqlite_with(false).await, n).await;
        match TestDb::postgres_with(false).await {
            Some(pg) => upgrade(pg, n).await,
            None if n == 1 => {
                eprintln!("postgres tier not asked for (set STEWARD_TEST_DATABASE_URL)")
            }
            None => {}
        }
    }
}
