//! Model versions: from runs (checked against tracking, digest computed, lineage frozen), from
//! external URIs, bad sources, listing, and gap-free numbering under concurrency.

use sha2::{Digest, Sha256};
use steward_proto::registry as pb;
use steward_proto::tracking as tpb;
use tonic::Code;

use crate::harness::{self, assert_bad, reason};

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn from_run(model: &str, run: &str, path: &str) -> pb::CreateModelVersionRequest {
    pb::CreateModelVersionRequest {
        parent: model.into(),
        model_version: Some(pb::ModelVersion {
            source_run: run.into(),
            artifact_path: path.into(),
            format: "onnx".into(),
            signature: Some(pb::ModelSignature {
                inputs: vec![pb::TensorSpec {
                    name: "x".into(),
                    dtype: "float32".into(),
                    shape: vec![-1, 8],
                }],
                outputs: vec![pb::TensorSpec {
                    name: "score".into(),
                    dtype: "float32".into(),
                    shape: vec![-1],
                }],
            }),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

fn external(model: &str, uri: &str, digest: &str) -> pb::CreateModelVersionRequest {
    pb::CreateModelVersionRequest {
        parent: model.into(),
        model_version: Some(pb::ModelVersion {
            source_uri: uri.into(),
            content_digest: digest.into(),
            format: "sklearn".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn a_version_from_a_run_records_digest_signature_and_a_frozen_lineage() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model().await;
        let run = h.trained_run(0.91, "0.1").await;
        let v = h
            .reg
            .create_model_version(from_run(&model, &run, "model/"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v.version, 1, "{l}");
        assert_eq!(v.name, format!("{model}/versions/1"));
        assert_eq!(v.status, pb::ModelVersionStatus::Ready as i32);
        assert_eq!(v.approval_state, pb::ApprovalState::Pending as i32);
        assert_eq!(v.creator, "alice");
        assert!(v.artifact_uri.ends_with("/model"), "{}", v.artifact_uri);
        // The digest is over the sorted (relative path, sha256) lines of the model files.
        let expected = format!(
            "conf.json\t{}\nmodel.onnx\t{}\n",
            sha(b"{}"),
            sha(b"onnx-bytes")
        );
        assert_eq!(
            v.content_digest,
            format!("sha256:{}", sha(expected.as_bytes())),
            "{l}"
        );
        assert_eq!(v.signature.as_ref().unwrap().inputs[0].shape, vec![-1, 8]);
        // Lineage.
        let lin = h
            .reg
            .get_lineage(pb::GetLineageRequest {
                name: v.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(lin.source_run, run);
        assert_eq!(lin.params["lr"], "0.1");
        assert_eq!(lin.metrics["auc"], 0.91);
        assert_eq!(lin.datasets[0].digest, format!("sha256:{}", "d".repeat(64)));
        assert_eq!(lin.datasets[0].context, "training");
        let code = lin.code_version.clone().unwrap();
        assert_eq!(
            (code.git_commit.as_str(), code.git_repo.as_str()),
            ("0123abcd", "https://git.example/fraud")
        );
        assert_eq!(lin.creator, "alice");
        // Later edits of the run do not rewrite the snapshot.
        h.tracking
            .log_run_data(tpb::LogRunDataRequest {
                run: run.clone(),
                metrics: vec![tpb::MetricPoint {
                    key: "auc".into(),
                    value: 0.5,
                    step: 99,
                    ..Default::default()
                }],
                params: vec![tpb::Param {
                    key: "extra".into(),
                    value: "1".into(),
                }],
                tags: vec![tpb::Tag {
                    key: "steward.source.git_commit".into(),
                    value: "ffff".into(),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        let again = h
            .reg
            .get_lineage(pb::GetLineageRequest {
                name: format!("{model}/versions/1"),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, lin, "{l}: lineage is frozen at creation");
        // A single file works too.
        let f = h
            .reg
            .create_model_version(from_run(&model, &run, "model/model.onnx"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(f.version, 2);
        let single = format!("model.onnx\t{}\n", sha(b"onnx-bytes"));
        assert_eq!(
            f.content_digest,
            format!("sha256:{}", sha(single.as_bytes()))
        );
        h.stop().await;
    }
}

#[tokio::test]
async fn bad_sources_get_clear_errors_and_take_no_number() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let model = h.model().await;
        let run = h.trained_run(0.9, "0.1").await;
        let missing_run = format!(
            "{}/runs/{}",
            run.rsplit_once("/runs/").unwrap().0,
            "0".repeat(32)
        );
        let cases: Vec<(pb::CreateModelVersionRequest, Code, Option<&str>)> = vec![
            (
                from_run(&model, &missing_run, "model"),
                Code::NotFound,
                Some("model_version.source_run"),
            ),
            (
                from_run(&model, "experiments/x/runs/y", "model"),
                Code::InvalidArgument,
                Some("model_version.source_run"),
            ),
            (
                from_run(&model, &run, "nothing-here"),
                Code::InvalidArgument,
                Some("model_version.artifact_path"),
            ),
            (
                from_run(&model, &run, "../model"),
                Code::InvalidArgument,
                Some("model_version.artifact_path"),
            ),
            (
                from_run(&model, &run, "/etc"),
                Code::InvalidArgument,
                Some("model_version.artifact_path"),
            ),
            (
                from_run(&model, &run, "model/%2e%2e/x"),
                Code::InvalidArgument,
                None,
            ),
            (
                from_run(&model, &run, ""),
                Code::InvalidArgument,
                Some("model_version.artifact_path"),
            ),
            (
                external(&model, "file:///etc/passwd", ""),
                Code::InvalidArgument,
                Some("model_version.source_uri"),
            ),
            (
                external(&model, "http://169.254.169.254/latest/meta-data", ""),
                Code::InvalidArgument,
                Some("model_version.source_uri"),
            ),
            (
                external(&model, "s3://user:secret@bucket/m", ""),
                Code::InvalidArgument,
                Some("model_version.source_uri"),
            ),
            (
                external(&model, "s3://bucket/m", "md5:abc"),
                Code::InvalidArgument,
                Some("model_version.content_digest"),
            ),
            (
                external("registeredModels/nope", "s3://bucket/m", ""),
                Code::NotFound,
                None,
            ),
        ];
        for (req, code, field) in cases {
            let e = h.reg.create_model_version(req.clone()).await.unwrap_err();
            if code == Code::NotFound {
                assert_eq!(e.code(), code, "{l}: {req:?}");
            } else {
                assert_bad(e, code, field);
            }
        }
        let mut both = from_run(&model, &run, "model");
        both.model_version.as_mut().unwrap().source_uri = "s3://b/m".into();
        assert_bad(
            h.reg.create_model_version(both).await.unwrap_err(),
            Code::InvalidArgument,
            Some("model_version.source_run"),
        );
        let mut bad_sig = from_run(&model, &run, "model");
        bad_sig
            .model_version
            .as_mut()
            .unwrap()
            .signature
            .as_mut()
            .unwrap()
            .inputs[0]
            .dtype = "float128".into();
        assert_bad(
            h.reg.create_model_version(bad_sig).await.unwrap_err(),
            Code::InvalidArgument,
            Some("model_version.signature.inputs[0].dtype"),
        );
        let mut bad_format = from_run(&model, &run, "model");
        bad_format.model_version.as_mut().unwrap().format = "pickle".into();
        assert_bad(
            h.reg.create_model_version(bad_format).await.unwrap_err(),
            Code::InvalidArgument,
            Some("model_version.format"),
        );
        // None of that took a number.
        let v = h
            .reg
            .create_model_version(from_run(&model, &run, "model"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v.version, 1, "{l}");
        h.stop().await;
    }
}

#[tokio::test]
async fn external_versions_start_creating_without_a_digest_and_finish_once() {
    for mut h in harness::all().await {
        let model = h.model().await;
        let digest = format!("sha256:{}", "a".repeat(64));
        let ready = h
            .reg
            .create_model_version(external(&model, "s3://models/fraud/1", &digest))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ready.status, pb::ModelVersionStatus::Ready as i32);
        let creating = h
            .reg
            .create_model_version(external(&model, "hf://org/fraud", ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(creating.status, pb::ModelVersionStatus::Creating as i32);
        let update = |v: pb::ModelVersion, paths: &[&str]| pb::UpdateModelVersionRequest {
            model_version: Some(v),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
            request_id: String::new(),
        };
        // READY needs a digest.
        let mut v = creating.clone();
        v.status = pb::ModelVersionStatus::Ready as i32;
        let e = h
            .reg
            .update_model_version(update(v.clone(), &["status"]))
            .await
            .unwrap_err();
        assert_bad(
            e,
            Code::InvalidArgument,
            Some("model_version.content_digest"),
        );
        v.content_digest = digest.clone();
        let done = h
            .reg
            .update_model_version(update(v.clone(), &["status", "content_digest"]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(done.status, pb::ModelVersionStatus::Ready as i32);
        // Final: no going back, and the digest is immutable now.
        v.status = pb::ModelVersionStatus::Failed as i32;
        v.etag = done.etag.clone();
        let e = h
            .reg
            .update_model_version(update(v, &["status"]))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::FailedPrecondition, "VERSION_NOT_CREATING")
        );
        // Description and tags stay editable, with etags.
        let mut d = done.clone();
        d.description = "shadow candidate".into();
        d.etag = "1".into();
        assert_eq!(
            h.reg
                .update_model_version(update(d.clone(), &["description"]))
                .await
                .unwrap_err()
                .code(),
            Code::Aborted
        );
        d.etag = done.etag.clone();
        let d2 = h
            .reg
            .update_model_version(update(d, &["description"]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(d2.description, "shadow candidate");
        h.stop().await;
    }
}

#[tokio::test]
async fn list_versions_filters_and_orders() {
    for mut h in harness::all().await {
        let model = h.model().await;
        let run = h.trained_run(0.9, "0.1").await;
        for _ in 0..3 {
            h.version_from(&model, &run).await;
        }
        h.reg
            .create_model_version(external(&model, "s3://b/m", ""))
            .await
            .unwrap();
        let list = |filter: &str, order: &str| pb::ListModelVersionsRequest {
            parent: model.clone(),
            filter: filter.into(),
            order_by: order.into(),
            ..Default::default()
        };
        let nums = |r: pb::ListModelVersionsResponse| {
            r.model_versions
                .iter()
                .map(|v| v.version)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            nums(
                h.reg
                    .list_model_versions(list("", ""))
                    .await
                    .unwrap()
                    .into_inner()
            ),
            [4, 3, 2, 1]
        );
        assert_eq!(
            nums(
                h.reg
                    .list_model_versions(list("status = 'READY'", "version asc"))
                    .await
                    .unwrap()
                    .into_inner()
            ),
            [1, 2, 3]
        );
        assert_eq!(
            nums(
                h.reg
                    .list_model_versions(list("status = 'CREATING' OR version <= 1", ""))
                    .await
                    .unwrap()
                    .into_inner()
            ),
            [4, 1]
        );
        assert_eq!(
            nums(
                h.reg
                    .list_model_versions(list(&format!("source_run = '{run}' AND version > 2"), ""))
                    .await
                    .unwrap()
                    .into_inner()
            ),
            [3]
        );
        let e = h
            .reg
            .list_model_versions(list("params.lr = '1'", ""))
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("filter"));
        h.stop().await;
    }
}

/// 32 concurrent clients each creating 50 versions of one model get exactly 1..=1600.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creators_get_gap_free_unique_numbers() {
    for mut h in harness::all().await {
        let model = h.model().await;
        let digest = format!("sha256:{}", "b".repeat(64));
        let mut tasks = Vec::new();
        for c in 0..32 {
            let mut client = h.as_("alice");
            let model = model.clone();
            let digest = digest.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..50 {
                    let mut req = external(&model, &format!("s3://models/{c}/{i}"), &digest);
                    req.request_id = format!("c{c}-i{i}");
                    got.push(
                        client
                            .create_model_version(req)
                            .await
                            .expect("create")
                            .into_inner()
                            .version,
                    );
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (1..=1600).collect::<Vec<i64>>(), "{}", h.label);
        let m = h
            .reg
            .get_registered_model(pb::GetRegisteredModelRequest {
                name: model.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.latest_version.unwrap().version, 1600);
        h.stop().await;
    }
}
