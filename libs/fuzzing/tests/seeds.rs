//! The committed seed corpus of the cargo-fuzz targets (`fuzz/corpus/<target>/seed-*`):
//! every seed passes its entry point, and the seeds can be regenerated with
//!
//! ```text
//! STEWARD_WRITE_FUZZ_SEEDS=1 cargo test -p steward-fuzzing --test seeds
//! ```
//!
//! (page-token seeds are signed with `FUZZ_KEY`, request seeds are protobuf encodings, so both
//! are easier to regenerate than to edit).

use std::path::{Path, PathBuf};

use steward_fuzzing::{FUZZ_KEY, REQUEST_KINDS, join_fields, request_input};
use steward_grpc::PageTokenCodec;
use steward_proto::{deployment as dpb, monitoring as mpb, registry as rpb, tracking as tpb};
use steward_storage::audit::AuditCursor;
use steward_storage::rows::SortVal;
use steward_tracking::store::search::RunCursor;

const E: &str = "0190a1b2c3d4e5f60718293a4b5c6d7e";
const R: &str = "0190a1b2c3d4e5f60718293a4b5c6d7f";
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

fn entry_point(target: &str) -> fn(&[u8]) {
    match target {
        "filter" => steward_fuzzing::filter,
        "page_token" => steward_fuzzing::page_token,
        "resource_names" => steward_fuzzing::resource_names,
        "artifact_paths" => steward_fuzzing::artifact_paths,
        "proto_conversions" => steward_fuzzing::proto_conversions,
        other => panic!("no entry point for the corpus directory {other:?}"),
    }
}

fn text(target: &'static str, name: &str, s: &str) -> (&'static str, String, Vec<u8>) {
    (target, name.to_string(), s.as_bytes().to_vec())
}

fn page_token_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let codec = PageTokenCodec::new(FUZZ_KEY);
    let decode = |token: String| {
        let mut data = vec![0u8];
        data.extend(join_fields(&["scope", token.as_str()]));
        data
    };
    let run = RunCursor {
        keys: vec![
            Some(SortVal::Num(0.93)),
            None,
            Some(SortVal::Str("risk".into())),
        ],
        id: R.into(),
    };
    let audit = AuditCursor {
        time: 1_767_225_600_000,
        service: "registry".into(),
        seq: 42,
    };
    let mut round_trip = vec![1u8];
    round_trip.extend(join_fields(&[
        &b"scope"[..],
        &b"\x07\0\0\0\0\0\0\0run-1"[..],
        b"\x03\x01\x02\x03",
    ]));
    let mut tamper = vec![2u8];
    tamper.extend(join_fields(&[
        &b"scope"[..],
        b"\x05\0\0\0\0\0\0\0\x09\0\0\0\0\0\0\0\x11\0\0\0\0\0\0\0\x03",
    ]));
    vec![
        (
            "page_token",
            "run-cursor".into(),
            decode(codec.encode("scope", &run)),
        ),
        (
            "page_token",
            "audit-cursor".into(),
            decode(codec.encode("scope", &audit)),
        ),
        (
            "page_token",
            "id-cursor".into(),
            decode(codec.encode("scope", &"fraud-v2")),
        ),
        (
            "page_token",
            "time-id-cursor".into(),
            decode(codec.encode("scope", &(1_767_225_600_000i64, E))),
        ),
        (
            "page_token",
            "garbage".into(),
            decode("not a token!".into()),
        ),
        ("page_token", "round-trip".into(), round_trip),
        // Found by cargo-fuzz: a run cursor whose metric sort key is NaN (not equal to itself).
        (
            "page_token",
            "round-trip-nan".into(),
            b"\x01sccp~e\xff\x07\0\0\0\0\0\0\0\x01~%\xff\xfdrun-\xff1\xff\xff\xff\xff\x03\x01\x02A"
                .to_vec(),
        ),
        ("page_token", "tamper".into(), tamper),
    ]
}

fn request_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let run = format!("experiments/{E}/runs/{R}");
    let kind = |name: &str| {
        REQUEST_KINDS
            .iter()
            .position(|k| k.ends_with(name))
            .expect("a request kind")
    };
    let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let mut seeds = Vec::new();
    let mut add =
        |name: &str, bytes: Vec<u8>| seeds.push(("proto_conversions", name.to_string(), bytes));
    add(
        "log-run-data",
        request_input(
            kind(".LogRunDataRequest"),
            &tpb::LogRunDataRequest {
                run: run.clone(),
                metrics: vec![tpb::MetricPoint {
                    key: "acc".into(),
                    value: 0.9,
                    timestamp: ts(1_767_225_600),
                    step: 1,
                }],
                metric_series: vec![tpb::MetricSeries {
                    key: "loss".into(),
                    values: vec![1.0, 0.5],
                    steps: vec![1, 2],
                    timestamps_unix_ms: vec![],
                }],
                params: vec![tpb::Param {
                    key: "lr".into(),
                    value: "0.01".into(),
                }],
                tags: vec![tpb::Tag {
                    key: "team".into(),
                    value: "risk".into(),
                }],
                request_id: String::new(),
            },
        ),
    );
    add(
        "log-run-inputs",
        request_input(
            kind(".LogRunInputsRequest"),
            &tpb::LogRunInputsRequest {
                run: run.clone(),
                inputs: vec![
                    tpb::DatasetInput {
                        context: "training".into(),
                        dataset: Some(tpb::Dataset {
                            name: "transactions".into(),
                            digest: format!("sha256:{SHA}"),
                            schema_json: "{\"a\":\"int\"}".into(),
                            profile: Some(tpb::DatasetProfile {
                                num_rows: 3,
                                features: vec![tpb::FeatureProfile {
                                    name: "a".into(),
                                    bin_edges: vec![0.0, 1.0],
                                    bin_counts: vec![3],
                                    ..Default::default()
                                }],
                            }),
                            ..Default::default()
                        }),
                    },
                    tpb::DatasetInput {
                        context: "validation".into(),
                        dataset: Some(tpb::Dataset {
                            version: "datasets/transactions/versions/2".into(),
                            ..Default::default()
                        }),
                    },
                ],
                request_id: String::new(),
            },
        ),
    );
    add(
        "create-run",
        request_input(
            kind(".CreateRunRequest"),
            &tpb::CreateRunRequest {
                parent: format!("experiments/{E}"),
                run: Some(tpb::Run {
                    run_name: "baseline".into(),
                    status: 1,
                    start_time: ts(1_767_225_600),
                    parent_run: run.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ),
    );
    add(
        "update-run",
        request_input(
            kind(".UpdateRunRequest"),
            &tpb::UpdateRunRequest {
                run: Some(tpb::Run {
                    name: run.clone(),
                    status: 3,
                    end_time: ts(1_767_225_700),
                    run_name: "done".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into(), "end_time".into(), "run_name".into()],
                }),
                request_id: String::new(),
            },
        ),
    );
    add(
        "create-experiment",
        request_input(
            kind(".CreateExperimentRequest"),
            &tpb::CreateExperimentRequest {
                experiment: Some(tpb::Experiment {
                    display_name: "fraud".into(),
                    description: "d".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ),
    );
    add(
        "search-runs",
        request_input(
            kind(".SearchRunsRequest"),
            &tpb::SearchRunsRequest {
                experiments: vec![format!("experiments/{E}")],
                filter: "metrics.acc > 0.9 AND params.lr = '0.01'".into(),
                order_by: "metrics.acc desc".into(),
                page_size: 10,
                page_token: String::new(),
                show_deleted: false,
            },
        ),
    );
    add(
        "create-model-version",
        request_input(
            kind(".CreateModelVersionRequest"),
            &rpb::CreateModelVersionRequest {
                parent: "registeredModels/fraud".into(),
                model_version: Some(rpb::ModelVersion {
                    source_run: run.clone(),
                    artifact_path: "model/".into(),
                    format: "ONNX".into(),
                    signature: Some(rpb::ModelSignature {
                        inputs: vec![rpb::TensorSpec {
                            name: "x".into(),
                            dtype: "float32".into(),
                            shape: vec![-1, 4],
                        }],
                        outputs: vec![rpb::TensorSpec {
                            name: "y".into(),
                            dtype: "float32".into(),
                            shape: vec![-1],
                        }],
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ),
    );
    add(
        "create-model-version-external",
        request_input(
            kind(".CreateModelVersionRequest"),
            &rpb::CreateModelVersionRequest {
                parent: "registeredModels/fraud".into(),
                model_version: Some(rpb::ModelVersion {
                    source_uri: "s3://models/fraud/7".into(),
                    content_digest: format!("sha256:{SHA}"),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ),
    );
    add(
        "create-registered-model",
        request_input(
            kind(".CreateRegisteredModelRequest"),
            &rpb::CreateRegisteredModelRequest {
                registered_model: Some(rpb::RegisteredModel {
                    name: "fraud".into(),
                    description: "d".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ),
    );
    add(
        "set-model-policy",
        request_input(
            kind(".SetModelPolicyRequest"),
            &rpb::SetModelPolicyRequest {
                policy: Some(rpb::ModelPolicy {
                    registered_model: "registeredModels/fraud".into(),
                    rules: vec![rpb::PolicyRule {
                        name: "prod-quality".into(),
                        alias: "production".into(),
                        require_approved: true,
                        metrics: vec![rpb::MetricCondition {
                            metric: "acc".into(),
                            op: ">=".into(),
                            value: 0.9,
                        }],
                        required_tags: vec!["owner".into()],
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ),
    );
    add(
        "review-model-version",
        request_input(
            kind(".ReviewModelVersionRequest"),
            &rpb::ReviewModelVersionRequest {
                name: "registeredModels/fraud@production".into(),
                decision: 2,
                comment: "ok".into(),
                ..Default::default()
            },
        ),
    );
    let v = |name: &str, weight_bp| dpb::Variant {
        name: name.into(),
        weight_bp,
        ..Default::default()
    };
    add(
        "create-deployment",
        request_input(
            kind(".CreateDeploymentRequest"),
            &dpb::CreateDeploymentRequest {
                deployment: Some(dpb::Deployment {
                    name: "deployments/fraud-prod".into(),
                    registered_model: "registeredModels/fraud".into(),
                    environment: "environments/production".into(),
                    ..Default::default()
                }),
                variants: vec![v("stable", 9_000), v("canary", 1_000)],
                shadow: Some(v("shadow", 0)),
                request_id: String::new(),
            },
        ),
    );
    let step = |weight_bp, seconds| dpb::RolloutStep {
        weight_bp,
        bake: Some(prost_types::Duration { seconds, nanos: 0 }),
    };
    add(
        "start-rollout",
        request_input(
            kind(".StartRolloutRequest"),
            &dpb::StartRolloutRequest {
                deployment: "deployments/fraud-prod".into(),
                model_version: "registeredModels/fraud/versions/3".into(),
                steps: vec![step(500, 600), step(2_500, 600), step(10_000, 0)],
                guardrails: Some(dpb::Guardrails {
                    max_error_rate: 0.01,
                    max_p99_latency_ms: 250.0,
                    min_requests: 100,
                }),
                request_id: String::new(),
            },
        ),
    );
    let num = |x: f64| mpb::Value {
        kind: Some(mpb::value::Kind::Number(x)),
    };
    add(
        "ingest-predictions",
        request_input(
            kind(".IngestPredictionsRequest"),
            &mpb::IngestPredictionsRequest {
                monitor: "monitors/fraud".into(),
                records: vec![mpb::PredictionRecord {
                    request_id: "r1".into(),
                    time: ts(1_767_225_600),
                    features: [("amount".to_string(), num(12.5))].into(),
                    prediction: Some(mpb::Value {
                        kind: Some(mpb::value::Kind::Category("1".into())),
                    }),
                    ..Default::default()
                }],
                columns: Some(mpb::PredictionColumns {
                    request_ids: vec!["r2".into(), "r3".into()],
                    features: vec![
                        mpb::Column {
                            name: "amount".into(),
                            kind: 1,
                            numbers: vec![1.0, f64::NAN],
                            categories: vec![],
                        },
                        mpb::Column {
                            name: "country".into(),
                            kind: 2,
                            numbers: vec![],
                            categories: vec!["fr".into(), String::new()],
                        },
                    ],
                    prediction: Some(mpb::Column {
                        name: "score".into(),
                        kind: 1,
                        numbers: vec![0.1, 0.9],
                        categories: vec![],
                    }),
                    ..Default::default()
                }),
            },
        ),
    );
    add(
        "create-monitor",
        request_input(
            kind(".CreateMonitorRequest"),
            &mpb::CreateMonitorRequest {
                monitor_id: "fraud".into(),
                monitor: Some(mpb::Monitor {
                    deployment: "deployments/fraud-prod".into(),
                    baseline: "baselines/fraud-v3".into(),
                    window: Some(mpb::Window {
                        size: Some(mpb::window::Size::Duration(prost_types::Duration {
                            seconds: 3_600,
                            nanos: 0,
                        })),
                    }),
                    features: vec![mpb::FeatureSpec {
                        name: "amount".into(),
                        method: 1,
                        threshold: 0.05,
                        ..Default::default()
                    }],
                    task: 1,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ),
    );
    add(
        "create-baseline",
        request_input(
            kind(".CreateBaselineRequest"),
            &mpb::CreateBaselineRequest {
                baseline_id: "fraud-v3".into(),
                model_version: "registeredModels/fraud/versions/3".into(),
                source: Some(mpb::create_baseline_request::Source::Sample(
                    mpb::ReferenceSample {
                        columns: vec![
                            mpb::Column {
                                name: "amount".into(),
                                kind: 1,
                                numbers: vec![1.0, 2.0, 3.0],
                                categories: vec![],
                            },
                            mpb::Column {
                                name: "country".into(),
                                kind: 2,
                                numbers: vec![],
                                categories: vec!["fr".into(), "de".into(), "1".into()],
                            },
                        ],
                        prediction_column: "amount".into(),
                    },
                )),
                request_id: String::new(),
            },
        ),
    );
    add(
        "create-alert-rule",
        request_input(
            kind(".CreateAlertRuleRequest"),
            &mpb::CreateAlertRuleRequest {
                monitor: "monitors/fraud".into(),
                rule_id: "drift".into(),
                rule: Some(mpb::AlertRule {
                    metric: "drift.share".into(),
                    comparator: 1,
                    threshold: 0.5,
                    window: Some(prost_types::Duration {
                        seconds: 3_600,
                        nanos: 0,
                    }),
                    hold: Some(prost_types::Duration {
                        seconds: 300,
                        nanos: 0,
                    }),
                    severity: "critical".into(),
                    channels: vec!["channels/oncall".into()],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ),
    );
    seeds
}

/// Every seed: (target, name, bytes).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut s = vec![
        text(
            "filter",
            "runs",
            "metrics.acc > 0.9 AND params.lr = '0.01' OR NOT (tags.team LIKE 'ri%' AND attributes.status IN ('FINISHED','FAILED'))",
        ),
        text(
            "filter",
            "times-datasets",
            "attributes.start_time >= '2026-01-01T00:00:00Z' AND end_time < 1767225600000 AND datasets.digest IS NOT NULL",
        ),
        text(
            "filter",
            "quoted-keys",
            "metrics.`val loss` <= -1e-3 AND tags.\"a b\" ILIKE '%x%'",
        ),
        text(
            "filter",
            "models",
            "latest_version.approval = 'APPROVED' AND name ILIKE '%fraud%' AND create_time > 0",
        ),
        text(
            "filter",
            "versions",
            "version >= 3 AND format = 'onnx' AND tags.owner IS NULL",
        ),
        text(
            "filter",
            "order-by",
            "metrics.acc desc, attributes.start_time ASC, name",
        ),
        text(
            "filter",
            "simple",
            "model_version = \"registeredModels/fraud/versions/3\" AND deployment = \"fraud-prod\"",
        ),
        text(
            "resource_names",
            "run",
            &format!("experiments/{E}/runs/{R}"),
        ),
        text(
            "resource_names",
            "version",
            "registeredModels/fraud/versions/3",
        ),
        text(
            "resource_names",
            "alias",
            "registeredModels/fraud-v2.1@production",
        ),
        text(
            "resource_names",
            "dataset-version",
            "datasets/transactions/versions/latest",
        ),
        text("resource_names", "deployment", "deployments/fraud-prod"),
        text("resource_names", "monitor", "monitors/fraud"),
        (
            "artifact_paths",
            "model".into(),
            join_fields(&["model/model.onnx", E, R, SHA]),
        ),
        text(
            "artifact_paths",
            "environment",
            "environment/requirements.txt",
        ),
        text("artifact_paths", "prefix", "model/"),
        text("artifact_paths", "unicode", "données/モデル (1).onnx"),
        text("artifact_paths", "traversal", "model/../../etc/passwd"),
        text("artifact_paths", "encoded", "%2e%2e/x"),
    ];
    s.extend(page_token_seeds());
    s.extend(request_seeds());
    s
}

#[test]
fn committed_seeds_pass_their_entry_points() {
    let dirs = std::fs::read_dir(corpus()).expect("fuzz/corpus");
    let mut seen = 0;
    for dir in dirs {
        let dir = dir.unwrap().path();
        let run = entry_point(dir.file_name().unwrap().to_str().unwrap());
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("seed-")
            {
                run(&std::fs::read(&f).unwrap());
                seen += 1;
            }
        }
    }
    assert!(
        seen >= seeds().len(),
        "{seen} seeds committed, {} defined",
        seeds().len()
    );
}

#[test]
fn defined_seeds_pass_their_entry_points() {
    for (target, _, bytes) in seeds() {
        entry_point(target)(&bytes);
    }
}

/// The committed corpus holds exactly these seeds; with `STEWARD_WRITE_FUZZ_SEEDS=1` the test
/// writes them instead (after changing a seed).
#[test]
fn committed_corpus_matches_the_seeds() {
    let write = std::env::var_os("STEWARD_WRITE_FUZZ_SEEDS").is_some();
    for (target, name, bytes) in seeds() {
        let dir = corpus().join(target);
        let file = dir.join(format!("seed-{name}"));
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &bytes).unwrap();
        } else {
            let committed = std::fs::read(&file).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (regenerate with STEWARD_WRITE_FUZZ_SEEDS=1)",
                    file.display()
                )
            });
            assert!(
                committed == bytes,
                "{} differs from its seed",
                file.display()
            );
        }
    }
}
