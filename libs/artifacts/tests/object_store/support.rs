//! Test harness: one store per backend, an independent view of what the backend holds, and
//! stream helpers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use steward_artifacts::{
    ArtifactPath, ByteStream, ObjectKey, ObjectStore, ObjectStoreConfig, S3Config,
};
use steward_common::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The variable that switches the S3 tier on.
pub const S3_ENDPOINT_VAR: &str = "STEWARD_TEST_S3_ENDPOINT";

const EXPERIMENT: &str = "0190a1b2c3d4e5f60718293a4b5c6d7e";
const RUN: &str = "0190a1b2c3d4e5f60718293a4b5c6d7f";

/// The reason of the error the failing test streams yield.
pub const CLIENT_ERROR: &str = "CLIENT_STREAM_BROKEN";

/// A store under test plus an independent view of the backend behind it.
pub struct Harness {
    pub store: Arc<dyn ObjectStore>,
    backend: Backend,
}

enum Backend {
    Local {
        root: PathBuf,
        _dir: tempfile::TempDir,
    },
    S3 {
        client: Client,
        bucket: String,
        prefix: String,
        endpoint: String,
    },
}

impl Harness {
    /// A local store on a fresh temporary directory.
    pub async fn local() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().join("artifact root");
        let store = steward_artifacts::open(&ObjectStoreConfig::Local { root: root.clone() })
            .await
            .expect("open the local store");
        store.check().await.expect("local store check");
        let root = root.canonicalize().expect("root exists");
        Self {
            store,
            backend: Backend::Local { root, _dir: dir },
        }
    }

    /// An S3 store on a fresh bucket, or `None` (saying so) if the S3 tier was not asked for.
    /// Panics if it was asked for but the server cannot be used.
    pub async fn s3() -> Option<Self> {
        let endpoint = s3_endpoint()?;
        let cfg = s3_config(
            &endpoint,
            &format!("steward-test-{}", uuid::Uuid::new_v4().simple()),
        );
        let store = steward_artifacts::open(&ObjectStoreConfig::S3(cfg.clone()))
            .await
            .unwrap_or_else(|e| panic!("{S3_ENDPOINT_VAR}={endpoint} is set but unusable: {e}"));
        store
            .check()
            .await
            .unwrap_or_else(|e| panic!("{S3_ENDPOINT_VAR}={endpoint} is set but unusable: {e}"));
        let backend = Backend::S3 {
            client: raw_client(&endpoint),
            bucket: cfg.bucket,
            prefix: cfg.prefix,
            endpoint,
        };
        Some(Self { store, backend })
    }

    /// Whether this is the S3 backend.
    pub fn is_s3(&self) -> bool {
        matches!(self.backend, Backend::S3 { .. })
    }

    /// The local root directory, if local.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local { root, .. } => Some(root),
            Backend::S3 { .. } => None,
        }
    }

    /// The S3 endpoint, bucket and prefix, if S3.
    pub fn s3_location(&self) -> Option<(&str, &str, &str)> {
        match &self.backend {
            Backend::Local { .. } => None,
            Backend::S3 {
                endpoint,
                bucket,
                prefix,
                ..
            } => Some((endpoint, bucket, prefix)),
        }
    }

    /// Everything the backend physically holds, read without going through the store: local
    /// files under the root (temporary files included), or the bucket's object keys plus
    /// `multipart:{key}` for each incomplete multipart upload.
    pub async fn stored(&self) -> BTreeSet<String> {
        match &self.backend {
            Backend::Local { root, .. } => {
                let mut files = BTreeSet::new();
                walk(root, root, &mut files);
                files
            }
            Backend::S3 { client, bucket, .. } => {
                let mut keys = BTreeSet::new();
                let mut token = None;
                loop {
                    let page = client
                        .list_objects_v2()
                        .bucket(bucket)
                        .set_continuation_token(token)
                        .send()
                        .await
                        .expect("ListObjectsV2");
                    keys.extend(
                        page.contents()
                            .iter()
                            .filter_map(|o| o.key())
                            .map(str::to_owned),
                    );
                    token = page.next_continuation_token().map(str::to_owned);
                    if token.is_none() {
                        break;
                    }
                }
                let uploads = client
                    .list_multipart_uploads()
                    .bucket(bucket)
                    .send()
                    .await
                    .expect("uploads");
                for upload in uploads.uploads() {
                    keys.insert(format!("multipart:{}", upload.key().unwrap_or_default()));
                }
                keys
            }
        }
    }

    /// Where `key` is physically stored, as [`Harness::stored`] lists it.
    pub fn physical(&self, key: &ObjectKey) -> String {
        match &self.backend {
            Backend::Local { .. } => key.as_str().to_owned(),
            Backend::S3 { prefix, .. } => format!("{prefix}/{key}"),
        }
    }

    /// The ETag S3 reports for `key` (None on the local backend).
    pub async fn s3_etag(&self, key: &ObjectKey) -> Option<String> {
        let Backend::S3 { client, bucket, .. } = &self.backend else {
            return None;
        };
        let head = client
            .head_object()
            .bucket(bucket)
            .key(self.physical(key))
            .send()
            .await
            .expect("HeadObject");
        Some(head.e_tag().expect("ETag").trim_matches('"').to_owned())
    }

    /// Waits (up to 10 s) until the backend holds exactly `expected`; background clean-up such
    /// as aborting a dropped multipart upload may take a moment.
    pub async fn wait_for_stored(&self, expected: &BTreeSet<String>) {
        for _ in 0..100 {
            if &self.stored().await == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(&self.stored().await, expected);
    }

    /// Removes the test bucket (S3) once a test passed.
    pub async fn finish(self) {
        if let Backend::S3 { client, bucket, .. } = &self.backend {
            for key in self.stored().await {
                if let Some(key) = key.strip_prefix("multipart:") {
                    panic!("incomplete multipart upload left behind for {key}");
                }
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .expect("delete");
            }
            client
                .delete_bucket()
                .bucket(bucket)
                .send()
                .await
                .expect("DeleteBucket");
        }
    }
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("under the root");
            let parts: Vec<_> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            files.insert(parts.join("/"));
        }
    }
}

/// The S3 endpoint to test against, or `None` after saying that the tier was not asked for.
pub fn s3_endpoint() -> Option<String> {
    match std::env::var(S3_ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| println!("S3 tier not asked for (set {S3_ENDPOINT_VAR})"));
            None
        }
    }
}

/// Test settings for a bucket on `endpoint`.
pub fn s3_config(endpoint: &str, bucket: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_owned(),
        prefix: "tenant-a/artifacts".to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(endpoint.to_owned()),
        path_style: true,
        access_key_id: Some("test".to_owned()),
        secret_access_key: Some("test".to_owned()),
        create_bucket: true,
    }
}

/// An SDK client of our own, to look at the bucket independently of the store.
fn raw_client(endpoint: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(http)
        .build();
    Client::from_conf(conf)
}

/// The key of a run artifact at `path`.
pub fn key(path: &str) -> ObjectKey {
    let path = ArtifactPath::parse(path, "path").expect("valid test path");
    ObjectKey::for_run_artifact(EXPERIMENT, RUN, &path).expect("valid ids")
}

/// `len` pseudo-random bytes (xorshift), different for each `seed`.
pub fn data(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Lowercase hex SHA-256, computed here, independently of the store.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Streams `data` in chunks of irregular sizes drawn from `sizes` (cycled).
pub fn stream_of(data: Bytes, sizes: &[usize]) -> ByteStream {
    let mut chunks = Vec::new();
    let mut offset = 0;
    for &size in sizes.iter().cycle() {
        if offset >= data.len() {
            break;
        }
        let end = (offset + size).min(data.len());
        chunks.push(Ok(data.slice(offset..end)));
        offset = end;
    }
    Box::pin(futures::stream::iter(chunks))
}

/// Streams `data`, then fails as a client that went away would.
pub fn failing_after(data: Bytes) -> ByteStream {
    let error = Error::unavailable(CLIENT_ERROR, "the client went away");
    Box::pin(stream_of(data, &[64 * 1024]).chain(futures::stream::iter([Err(error)])))
}

/// Streams `data`, then signals `reached` and never yields again (an upload stuck mid-way).
pub fn stalling_after(data: Bytes, reached: tokio::sync::oneshot::Sender<()>) -> ByteStream {
    let stall = futures::stream::once(async move {
        let _ = reached.send(());
        futures::future::pending::<Result<Bytes>>().await
    });
    Box::pin(stream_of(data, &[64 * 1024]).chain(stall))
}

/// Reads a download to the end: its bytes and the size of each chunk.
pub async fn read_all(mut stream: ByteStream) -> (Vec<u8>, Vec<usize>) {
    let (mut bytes, mut sizes) = (Vec::new(), Vec::new());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("download chunk");
        sizes.push(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    (bytes, sizes)
}

/// A plain HTTP/1.1 GET over a TCP socket (no client library): status and body.
pub async fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url
        .strip_prefix("http://")
        .expect("the S3 test endpoint is plain http");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut socket = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut raw = Vec::new();
    socket
        .read_to_end(&mut raw)
        .await
        .expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = raw[split + 4..].to_vec();
    let chunked = head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    (status, if chunked { dechunk(&body) } else { body })
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}
