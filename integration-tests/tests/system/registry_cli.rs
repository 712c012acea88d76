//! The registry commands of the `steward` CLI (`models`, `versions`, `alias`, `approve`) as a
//! person runs them, against a running `steward up`, on a run seeded through the tracking API.

use steward_proto::tracking as pb;

use crate::support::cli::{contains_all, json, ok_as, steward_as, steward_env};
use crate::support::server::Server;
use crate::support::tracking::{self as t, unique};

/// The dataset digest logged to the first run.
const TRAIN_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
/// The commit tag of the first run.
const COMMIT: &str = "3f2a9c1d0b7e6a5f4c3b2a1908f7e6d5c4b3a291";

/// Logs params, a final metric, the code-version tags and, when given, a training dataset.
async fn seed_run(c: &mut t::Client, run: &str, lr: &str, acc: f64, dataset: Option<&str>) {
    t::log(c, run, &[("acc", 0.5, 0), ("acc", acc, 1)], &[("lr", lr)]).await;
    let tag = |k: &str, v: &str| pb::Tag {
        key: k.into(),
        value: v.into(),
    };
    c.log_run_data(pb::LogRunDataRequest {
        run: run.into(),
        tags: vec![
            tag("steward.source.git_commit", COMMIT),
            tag("steward.source.git_repo", "https://example.com/fraud.git"),
            tag("steward.source.git_dirty", "false"),
        ],
        ..Default::default()
    })
    .await
    .unwrap_or_else(|s| panic!("LogRunData tags {run}: {s:?}"));
    if let Some(digest) = dataset {
        c.log_run_inputs(pb::LogRunInputsRequest {
            run: run.into(),
            inputs: vec![pb::DatasetInput {
                dataset: Some(pb::Dataset {
                    name: "transactions".into(),
                    digest: digest.into(),
                    source_uri: "s3://data/transactions.parquet".into(),
                    source_type: "s3".into(),
                    ..Default::default()
                }),
                context: "training".into(),
            }],
            request_id: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("LogRunInputs {run}: {s:?}"));
    }
    t::upload(c, run, "model/model.onnx", &t::content(4096, acc.to_bits())).await;
    t::upload(c, run, "model/MLmodel", b"flavors: {onnx: {}}\n").await;
}

#[tokio::test]
async fn registry_cli_round_trips_against_steward_up() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::steward_up(data.path(), &[]).await;
    let addr = server.url();

    // An experiment (through the CLI) and two runs with model artifacts (tracking API).
    let exp_name = unique("registry-cli");
    ok_as(&addr, "alice", &["experiments", "create", &exp_name]).await;
    let mut c = server.tracking();
    let exp = c
        .get_experiment(pb::GetExperimentRequest {
            name: String::new(),
            display_name: exp_name.clone(),
        })
        .await
        .expect("the CLI created the experiment")
        .into_inner();
    let run1 = t::create_run(&mut c, &exp.name, "train-1").await;
    let run2 = t::create_run(&mut c, &exp.name, "train-2").await;
    seed_run(&mut c, &run1.name, "0.01", 0.91, Some(TRAIN_DIGEST)).await;
    seed_run(&mut c, &run2.name, "0.05", 0.85, None).await;

    // Models: create, list, get.
    let m = unique("fraud");
    let created = ok_as(
        &addr,
        "alice",
        &[
            "models",
            "create",
            &m,
            "--description",
            "fraud scorer",
            "--tag",
            "team=risk",
        ],
    )
    .await;
    contains_all(&created, &[&format!("created registeredModels/{m}")]);
    let listed = ok_as(
        &addr,
        "alice",
        &["models", "list", "--filter", "tags.team = 'risk'"],
    )
    .await;
    contains_all(&listed, &[&format!("registeredModels/{m}"), "team=risk"]);
    let got = ok_as(&addr, "alice", &["models", "get", &m]).await;
    contains_all(&got, &["fraud scorer", "alice"]);

    // Two versions from the runs' `model` directories, created by alice.
    for (run, v) in [(&run1, 1), (&run2, 2)] {
        let out = ok_as(
            &addr,
            "alice",
            &[
                "versions",
                "create",
                &m,
                "--run",
                &run.name,
                "--artifact-path",
                "model",
                "--format",
                "onnx",
            ],
        )
        .await;
        contains_all(
            &out,
            &[
                &format!("created registeredModels/{m}/versions/{v}"),
                "READY",
                "sha256:",
            ],
        );
    }
    let versions = ok_as(&addr, "alice", &["versions", "list", &m]).await;
    contains_all(&versions, &[&run1.name, &run2.name, "2 version(s)"]);

    // Alias champion -> 1; resolve it by the short alias form.
    let set = ok_as(
        &addr,
        "alice",
        &["alias", "set", &m, "champion", "1", "--json"],
    )
    .await;
    let first_move = json(&set);
    assert_eq!(first_move["version"], 1, "{}", set.describe());
    let as_of = first_move["update_time"]
        .as_str()
        .expect("update_time is an RFC 3339 string")
        .to_string();
    let champion = format!("{m}@champion");
    let got = ok_as(&addr, "alice", &["versions", "get", &champion]).await;
    contains_all(
        &got,
        &[
            &format!("registeredModels/{m}/versions/1"),
            "champion",
            &run1.name,
            "PENDING",
        ],
    );

    // Approval: the creator may not approve; someone else may (actor from STEWARD_ACTOR).
    let own = steward_as(&addr, "alice", &["approve", &champion]).await;
    assert!(
        !own.status.success(),
        "the creator approved\n{}",
        own.describe()
    );
    assert!(
        own.stderr.contains("PermissionDenied"),
        "{}",
        own.describe()
    );
    let approved = steward_env(
        &addr,
        &[("STEWARD_ACTOR", "bob")],
        &["approve", &champion, "--comment", "metrics hold up"],
    )
    .await;
    assert!(approved.status.success(), "{}", approved.describe());
    contains_all(
        &approved,
        &[
            "approved",
            &format!("registeredModels/{m}/versions/1"),
            "bob",
            "APPROVED",
        ],
    );
    let v1 = json(
        &ok_as(
            &addr,
            "alice",
            &["versions", "get", &format!("{m}/1"), "--json"],
        )
        .await,
    );
    assert_eq!(v1["approval_state"], "APPROVED");
    assert_eq!(v1["last_review"]["reviewer"], "bob");
    assert_eq!(v1["last_review"]["comment"], "metrics hold up");
    let rejected = ok_as(&addr, "bob", &["approve", &format!("{m}/2"), "--reject"]).await;
    contains_all(&rejected, &["rejected", "REJECTED"]);

    // Lineage of the champion: params, final metric, dataset with digest, code, creator.
    let lineage = ok_as(&addr, "alice", &["versions", "lineage", &champion]).await;
    contains_all(
        &lineage,
        &[
            &run1.name,
            "train-1",
            "param lr",
            "0.01",
            "metric acc",
            "0.9100",
            "transactions",
            TRAIN_DIGEST,
            COMMIT,
            "alice",
        ],
    );

    // Compare 1 with 2: lr differs, acc has a delta, the dataset only v1 used.
    let cmp = ok_as(
        &addr,
        "alice",
        &["versions", "compare", &format!("{m}/1"), &format!("{m}/2")],
    )
    .await;
    contains_all(
        &cmp,
        &[
            "params",
            "lr",
            "0.05",
            "metrics",
            "acc",
            "-0.0600",
            "datasets",
            "transactions",
        ],
    );

    // Move the alias, then delete it; the history keeps every move.
    ok_as(&addr, "alice", &["alias", "set", &m, "champion", "2"]).await;
    let now = ok_as(&addr, "alice", &["versions", "get", &champion, "--json"]).await;
    assert_eq!(json(&now)["version"], 2);
    ok_as(&addr, "alice", &["alias", "delete", &m, "champion"]).await;
    let gone = steward_as(&addr, "alice", &["versions", "get", &champion]).await;
    assert!(!gone.status.success(), "{}", gone.describe());
    assert!(gone.stderr.contains("NotFound"), "{}", gone.describe());

    let history = ok_as(&addr, "alice", &["alias", "history", &m]).await;
    contains_all(
        &history,
        &[
            "created -> v1",
            "moved v1 -> v2",
            "deleted (was v2)",
            "3 move(s)",
        ],
    );
    let then = ok_as(
        &addr,
        "alice",
        &[
            "alias", "history", &m, "--alias", "champion", "--as-of", &as_of, "--json",
        ],
    )
    .await;
    let entry = json(&then);
    assert_eq!(entry["version"], 1, "{}", then.describe());
    assert_eq!(entry["actor"], "alice", "{}", then.describe());

    // Input errors: a readable message and a non-zero exit, before or from the server.
    let bad = steward_as(&addr, "alice", &["versions", "get", "no-version-here"]).await;
    assert!(!bad.status.success(), "{}", bad.describe());
    assert!(
        bad.stderr.contains("not a model version"),
        "{}",
        bad.describe()
    );
    let missing = steward_as(&addr, "alice", &["models", "get", &unique("nope")]).await;
    assert!(!missing.status.success(), "{}", missing.describe());
    assert!(
        missing.stderr.contains("NotFound"),
        "{}",
        missing.describe()
    );
}
