//! Hostile input against `steward up` (every service in one process): artifact path traversal
//! in its encodings, disallowed model source schemes, SSRF webhook targets, NUL bytes and
//! invalid UTF-8 in names, oversized fields, deeply nested and injected filters, huge page
//! sizes and stalled client streams. Each gets a clear error (INVALID_ARGUMENT naming the field,
//! or the documented code), nothing is written outside the artifact root, and the server keeps
//! answering.

use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::Message;
use steward_proto::monitoring as mpb;
use steward_proto::monitoring::monitoring_service_client::MonitoringServiceClient;
use steward_proto::registry as rpb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_proto::tracking as pb;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::support::server::Server;
use crate::support::tracking::{self as t, unique};

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Asserts `status` is `code`, and for INVALID_ARGUMENT that it names `field`.
fn refused(what: &str, status: &tonic::Status, code: Code, field: &str) {
    assert_eq!(status.code(), code, "{what}: {status:?}");
    if code == Code::InvalidArgument {
        let details = tonic_types::StatusExt::get_details_bad_request(status);
        let named = details
            .as_ref()
            .is_some_and(|b| b.field_violations.iter().any(|v| v.field.contains(field)))
            || status.message().contains(field);
        assert!(named, "{what}: the error does not name {field}: {status:?}");
    }
}

/// Sends raw bytes as the request message (for bytes no generated client would send).
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf as _;
        let mut v = vec![0; buf.remaining()];
        buf.copy_to_slice(&mut v);
        Ok(Some(v))
    }
}

async fn raw_unary(server: &Server, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(server.channel.clone());
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .expect_err("a malformed message is refused")
}

#[tokio::test]
async fn hostile_requests_get_clear_errors_write_nothing_and_leave_the_server_serving() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut server = Server::steward_up(&data, &[]).await;
    let mut tc = server.tracking();
    let exp = t::create_experiment(&mut tc, &unique("hostile")).await;
    let run = t::create_run(&mut tc, &exp.name, "r").await;
    let before: Vec<PathBuf> = files(root.path());

    // Artifact paths that try to leave the run's directory, in every spelling.
    for path in [
        "../x",
        "../../../../etc/passwd",
        "a/../../x",
        "/etc/passwd",
        "..%2fx",
        "%2e%2e/x",
        "%2e%2e%2fx",
        "..\\x",
        "a\\..\\..\\x",
        "C:\\Windows\\x",
        "..",
        ".",
        "a/./b",
        "a//b",
        "x\0y",
        "",
        &"a/".repeat(3000),
    ] {
        let msgs = vec![
            pb::UploadArtifactRequest {
                part: Some(pb::upload_artifact_request::Part::Header(
                    pb::ArtifactHeader {
                        run: run.name.clone(),
                        path: path.to_owned(),
                        ..Default::default()
                    },
                )),
            },
            pb::UploadArtifactRequest {
                part: Some(pb::upload_artifact_request::Part::Chunk(
                    b"pwned".to_vec().into(),
                )),
            },
        ];
        let e = tc
            .upload_artifact(futures::stream::iter(msgs))
            .await
            .expect_err(path);
        refused(
            &format!("upload {path:?}"),
            &e,
            Code::InvalidArgument,
            "path",
        );
        let e = tc
            .download_artifact(pb::DownloadArtifactRequest {
                run: run.name.clone(),
                path: path.to_owned(),
            })
            .await;
        // Refused at once, or (for a valid but absent path) NOT_FOUND when read.
        match e {
            Err(e) => assert!(
                matches!(e.code(), Code::InvalidArgument | Code::NotFound),
                "download {path:?}: {e:?}"
            ),
            Ok(mut s) => {
                let e = s.get_mut().message().await.expect_err(path);
                assert!(
                    matches!(e.code(), Code::InvalidArgument | Code::NotFound),
                    "download {path:?}: {e:?}"
                );
            }
        }
    }

    // Model sources with schemes the registry must not fetch.
    let mut rc = RegistryServiceClient::new(server.channel.clone());
    rc.create_registered_model(rpb::CreateRegisteredModelRequest {
        registered_model: Some(rpb::RegisteredModel {
            name: "hostile".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap();
    for uri in [
        "file:///etc/passwd",
        "file://localhost/etc/shadow",
        "gopher://example.com/x",
        "ftp://example.com/model",
        "s3://bucket/../../secret",
        "https://user:password@example.com/model.onnx",
        "javascript:alert(1)",
        "/etc/passwd",
    ] {
        let e = rc
            .create_model_version(rpb::CreateModelVersionRequest {
                parent: "registeredModels/hostile".into(),
                model_version: Some(rpb::ModelVersion {
                    source_uri: uri.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        refused(
            &format!("source {uri}"),
            &e,
            Code::InvalidArgument,
            "source_uri",
        );
    }

    // Webhook targets on loopback, private ranges and metadata addresses, however written.
    let mut mc = MonitoringServiceClient::new(server.channel.clone());
    for url in [
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://127.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://[fd00::1]/hook",
        "file:///etc/passwd",
    ] {
        let e = mc
            .create_channel(mpb::CreateChannelRequest {
                channel_id: "hook".into(),
                channel: Some(mpb::Channel {
                    url: url.into(),
                    secret: "0123456789abcdef".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        refused(&format!("webhook {url}"), &e, Code::InvalidArgument, "url");
    }

    // Names with NUL bytes and control characters; oversized fields.
    for name in ["a\0b", "tab\there", "\u{202e}gnp.exe", &"x".repeat(10_000)] {
        let e = tc
            .create_experiment(pb::CreateExperimentRequest {
                experiment: Some(pb::Experiment {
                    display_name: name.to_owned(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        refused("experiment name", &e, Code::InvalidArgument, "display_name");
    }
    let e = tc
        .log_run_data(pb::LogRunDataRequest {
            run: run.name.clone(),
            params: vec![pb::Param {
                key: "big".into(),
                value: "v".repeat(1 << 20),
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused("1 MiB param value", &e, Code::InvalidArgument, "params");

    // Invalid UTF-8 in a string field: bytes no generated client sends.
    let mut body = pb::CreateExperimentRequest {
        experiment: Some(pb::Experiment {
            display_name: "AAAA".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
    .encode_to_vec();
    let at = body.windows(4).position(|w| w == b"AAAA").unwrap();
    body[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    let e = raw_unary(
        &server,
        "/steward.tracking.v1.TrackingService/CreateExperiment",
        body,
    )
    .await;
    refused("invalid UTF-8", &e, Code::InvalidArgument, "display_name");
    let e = raw_unary(
        &server,
        "/steward.tracking.v1.TrackingService/CreateExperiment",
        vec![0xff; 64],
    )
    .await;
    assert_eq!(e.code(), Code::InvalidArgument, "garbage bytes: {e:?}");

    // Filters: nesting, injection, unknown fields; huge page sizes.
    for (filter, field) in [
        (
            format!("{}params.a = '1'{}", "(".repeat(1500), ")".repeat(1500)),
            "filter",
        ),
        (format!("{}params.a = '1'", "not ".repeat(900)), "filter"),
        ("params.a = '1'; DROP TABLE runs; --".to_owned(), "filter"),
        ("params.a = '1' OR 1=1".to_owned(), "filter"),
        (
            "metrics.`x` > 1 UNION SELECT * FROM audit_records".to_owned(),
            "filter",
        ),
        ("sqlite_master.name = 'x'".to_owned(), "filter"),
        ("x".repeat(5000), "filter"),
    ] {
        let e = tc
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![exp.name.clone()],
                filter: filter.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        refused(
            &filter[..filter.len().min(60)],
            &e,
            Code::InvalidArgument,
            field,
        );
    }
    // A quote inside a string is data, not SQL.
    let runs = tc
        .search_runs(pb::SearchRunsRequest {
            experiments: vec![exp.name.clone()],
            filter: "params.a = 'x'' OR ''1''=''1'".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(runs.runs.is_empty(), "{runs:?}");
    for page_size in [i32::MAX, -1] {
        match tc
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![exp.name.clone()],
                page_size,
                ..Default::default()
            })
            .await
        {
            Ok(r) => assert!(r.into_inner().runs.len() <= 1000),
            Err(e) => refused("page size", &e, Code::InvalidArgument, "page_size"),
        }
    }

    // Stalled client streams: many uploads that send a header and then nothing hold no lock
    // that others need; the server keeps answering.
    let mut stalled = Vec::new();
    for i in 0..50 {
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::UploadArtifactRequest>(1);
        tx.send(pb::UploadArtifactRequest {
            part: Some(pb::upload_artifact_request::Part::Header(
                pb::ArtifactHeader {
                    run: run.name.clone(),
                    path: format!("stalled/{i}.bin"),
                    ..Default::default()
                },
            )),
        })
        .await
        .unwrap();
        let mut c = tc.clone();
        stalled.push((
            tx,
            tokio::spawn(async move {
                c.upload_artifact(tokio_stream::wrappers::ReceiverStream::new(rx))
                    .await
            }),
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    t::create_experiment(&mut tc, &unique("still-serving")).await;
    t::upload(&mut tc, &run.name, "ok/after.bin", b"fine").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the server was slow while streams stalled: {:?}",
        started.elapsed()
    );
    for (tx, task) in stalled {
        drop(tx);
        // The stream ended without data: an empty artifact, or refused; never a hang.
        let _ = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a stalled upload ends once its client does");
    }

    // Nothing was written outside the artifact root, and nothing under it but what the
    // accepted uploads named.
    let after = files(root.path());
    let artifacts = data.join("artifacts");
    for f in after.iter().filter(|f| !before.contains(f)) {
        let inside_data = f.starts_with(&data);
        assert!(inside_data, "written outside the data dir: {}", f.display());
        if f.starts_with(&artifacts) {
            let rel = f
                .strip_prefix(&artifacts)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(
                rel.contains("/artifacts/stalled/") || rel.contains("/artifacts/ok/"),
                "unexpected artifact file {rel}"
            );
        }
    }
    assert!(!root.path().join("x").exists() && !data.join("x").exists());
    assert!(
        server.proc.try_exit().is_none(),
        "the server is still running"
    );
}
