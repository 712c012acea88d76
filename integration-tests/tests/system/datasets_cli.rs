//! `steward datasets` and `steward reproduce` as a person runs them against `steward up`: push a
//! directory, push an edited copy (only new content stored), diff, pull byte-identical,
//! train a model on the version, reproduce it into a directory, and refuse to delete its data.

use std::path::Path;

use steward_proto::registry as rpb;
use steward_proto::tracking as pb;

use crate::support::cli::{contains_all, fails_as, json, ok_as};
use crate::support::server::Server;
use crate::support::tracking::{self as t, unique};

fn write_dataset(dir: &Path, rows: usize, edit: Option<std::ops::Range<usize>>) {
    std::fs::create_dir_all(dir.join("train")).unwrap();
    let mut csv = String::from("amount,country,label\n");
    for i in 0..rows {
        let edited = edit.as_ref().is_some_and(|r| r.contains(&i));
        let amount = if edited {
            90_000 + i % 7
        } else {
            (i * 7919) % 1000
        };
        let country = ["DE", "FR", "US"][i % 3];
        csv.push_str(&format!("{amount},{country},{}\n", i % 2));
    }
    std::fs::write(dir.join("train/part-0.csv"), csv).unwrap();
    std::fs::write(dir.join("README.txt"), b"transactions, 2026\n").unwrap();
}

fn same_tree(a: &Path, b: &Path) {
    for rel in ["train/part-0.csv", "README.txt"] {
        let (x, y) = (
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(b.join(rel)).unwrap(),
        );
        assert!(x == y, "{rel} differs after pull");
    }
}

#[tokio::test]
async fn datasets_cli_push_diff_pull_reproduce() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::steward_up(data.path(), &[]).await;
    let addr = server.url();
    let work = tempfile::tempdir().unwrap();
    let ds = unique("tx");

    // Push a directory: version 1, everything new.
    let v1_dir = work.path().join("v1");
    write_dataset(&v1_dir, 60_000, None);
    let out = ok_as(
        &addr,
        "alice",
        &[
            "datasets",
            "push",
            &ds,
            v1_dir.to_str().unwrap(),
            "--description",
            "first cut",
            "--tag",
            "team=risk",
        ],
    )
    .await;
    contains_all(
        &out,
        &[
            &format!("datasets/{ds}/versions/1 committed"),
            "2 files",
            "sha256:",
        ],
    );

    // An edited copy: version 2 stores only part of it.
    let v2_dir = work.path().join("v2");
    write_dataset(&v2_dir, 60_000, Some(30_000..30_600));
    ok_as(
        &addr,
        "alice",
        &["datasets", "push", &ds, v2_dir.to_str().unwrap()],
    )
    .await;
    let shown = ok_as(
        &addr,
        "alice",
        &[
            "datasets",
            "show",
            &format!("datasets/{ds}/versions/2"),
            "--json",
        ],
    )
    .await;
    let v2 = json(&shown);
    let (size, new) = (
        v2["size_bytes"].as_i64().unwrap(),
        v2["new_bytes"].as_i64().unwrap(),
    );
    assert!(
        new > 0 && new < size,
        "version 2 stored {new} of {size} bytes"
    );
    assert_eq!(v2["state"], "COMMITTED");

    let listed = ok_as(&addr, "alice", &["datasets", "list"]).await;
    contains_all(&listed, &[&format!("datasets/{ds}")]);
    let versions = ok_as(&addr, "alice", &["datasets", "list", &ds]).await;
    contains_all(
        &versions,
        &[
            &format!("datasets/{ds}/versions/1"),
            &format!("datasets/{ds}/versions/2"),
            "alice",
        ],
    );

    let diff = ok_as(
        &addr,
        "alice",
        &[
            "datasets",
            "diff",
            &format!("datasets/{ds}/versions/1"),
            &format!("datasets/{ds}/versions/2"),
        ],
    )
    .await;
    contains_all(
        &diff,
        &["1 files unchanged", "train/part-0.csv", "changed", "amount"],
    );

    // Pull both back: byte-identical.
    let p1 = work.path().join("pulled1");
    let out = ok_as(
        &addr,
        "alice",
        &[
            "datasets",
            "pull",
            &format!("datasets/{ds}/versions/1"),
            p1.to_str().unwrap(),
        ],
    )
    .await;
    contains_all(&out, &["2 files", "every file verified"]);
    same_tree(&v1_dir, &p1);
    let p2 = work.path().join("pulled2");
    ok_as(
        &addr,
        "alice",
        &[
            "datasets",
            "pull",
            &format!("datasets/{ds}/versions/latest"),
            p2.to_str().unwrap(),
        ],
    )
    .await;
    same_tree(&v2_dir, &p2);
    // Pulling over a directory holding other content is refused.
    fails_as(
        &addr,
        "alice",
        &[
            "datasets",
            "pull",
            &format!("datasets/{ds}/versions/2"),
            p1.to_str().unwrap(),
        ],
        "exists with other content",
    )
    .await;

    // A model trained on version 2, with code version and a lock file.
    let mut c = server.tracking();
    let exp = t::create_experiment(&mut c, &unique("exp")).await;
    let run = t::create_run(&mut c, &exp.name, "train").await;
    c.log_run_data(pb::LogRunDataRequest {
        run: run.name.clone(),
        params: vec![pb::Param {
            key: "lr".into(),
            value: "0.01".into(),
        }],
        tags: vec![
            pb::Tag {
                key: "steward.source.git_commit".into(),
                value: "3f2a9c1d".into(),
            },
            pb::Tag {
                key: "steward.source.git_repo".into(),
                value: "https://example.com/fraud.git".into(),
            },
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    c.log_run_inputs(pb::LogRunInputsRequest {
        run: run.name.clone(),
        inputs: vec![pb::DatasetInput {
            dataset: Some(pb::Dataset {
                version: format!("datasets/{ds}/versions/2"),
                ..Default::default()
            }),
            context: "training".into(),
        }],
        request_id: String::new(),
    })
    .await
    .unwrap();
    let model_bytes = t::content(4096, 5);
    t::upload(&mut c, &run.name, "model/model.onnx", &model_bytes).await;
    t::upload(&mut c, &run.name, "requirements.txt", b"numpy==2.1.0\n").await;
    let m = unique("fraud");
    let mut reg = steward_proto::registry::registry_service_client::RegistryServiceClient::new(
        server.channel(),
    );
    reg.create_registered_model(rpb::CreateRegisteredModelRequest {
        registered_model: Some(rpb::RegisteredModel {
            name: m.clone(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap();
    let mv = reg
        .create_model_version(rpb::CreateModelVersionRequest {
            parent: format!("registeredModels/{m}"),
            model_version: Some(rpb::ModelVersion {
                source_run: run.name.clone(),
                artifact_path: "model".into(),
                format: "onnx".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    // reproduce prints the manifest; --into materializes data, model and environment.
    let out = ok_as(&addr, "alice", &["reproduce", &mv.name]).await;
    contains_all(
        &out,
        &[
            "(complete)",
            "3f2a9c1d",
            &format!("datasets/{ds}/versions/2"),
            "lr = 0.01",
            "requirements.txt",
        ],
    );
    let into = work.path().join("repro");
    let out = ok_as(
        &addr,
        "alice",
        &["reproduce", &mv.name, "--into", into.to_str().unwrap()],
    )
    .await;
    contains_all(&out, &["materialized", "(complete)"]);
    same_tree(&v2_dir, &into.join("data").join(&ds));
    assert_eq!(
        std::fs::read(into.join("model/model.onnx")).unwrap(),
        model_bytes
    );
    assert_eq!(
        std::fs::read(into.join("environment/requirements.txt")).unwrap(),
        b"numpy==2.1.0\n"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(into.join("REPRODUCE.json")).unwrap()).unwrap();
    assert_eq!(manifest["complete"], true);

    // The training data cannot be deleted; version 1 can, and gives its bytes back.
    fails_as(
        &addr,
        "alice",
        &["datasets", "delete", &format!("datasets/{ds}/versions/2")],
        "in the lineage of",
    )
    .await;
    let out = ok_as(
        &addr,
        "alice",
        &["datasets", "delete", &format!("datasets/{ds}/versions/1")],
    )
    .await;
    contains_all(&out, &["deleted; reclaimed"]);
    let (_, back) = t::download(&mut c, &run.name, "model/model.onnx").await;
    assert_eq!(back, model_bytes);
    let p3 = work.path().join("pulled3");
    ok_as(
        &addr,
        "alice",
        &[
            "datasets",
            "pull",
            &format!("datasets/{ds}/versions/2"),
            p3.to_str().unwrap(),
        ],
    )
    .await;
    same_tree(&v2_dir, &p3);
}
