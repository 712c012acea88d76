//! The deployment commands of the `steward` CLI (`environments`, `deploy`, `deploy --canary`,
//! `rollout status|promote|rollback`, `deployments list`, `ab results`, `explain`) as a person
//! runs them, against a running `steward up`, on a model registered through the CLI from runs
//! that hold the shipped demo ONNX model; requests are routed through the gRPC API.

use steward_proto::deployment as dpb;
use steward_proto::deployment::deployment_service_client::DeploymentServiceClient;
use steward_proto::tracking as pb;

use crate::support::cli::{contains_all, fails_as, json, ok_as};
use crate::support::server::Server;
use crate::support::tracking::{self as t, unique};

/// The demo model the deployment service ships (`steward_deployment::infer::DEMO_MODEL`).
const DEMO_MODEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../services/deployment/models/fraud_demo.onnx"
));
/// The dataset digest logged to the training runs.
const TRAIN_DIGEST: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";
/// The commit tag of training run `i`.
fn commit(i: usize) -> String {
    format!("{i}f2a9c1d0b7e6a5f4c3b2a1908f7e6d5c4b3a291")
}

/// A training run with the code version, the training data and the demo model under `model/`.
async fn training_run(c: &mut t::Client, experiment: &str, i: usize) -> String {
    let run = t::create_run(c, experiment, &format!("train-{i}"))
        .await
        .name;
    c.log_run_data(pb::LogRunDataRequest {
        run: run.clone(),
        tags: vec![pb::Tag {
            key: "steward.source.git_commit".into(),
            value: commit(i),
        }],
        ..Default::default()
    })
    .await
    .unwrap_or_else(|s| panic!("LogRunData {run}: {s:?}"));
    c.log_run_inputs(pb::LogRunInputsRequest {
        run: run.clone(),
        inputs: vec![pb::DatasetInput {
            dataset: Some(pb::Dataset {
                name: "transactions".into(),
                digest: TRAIN_DIGEST.into(),
                ..Default::default()
            }),
            context: "training".into(),
        }],
        request_id: String::new(),
    })
    .await
    .unwrap_or_else(|s| panic!("LogRunInputs {run}: {s:?}"));
    t::upload(c, &run, "model/model.onnx", DEMO_MODEL).await;
    run
}

/// Routes `key` on `dep` with request id `id`.
async fn route(
    d: &mut DeploymentServiceClient<tonic::transport::Channel>,
    dep: &str,
    key: &str,
    id: &str,
) -> dpb::RouteResponse {
    d.route(dpb::RouteRequest {
        deployment: dep.into(),
        routing_key: key.into(),
        request_id: id.into(),
    })
    .await
    .unwrap_or_else(|s| panic!("Route {key} on {dep}: {s:?}"))
    .into_inner()
}

#[tokio::test]
async fn deployment_cli_deploys_rolls_out_tests_and_explains_against_steward_up() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::steward_up(data.path(), &[]).await;
    let addr = server.url();
    let addr = addr.as_str();

    // Two training runs (tracking API); the model and its versions through the CLI, v1
    // approved by bob.
    let mut c = server.tracking();
    let exp = t::create_experiment(&mut c, &unique("deployment-cli")).await;
    let run1 = training_run(&mut c, &exp.name, 1).await;
    let run2 = training_run(&mut c, &exp.name, 2).await;
    let m = unique("fraud");
    ok_as(addr, "alice", &["models", "create", &m]).await;
    for run in [&run1, &run2] {
        ok_as(
            addr,
            "alice",
            &[
                "versions",
                "create",
                &m,
                "--run",
                run,
                "--artifact-path",
                "model",
                "--format",
                "onnx",
            ],
        )
        .await;
    }
    ok_as(addr, "bob", &["approve", &format!("{m}/1")]).await;

    // Environments, in promotion order, with production's policy.
    let envs = ok_as(addr, "alice", &["environments", "list"]).await;
    contains_all(
        &envs,
        &[
            "environments/staging",
            "environments/production",
            "approved versions only; deployed in staging first",
            "2 environment(s)",
        ],
    );

    // Deploy v1 to staging: a new deployment, ready to serve the ONNX model.
    let out = ok_as(
        addr,
        "alice",
        &["deploy", &format!("{m}/1"), "--env", "staging"],
    )
    .await;
    let dep = format!("deployments/{m}-staging");
    let short = format!("{m}-staging");
    contains_all(
        &out,
        &[
            &format!("created {dep} in staging: revision 1"),
            "main 100% (v1)",
            "serving: ready",
        ],
    );
    let listed = ok_as(addr, "alice", &["deployments", "list", "--model", &m]).await;
    contains_all(&listed, &[&dep, "main 100% (v1)", "1 deployment(s)"]);
    let listed = ok_as(
        addr,
        "alice",
        &[
            "deployments",
            "list",
            "--model",
            &m,
            "--env",
            "staging",
            "--json",
        ],
    )
    .await;
    let d = json(&listed);
    assert_eq!(d["current_revision"]["number"], 1, "{}", listed.describe());
    assert_eq!(d["current_revision"]["creator"], "alice");

    // A request routed through gRPC, explained through the CLI back to approval, data, code
    // and the revision that routed it.
    let mut grpc = DeploymentServiceClient::new(server.channel.clone());
    let rid = unique("req");
    let r = route(&mut grpc, &dep, "user-42", &rid).await;
    assert_eq!(
        (r.variant.as_str(), r.model_version.as_str()),
        ("main", format!("registeredModels/{m}/versions/1").as_str())
    );
    let explained = ok_as(addr, "carol", &["explain", &rid]).await;
    contains_all(
        &explained,
        &[
            &rid,
            &dep,
            "route variant \"main\" (revision 1), routing key \"user-42\"",
            &format!("registeredModels/{m}/versions/1"),
            "APPROVED by bob",
            &run1,
            TRAIN_DIGEST,
            &commit(1),
            "1 applied by alice",
            "main 100% (v1)",
        ],
    );
    let x = json(&ok_as(addr, "carol", &["explain", &rid, "--json"]).await);
    assert_eq!(x["approved_by"], "bob");
    assert_eq!(x["decision"]["routing_key"], "user-42");
    assert_eq!(x["datasets"][0]["digest"], TRAIN_DIGEST);
    fails_as(addr, "carol", &["explain", &unique("nope")], "NotFound").await;

    // A canary rollout of v2 with a long bake: it waits for a person.
    let started = ok_as(
        addr,
        "alice",
        &[
            "deploy",
            &format!("{m}/2"),
            "--env",
            "staging",
            "--canary",
            "--steps",
            "10,50,100",
            "--bake",
            "10m",
            "--max-error-rate",
            "0.05",
            "--min-requests",
            "5",
        ],
    )
    .await;
    contains_all(
        &started,
        &[
            &format!("started {dep}/rollouts/"),
            &format!("registeredModels/{m}/versions/2 as canary at 10% (step 1 of 3)"),
            "10% -> 50% -> 100% (each baking 10m)",
            "max error rate 0.05, min requests 5",
        ],
    );
    let status = ok_as(addr, "alice", &["rollout", "status", &short]).await;
    contains_all(
        &status,
        &[
            "RUNNING",
            "1 of 3: canary 10%",
            "10% for 10m -> 50% for 10m -> 100% for 10m",
            "canary 10% (v2), main 90% (v1)",
            "started",
        ],
    );
    let promoted = ok_as(
        addr,
        "alice",
        &["rollout", "promote", &dep, "--reason", "looks fine"],
    )
    .await;
    contains_all(
        &promoted,
        &[
            "now at step 2 of 3: canary 50%",
            "canary 50% (v2), main 50% (v1)",
        ],
    );
    let rolled = ok_as(
        addr,
        "bob",
        &[
            "rollout",
            "rollback",
            &short,
            "--reason",
            "latency regression",
        ],
    )
    .await;
    contains_all(
        &rolled,
        &[
            "ROLLED_BACK",
            "back on the split of revision 1",
            "latency regression",
            "main 100% (v1)",
        ],
    );
    let status = json(&ok_as(addr, "alice", &["rollout", "status", &short, "--json"]).await);
    assert_eq!(status["rollout"]["state"], "ROLLED_BACK");
    let kinds: Vec<&str> = status["rollout"]["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["started", "promoted", "rolled_back"], "{status}");
    assert_eq!(status["rollout"]["history"][2]["actor"], "bob");
    assert_eq!(status["rollout"]["steps"][0]["bake"], "600s");
    fails_as(
        addr,
        "alice",
        &["rollout", "promote", &short],
        "no rollout is running",
    )
    .await;
    fails_as(
        addr,
        "alice",
        &[
            "deploy",
            &format!("{m}/1"),
            "--env",
            "production",
            "--canary",
        ],
        "no deployment",
    )
    .await;

    // v2 beside v1 with --weight: a second variant taking 20% from main.
    let split = ok_as(
        addr,
        "alice",
        &[
            "deploy",
            &format!("{m}/2"),
            "--env",
            "staging",
            "--variant",
            "b",
            "--weight",
            "2000",
        ],
    )
    .await;
    contains_all(
        &split,
        &[
            &format!("to {dep}"),
            "main 80% (v1), b 20% (v2)",
            "serving: ready",
        ],
    );

    // An A/B test over main and b (gRPC): routed requests and their outcomes, read back
    // through the CLI.
    let test = grpc
        .create_ab_test(dpb::CreateAbTestRequest {
            deployment: dep.clone(),
            ab_test: Some(dpb::AbTest {
                variants: vec!["main".into(), "b".into()],
                metric: "converted".into(),
                metric_kind: dpb::MetricKind::Binary as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("CreateAbTest")
        .into_inner();
    for i in 0..200 {
        let r = route(
            &mut grpc,
            &dep,
            &format!("ab-user-{i}"),
            &format!("{rid}-ab{i}"),
        )
        .await;
        let converted = if r.variant == "main" {
            i % 10 == 0
        } else {
            i % 10 < 4
        };
        grpc.report_outcome(dpb::ReportOutcomeRequest {
            ab_test: test.name.clone(),
            request_id: r.request_id,
            value: f64::from(u8::from(converted)),
        })
        .await
        .expect("ReportOutcome");
    }
    let results = ok_as(addr, "alice", &["ab", "results", &short]).await;
    contains_all(
        &results,
        &[
            &test.name,
            "metric converted (BINARY)",
            "control main",
            "against the control",
            "95% CI",
            "two_proportion_z",
            "sample ratio",
        ],
    );
    let r = json(&ok_as(addr, "alice", &["ab", "results", &test.name, "--json"]).await);
    let assigned: i64 = r["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .filter_map(|v| v["assigned"].as_i64())
        .sum();
    assert_eq!(assigned, 200, "{r}");
    assert_eq!(r["comparisons"][0]["variant"], "b");
}
