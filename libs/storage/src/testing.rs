//! Test databases for every backend: SQLite always, PostgreSQL when
//! `STEWARD_TEST_DATABASE_URL` is set (each test gets a fresh database on that server; an
//! unreachable server is a failure, not a skip).

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};

use crate::{Db, DbOptions};

/// A database created for one test.
pub struct TestDb {
    /// Backend label for messages (`sqlite` or `postgres`).
    pub label: &'static str,
    /// URL to connect to it.
    pub url: String,
    /// Connected handle, migrated.
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl TestDb {
    /// A migrated SQLite database in a temporary directory.
    pub async fn sqlite() -> TestDb {
        Self::sqlite_with(true).await
    }

    /// A SQLite database, migrated or empty.
    pub async fn sqlite_with(migrate: bool) -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
        let db = Db::connect(&url, &DbOptions::default())
            .await
            .expect("sqlite connect");
        if migrate {
            crate::migrate::run(&db).await.expect("migrate sqlite");
        }
        TestDb {
            label: "sqlite",
            url,
            db,
            _dir: Some(dir),
            pg_admin: None,
        }
    }

    /// A fresh migrated database on the server of `STEWARD_TEST_DATABASE_URL`, if set.
    /// Panics (fails the test) if it is set but unreachable.
    pub async fn postgres() -> Option<TestDb> {
        Self::postgres_with(true).await
    }

    /// A fresh Postgres database, migrated or empty (see [`TestDb::postgres`]).
    pub async fn postgres_with(migrate: bool) -> Option<TestDb> {
        let base = std::env::var("STEWARD_TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())?;
        let name = format!("steward_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect_admin(&base).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| {
                panic!("STEWARD_TEST_DATABASE_URL: cannot create a test database: {e}")
            });
        let url = with_database(&base, &name);
        let db = Db::connect(
            &url,
            &DbOptions {
                max_connections: 8,
                connect_timeout: Duration::from_secs(5),
            },
        )
        .await
        .expect("connect to the test database");
        if migrate {
            crate::migrate::run(&db).await.expect("migrate postgres");
        }
        Some(TestDb {
            label: "postgres",
            url,
            db,
            _dir: None,
            pg_admin: Some((base, name)),
        })
    }

    /// Every backend asked for: SQLite, plus Postgres when configured. Prints one line when
    /// Postgres was not asked for.
    pub async fn all() -> Vec<TestDb> {
        Self::all_with(true).await
    }

    /// Every backend asked for, migrated or empty.
    pub async fn all_with(migrate: bool) -> Vec<TestDb> {
        let mut v = vec![TestDb::sqlite_with(migrate).await];
        match TestDb::postgres_with(migrate).await {
            Some(pg) => v.push(pg),
            None => eprintln!("postgres tier not asked for (set STEWARD_TEST_DATABASE_URL)"),
        }
        v
    }

    /// Runs a multi-statement SQL script on this database (a fixture dump: `sqlite3 .dump`
    /// on SQLite, `pg_dump --inserts` on Postgres).
    ///
    /// # Panics
    /// If a statement fails.
    pub async fn run_script(&self, sql: &str) {
        self.db
            .conn()
            .execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{}: the script failed: {e}", self.label));
    }

    /// Drops the Postgres test database (SQLite's directory is removed on drop).
    pub async fn cleanup(self) {
        let TestDb { db, pg_admin, .. } = self;
        db.close().await;
        if let Some((base, name)) = pg_admin {
            let admin = connect_admin(&base).await;
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

async fn connect_admin(base: &str) -> sea_orm::DatabaseConnection {
    let mut o = sea_orm::ConnectOptions::new(base.to_string());
    o.connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .max_connections(1)
        .sqlx_logging(false);
    Database::connect(o).await.unwrap_or_else(|e| {
        panic!("STEWARD_TEST_DATABASE_URL is set but the server is unreachable: {e}")
    })
}

/// Replaces the database name in a Postgres URL.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}
