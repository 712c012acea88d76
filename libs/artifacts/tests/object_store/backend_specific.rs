//! Behaviour that differs between backends, or needs a broken backend.

use steward_artifacts::{ObjectStoreConfig, S3Config};
use steward_common::ErrorKind;

use crate::support::{Harness, data, key, read_all, s3_config, s3_endpoint, stream_of};

#[tokio::test]
async fn local_check_fails_when_the_root_is_gone() {
    let harness = Harness::local().await;
    let root = harness.local_root().unwrap().to_owned();
    std::fs::remove_dir_all(&root).unwrap();
    let err = harness.store.check().await.expect_err("the root is gone");
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(err.reason, "OBJECT_STORE_UNAVAILABLE");
}

#[tokio::test]
async fn local_open_fails_when_the_root_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("file");
    std::fs::write(&root, b"x").unwrap();
    let err = steward_artifacts::open(&ObjectStoreConfig::Local { root })
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::Unavailable);
}

#[tokio::test]
async fn local_file_and_directory_conflicts_are_clear_and_leave_nothing() {
    let harness = Harness::local().await;
    let store = &harness.store;
    store
        .put(&key("a"), stream_of(data(10, 1), &[10]))
        .await
        .unwrap();
    store
        .put(&key("c/d"), stream_of(data(10, 2), &[10]))
        .await
        .unwrap();
    let before = harness.stored().await;
    for path in ["a/b", "a/b/c", "c"] {
        let err = store
            .put(&key(path), stream_of(data(10, 3), &[10]))
            .await
            .expect_err(path);
        assert_eq!(err.kind, ErrorKind::FailedPrecondition, "{path}: {err}");
        assert_eq!(err.reason, "ARTIFACT_PATH_CONFLICT", "{path}");
        assert!(err.message.contains(path), "{path}: {err}");
    }
    assert_eq!(
        harness.stored().await,
        before,
        "no temporary file is left behind"
    );
    store
        .delete(&key("c"))
        .await
        .expect("deleting a directory's path deletes nothing");
    store
        .delete(&key("a/b"))
        .await
        .expect("deleting under a file deletes nothing");
    assert_eq!(harness.stored().await, before);
}

#[tokio::test]
async fn longest_paths_fit_locally_and_are_refused_clearly_by_s3() {
    let segment = "s".repeat(255);
    let path = format!("{segment}/{segment}/{segment}/{}/x", "t".repeat(254));
    assert_eq!(path.len(), steward_artifacts::MAX_PATH_BYTES);
    let local = Harness::local().await;
    local
        .store
        .put(&key(&path), stream_of(data(10, 4), &[10]))
        .await
        .unwrap();
    let (_, stream) = local.store.get(&key(&path)).await.unwrap();
    assert_eq!(read_all(stream).await.0, data(10, 4));

    let Some(s3) = Harness::s3().await else {
        return;
    };
    let err = s3
        .store
        .put(&key(&path), stream_of(data(10, 4), &[10]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert_eq!(err.reason, "LIMIT_EXCEEDED");
    s3.finish().await;
}

/// A port on which nothing listens.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn s3_unreachable_is_unavailable_and_never_shows_the_secret() {
    let secret = "s3cr3t-Never-Shown";
    let cfg = S3Config {
        secret_access_key: Some(secret.to_owned()),
        create_bucket: false,
        ..s3_config(
            &format!("http://127.0.0.1:{}", closed_port().await),
            "steward-unreachable",
        )
    };
    assert!(!format!("{cfg:?}").contains(secret));
    let store = steward_artifacts::open(&ObjectStoreConfig::S3(cfg.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.describe(),
        "s3://steward-unreachable/tenant-a/artifacts"
    );

    let err = store.check().await.expect_err("nothing listens");
    assert_eq!(
        (err.kind, err.reason),
        (ErrorKind::Unavailable, "OBJECT_STORE_UNAVAILABLE")
    );
    let err = store
        .get(&key("model/model.onnx"))
        .await
        .err()
        .expect("nothing listens");
    assert_eq!(
        (err.kind, err.reason),
        (ErrorKind::Unavailable, "OBJECT_STORE_UNAVAILABLE")
    );
    let err = store
        .put(&key("m"), stream_of(data(10, 5), &[10]))
        .await
        .expect_err("down");
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(!format!("{err:?}").contains(secret));

    // Asked to create its bucket, opening fails rather than pretending to work.
    let create = S3Config {
        create_bucket: true,
        ..cfg
    };
    let err = steward_artifacts::open(&ObjectStoreConfig::S3(create))
        .await
        .err()
        .expect("down");
    assert_eq!(err.kind, ErrorKind::Unavailable);
}

#[tokio::test]
async fn s3_bad_settings_name_the_setting() {
    let cfg = S3Config {
        bucket: "Not_A_Bucket".to_owned(),
        ..s3_config("http://127.0.0.1:1", "x")
    };
    let err = steward_artifacts::open(&ObjectStoreConfig::S3(cfg))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert_eq!(err.violations[0].field, "s3.bucket");
}

#[tokio::test]
async fn s3_check_reports_a_missing_bucket() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let bucket = format!("steward-missing-{}", uuid::Uuid::new_v4().simple());
    let cfg = S3Config {
        create_bucket: false,
        ..s3_config(&endpoint, &bucket)
    };
    let store = steward_artifacts::open(&ObjectStoreConfig::S3(cfg))
        .await
        .unwrap();
    let err = store.check().await.expect_err("the bucket does not exist");
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(err.message.contains("does not exist"), "{err}");
}
