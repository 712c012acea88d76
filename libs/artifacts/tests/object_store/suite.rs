//! The test bodies every backend runs (see `object_store_test_suite!`).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use steward_artifacts::{ARTIFACT_NOT_FOUND, READ_CHUNK_SIZE, S3_PART_SIZE};
use steward_common::ErrorKind;

use crate::support::{
    CLIENT_ERROR, Harness, data, failing_after, http_get, key, read_all, sha256_hex,
    stalling_after, stream_of,
};

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Puts `content` at `path` and checks what `put` and `get` report against an independent
/// computation.
async fn put_and_verify(h: &Harness, path: &str, content: Bytes, chunk_sizes: &[usize]) {
    let key = key(path);
    let meta = h
        .store
        .put(&key, stream_of(content.clone(), chunk_sizes))
        .await
        .unwrap();
    assert_eq!(meta.key, key.as_str());
    assert_eq!(meta.size, content.len() as u64);
    assert_eq!(meta.sha256, sha256_hex(&content));
    let (size, stream) = h.store.get(&key).await.unwrap();
    assert_eq!(size, content.len() as u64);
    let (bytes, chunks) = read_all(stream).await;
    assert!(bytes == content, "{path}: downloaded bytes differ");
    assert!(
        chunks.iter().all(|&c| c <= READ_CHUNK_SIZE),
        "{path}: chunks {chunks:?}"
    );
    let expected_chunks = content.len().div_ceil(READ_CHUNK_SIZE);
    assert!(
        chunks.len() <= 2 * expected_chunks.max(1),
        "{path}: too many chunks {chunks:?}"
    );
}

pub async fn round_trip(h: &Harness) {
    let content = data(3 * 1024 * 1024 + 12_345, 1);
    put_and_verify(
        h,
        "model/model.onnx",
        content,
        &[1, 1000, 65_536, 300_001, 7],
    )
    .await;
    put_and_verify(h, "données/my model (1)+v=2,@x.bin", data(5000, 2), &[333]).await;
    put_and_verify(
        h,
        "environment/requirements.txt",
        Bytes::from_static(b"numpy==2.1\n"),
        &[4],
    )
    .await;

    // Objects land at the key under the store's root or prefix, and nowhere else.
    let keys = [
        "model/model.onnx",
        "données/my model (1)+v=2,@x.bin",
        "environment/requirements.txt",
    ];
    let expected: BTreeSet<String> = keys.iter().map(|p| h.physical(&key(p))).collect();
    assert_eq!(h.stored().await, expected);

    // Overwriting replaces the content.
    put_and_verify(h, "model/model.onnx", data(777, 3), &[100]).await;
    assert_eq!(h.stored().await, expected);
}

pub async fn empty_object(h: &Harness) {
    let key = key("empty/marker");
    let meta = h
        .store
        .put(&key, stream_of(Bytes::new(), &[1]))
        .await
        .unwrap();
    assert_eq!((meta.size, meta.sha256.as_str()), (0, EMPTY_SHA256));
    // A stream of empty chunks is an empty object too.
    let empties: Vec<_> = (0..3).map(|_| Ok(Bytes::new())).collect();
    let meta = h
        .store
        .put(&key, Box::pin(futures::stream::iter(empties)))
        .await
        .unwrap();
    assert_eq!((meta.size, meta.sha256.as_str()), (0, EMPTY_SHA256));
    let (size, stream) = h.store.get(&key).await.unwrap();
    assert_eq!(size, 0);
    let (bytes, _) = read_all(stream).await;
    assert!(bytes.is_empty());
    assert_eq!(h.stored().await, BTreeSet::from([h.physical(&key)]));
}

pub async fn large_object(h: &Harness) {
    // 20 MiB and a bit: three parts on S3 (8 + 8 + 4 MiB).
    let content = data(20 * 1024 * 1024 + 3, 4);
    let key = key("weights/model.safetensors");
    let meta = h
        .store
        .put(&key, stream_of(content.clone(), &[64 * 1024]))
        .await
        .unwrap();
    assert_eq!(meta.size, content.len() as u64);
    assert_eq!(meta.sha256, sha256_hex(&content));
    let (size, stream) = h.store.get(&key).await.unwrap();
    assert_eq!(size, content.len() as u64);
    let (bytes, chunks) = read_all(stream).await;
    assert_eq!(bytes.len(), content.len());
    assert_eq!(sha256_hex(&bytes), meta.sha256);
    assert!(
        chunks.iter().all(|&c| c <= READ_CHUNK_SIZE),
        "chunks {chunks:?}"
    );
    if let Some(etag) = h.s3_etag(&key).await {
        assert!(
            etag.ends_with("-3"),
            "expected a 3-part multipart upload, ETag {etag}"
        );
    }
    // Around the single/multipart threshold.
    for (len, parts) in [(S3_PART_SIZE, None), (S3_PART_SIZE + 1, Some("-2"))] {
        let content = data(len, len as u64);
        put_and_verify(h, "weights/edge.bin", content, &[1024 * 1024 + 1]).await;
        if let Some(etag) = h.s3_etag(&crate::support::key("weights/edge.bin")).await {
            match parts {
                Some(suffix) => assert!(etag.ends_with(suffix), "{len} bytes: ETag {etag}"),
                None => assert!(!etag.contains('-'), "{len} bytes: ETag {etag}"),
            }
        }
    }
}

pub async fn missing_key_is_not_found(h: &Harness) {
    let err = h
        .store
        .get(&key("nothing/here.txt"))
        .await
        .err()
        .expect("NotFound");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.reason, ARTIFACT_NOT_FOUND);
    assert!(err.message.contains("nothing/here.txt"), "{err}");
    assert!(
        !err.message.contains("experiments/"),
        "the message shows the artifact path: {err}"
    );
    // A "directory" holding other artifacts is not an artifact.
    h.store
        .put(&key("dir/file.txt"), stream_of(data(10, 5), &[10]))
        .await
        .unwrap();
    let err = h.store.get(&key("dir")).await.err().expect("NotFound");
    assert_eq!(err.kind, ErrorKind::NotFound);
}

pub async fn delete_is_idempotent(h: &Harness) {
    let key = key("plots/roc.png");
    h.store.delete(&key).await.unwrap();
    h.store
        .put(&key, stream_of(data(2048, 6), &[512]))
        .await
        .unwrap();
    let other = crate::support::key("plots/pr.png");
    h.store
        .put(&other, stream_of(data(10, 7), &[10]))
        .await
        .unwrap();
    h.store.delete(&key).await.unwrap();
    assert_eq!(
        h.store.get(&key).await.err().expect("deleted").kind,
        ErrorKind::NotFound
    );
    h.store.delete(&key).await.unwrap();
    assert_eq!(h.stored().await, BTreeSet::from([h.physical(&other)]));
    let (_, stream) = h.store.get(&other).await.unwrap();
    assert_eq!(
        read_all(stream).await.0,
        data(10, 7),
        "the other artifact is untouched"
    );
}

pub async fn failed_upload_leaves_nothing(h: &Harness) {
    let key = key("model/model.onnx");
    let original = data(1000, 8);
    h.store
        .put(&key, stream_of(original.clone(), &[100]))
        .await
        .unwrap();
    let before = h.stored().await;
    // Fails before any byte, within the single-put size, and after multipart parts went up.
    for len in [
        0,
        100 * 1024,
        S3_PART_SIZE + 5,
        2 * S3_PART_SIZE + 1024 * 1024,
    ] {
        let err = h
            .store
            .put(&key, failing_after(data(len, 9)))
            .await
            .expect_err("failed");
        assert_eq!(
            err.reason, CLIENT_ERROR,
            "{len} bytes: the stream's error is returned"
        );
        assert_eq!(h.stored().await, before, "{len} bytes: nothing changed");
        let (_, stream) = h.store.get(&key).await.unwrap();
        assert!(
            read_all(stream).await.0 == original,
            "{len} bytes: the old object is intact"
        );
    }
    let fresh = crate::support::key("model/never.onnx");
    h.store
        .put(&fresh, failing_after(data(S3_PART_SIZE + 1, 10)))
        .await
        .expect_err("failed");
    assert_eq!(
        h.store.get(&fresh).await.err().expect("absent").kind,
        ErrorKind::NotFound
    );
    assert_eq!(h.stored().await, before);
}

pub async fn dropped_upload_leaves_nothing(h: &Harness) {
    let before = h.stored().await;
    for len in [100 * 1024, S3_PART_SIZE + 1024 * 1024] {
        let key = key("checkpoints/step-100.pt");
        let (reached, stalled) = tokio::sync::oneshot::channel();
        let mut put = h.store.put(&key, stalling_after(data(len, 11), reached));
        tokio::select! {
            result = &mut put => panic!("the upload cannot finish: {result:?}"),
            _ = stalled => {}
        }
        // The upload is in progress: a temporary file (local) or a multipart upload whose
        // first part went up (S3; the small one is still buffered in memory).
        let during = h.stored().await;
        if !h.is_s3() || len > S3_PART_SIZE {
            assert_ne!(
                during, before,
                "{len} bytes: the upload should be visible mid-way"
            );
        }
        drop(put);
        h.wait_for_stored(&before).await;
        assert_eq!(
            h.store.get(&key).await.err().expect("absent").kind,
            ErrorKind::NotFound
        );
    }
}

pub async fn concurrent_puts_are_atomic(h: &Harness) {
    let key = key("model/model.onnx");
    let contents: Vec<Bytes> = (0..4)
        .map(|i| data(1024 * 1024 + i, 20 + i as u64))
        .collect();
    let puts = contents
        .iter()
        .map(|c| h.store.put(&key, stream_of(c.clone(), &[10_000])));
    for result in futures::future::join_all(puts).await {
        result.unwrap();
    }
    let (_, stream) = h.store.get(&key).await.unwrap();
    let got = read_all(stream).await.0;
    assert!(
        contents.iter().any(|c| *c == got),
        "the object is exactly one of the uploads"
    );
    assert_eq!(h.stored().await, BTreeSet::from([h.physical(&key)]));
}

/// `put_known_many` (dataset chunks) stores every object whole, at its exact length: around
/// the sizes where the local store switches to `O_DIRECT` (64 KiB) and splits whole 4 KiB
/// blocks from the tail,
/// and up to the 4 MiB largest chunk; in one call, and over objects already stored.
pub async fn put_known_many_stores_each_whole(h: &Harness) {
    let sizes = [
        0,
        1,
        4095,
        4096,
        4097,
        65_535,
        65_536,
        65_537,
        262_144 + 17,
        1 << 20,
        (4 << 20) - 1,
    ];
    let items: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (key(&format!("chunks/{i}")), data(n, 40 + i as u64)))
        .collect();
    h.store.put_known_many(items.clone()).await.unwrap();
    let check = |items: Vec<(steward_artifacts::ObjectKey, Bytes)>| async move {
        for (key, content) in items {
            let (size, stream) = h.store.get(&key).await.unwrap();
            assert_eq!(size, content.len() as u64, "{key:?}: size");
            let (bytes, _) = read_all(stream).await;
            assert!(bytes == content, "{key:?}: bytes differ");
        }
    };
    check(items.clone()).await;
    let expected: BTreeSet<String> = items.iter().map(|(k, _)| h.physical(k)).collect();
    assert_eq!(h.stored().await, expected, "no temporary file is left");

    // Writing over stored objects (a longer and a shorter content) replaces them whole.
    let again = vec![
        (items[9].0.clone(), data(300_001, 60)),
        (items[10].0.clone(), data(70_000, 61)),
    ];
    h.store.put_known_many(again.clone()).await.unwrap();
    check(again).await;
    assert_eq!(h.stored().await, expected);
}

pub async fn presign(h: &Harness) {
    let key = key("données/model card.md");
    let content = data(70_000, 12);
    h.store
        .put(&key, stream_of(content.clone(), &[4096]))
        .await
        .unwrap();
    let url = h
        .store
        .presign_get(&key, Duration::from_secs(300))
        .await
        .unwrap();
    let Some((endpoint, bucket, _)) = h.s3_location() else {
        assert_eq!(url, None, "local files cannot be presigned");
        return;
    };
    let url = url.expect("S3 presigns");
    assert!(url.starts_with(&format!("{endpoint}/{bucket}/")), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let (status, body) = http_get(&url).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body == content, "the presigned URL serves the object");
    h.store.delete(&key).await.unwrap();
    let (status, _) = http_get(&url).await;
    assert_eq!(status, 404);
    let too_long = h
        .store
        .presign_get(&key, Duration::from_secs(8 * 24 * 3600))
        .await;
    assert_eq!(
        too_long.expect_err("over 7 days").kind,
        ErrorKind::InvalidArgument
    );
}

pub async fn describe_and_check(h: &Harness) {
    h.store.check().await.unwrap();
    let uri = h.store.describe();
    match (h.local_root(), h.s3_location()) {
        (Some(root), _) => {
            let root = root.to_str().unwrap().replace(' ', "%20");
            assert_eq!(uri, format!("file://{root}"));
            assert!(
                uri.starts_with("file:///") && uri.ends_with("artifact%20root"),
                "{uri}"
            );
        }
        (None, Some((_, bucket, prefix))) => assert_eq!(uri, format!("s3://{bucket}/{prefix}")),
        (None, None) => unreachable!(),
    }
}
