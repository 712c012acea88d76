//! Artifacts: streamed upload/download with digests, listing, immutability, path attacks,
//! digest checks and presigned URLs.

use futures::StreamExt;
use sha2::{Digest, Sha256};
use steward_proto::tracking as pb;
use tonic::Code;

use crate::harness::{self, assert_bad, reason};

fn upload_msgs(
    run: &str,
    path: &str,
    data: Vec<u8>,
    expected: &str,
) -> impl futures::Stream<Item = pb::UploadArtifactRequest> + Send + 'static {
    let header = pb::UploadArtifactRequest {
        part: Some(pb::upload_artifact_request::Part::Header(
            pb::ArtifactHeader {
                run: run.into(),
                path: path.into(),
                content_type: "application/octet-stream".into(),
                request_id: String::new(),
                expected_sha256: expected.into(),
            },
        )),
    };
    let chunks: Vec<pb::UploadArtifactRequest> = data
        .chunks(256 * 1024)
        .map(|c| pb::UploadArtifactRequest {
            part: Some(pb::upload_artifact_request::Part::Chunk(
                bytes::Bytes::copy_from_slice(c),
            )),
        })
        .collect();
    futures::stream::iter(std::iter::once(header).chain(chunks))
}

async fn download(
    h: &mut harness::Harness,
    run: &str,
    path: &str,
) -> Result<(pb::Artifact, Vec<u8>), tonic::Status> {
    let mut s = h
        .client
        .download_artifact(pb::DownloadArtifactRequest {
            run: run.into(),
            path: path.into(),
        })
        .await?
        .into_inner();
    let mut meta = None;
    let mut data = Vec::new();
    while let Some(m) = s.next().await {
        let m = m?;
        if let Some(a) = m.artifact {
            meta = Some(a);
        }
        data.extend_from_slice(&m.chunk);
    }
    Ok((meta.expect("first message has metadata"), data))
}

#[tokio::test]
async fn upload_download_list() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let e = h.experiment().await;
        let run = h.run(&e.name).await;
        // 9 MiB crosses the S3 multipart threshold.
        let data: Vec<u8> = (0..9 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let sha = hex::encode(Sha256::digest(&data));
        let a = h
            .client
            .upload_artifact(upload_msgs(
                &run.name,
                "model/model.onnx",
                data.clone(),
                &sha,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (a.size_bytes, a.sha256.as_str()),
            (data.len() as i64, sha.as_str()),
            "{label}"
        );
        let (meta, back) = download(&mut h, &run.name, "model/model.onnx")
            .await
            .unwrap();
        assert_eq!(meta.sha256, sha);
        assert!(back == data, "{label}: bytes round-trip");
        h.client
            .upload_artifact(upload_msgs(
                &run.name,
                "environment/requirements.txt",
                b"numpy==2.0\n".to_vec(),
                "",
            ))
            .await
            .unwrap();
        h.client
            .upload_artifact(upload_msgs(&run.name, "empty.txt", Vec::new(), ""))
            .await
            .unwrap();
        let (_, empty) = download(&mut h, &run.name, "empty.txt").await.unwrap();
        assert!(empty.is_empty());

        let list = h
            .client
            .list_artifacts(pb::ListArtifactsRequest {
                run: run.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let paths: Vec<_> = list.artifacts.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "empty.txt",
                "environment/requirements.txt",
                "model/model.onnx"
            ],
            "{label}"
        );
        let list = h
            .client
            .list_artifacts(pb::ListArtifactsRequest {
                run: run.name.clone(),
                prefix: "model/".into(),
                page_size: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.artifacts.len(), 1);
        assert!(list.next_page_token.is_empty());

        // Prefixes are literal: `_` is not a wildcard.
        h.client
            .upload_artifact(upload_msgs(&run.name, "a_b/x.txt", b"1".to_vec(), ""))
            .await
            .unwrap();
        h.client
            .upload_artifact(upload_msgs(&run.name, "aXb/y.txt", b"2".to_vec(), ""))
            .await
            .unwrap();
        let list = h
            .client
            .list_artifacts(pb::ListArtifactsRequest {
                run: run.name.clone(),
                prefix: "a_b/".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            list.artifacts
                .iter()
                .map(|a| a.path.as_str())
                .collect::<Vec<_>>(),
            vec!["a_b/x.txt"],
            "{label}"
        );

        // Immutable: a second upload to the same path is refused and the original is intact.
        let err = h
            .client
            .upload_artifact(upload_msgs(
                &run.name,
                "model/model.onnx",
                b"evil".to_vec(),
                "",
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists, "{label}");
        let (_, back) = download(&mut h, &run.name, "model/model.onnx")
            .await
            .unwrap();
        assert!(back == data, "{label}: original kept");

        // A digest mismatch stores nothing.
        let err = h
            .client
            .upload_artifact(upload_msgs(
                &run.name,
                "bad.bin",
                b"abc".to_vec(),
                &"0".repeat(64),
            ))
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("header.expected_sha256"));
        assert_eq!(
            download(&mut h, &run.name, "bad.bin")
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        // ... and the path is free again.
        h.client
            .upload_artifact(upload_msgs(&run.name, "bad.bin", b"abc".to_vec(), ""))
            .await
            .unwrap();

        // Presigned URLs on S3 only.
        let url = h
            .client
            .get_artifact_download_url(pb::GetArtifactDownloadUrlRequest {
                run: run.name.clone(),
                path: "model/model.onnx".into(),
                expires_in: None,
            })
            .await;
        if h.s3 {
            let u = url.unwrap().into_inner();
            assert!(u.url.starts_with("http"), "{}", u.url);
        } else {
            let err = url.unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition);
            assert_eq!(reason(&err), "PRESIGN_UNSUPPORTED");
        }
        h.stop().await;
    }
}

#[tokio::test]
async fn hostile_paths_are_refused() {
    for mut h in harness::all().await {
        let e = h.experiment().await;
        let run = h.run(&e.name).await;
        for bad in [
            "../escape",
            "a/../../b",
            "/etc/passwd",
            "a\\..\\b",
            "%2e%2e/x",
            "%252e%252e/x",
            "a\0b",
            "a;b",
            "a?b",
            "a#b",
            "",
            "a//b",
            "C:\\x",
            "./x",
        ] {
            let err = h
                .client
                .upload_artifact(upload_msgs(&run.name, bad, b"x".to_vec(), ""))
                .await
                .unwrap_err();
            assert_bad(err, Code::InvalidArgument, Some("header.path"));
            let err = download(&mut h, &run.name, bad).await.unwrap_err();
            assert_bad(err, Code::InvalidArgument, Some("path"));
        }
        let list = h
            .client
            .list_artifacts(pb::ListArtifactsRequest {
                run: run.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(list.artifacts.is_empty(), "{}: nothing written", h.label);
        // A stream without a header, or with a second header, is refused.
        let no_header = futures::stream::iter(vec![pb::UploadArtifactRequest {
            part: Some(pb::upload_artifact_request::Part::Chunk(
                bytes::Bytes::from_static(b"x"),
            )),
        }]);
        assert_bad(
            h.client.upload_artifact(no_header).await.unwrap_err(),
            Code::InvalidArgument,
            Some("header"),
        );
        h.stop().await;
    }
}
