//! Backends for tests: the embedded ones, or the real ones the `STEWARD_TEST_*` variables ask
//! for (see TESTING.md). Every call gets its own database, bucket and Redis key prefix.

use std::sync::Arc;

use steward_artifacts::{ObjectStoreConfig, S3Config};
use steward_events::{EventBus, InProcessBus, RedisBus};
use steward_grpc::PageTokenCodec;
use steward_storage::testing::TestDb;

use crate::Backends;

/// A non-empty environment variable.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Whether any real backend is asked for; if not, says so once on stderr.
pub fn real_tier_asked() -> bool {
    let asked = env("STEWARD_TEST_DATABASE_URL").is_some()
        || env("STEWARD_TEST_S3_ENDPOINT").is_some()
        || env("STEWARD_TEST_REDIS_URL").is_some();
    if !asked {
        eprintln!(
            "real-backend tier not asked for (set STEWARD_TEST_DATABASE_URL, STEWARD_TEST_S3_ENDPOINT, STEWARD_TEST_REDIS_URL)"
        );
    }
    asked
}

/// Test backends and what they are.
pub struct TestBackends {
    /// The backends.
    pub backends: Backends,
    /// The database (drop it with [`TestDb::cleanup`]).
    pub db: TestDb,
    /// e.g. `sqlite+local+in-process` or `postgres+s3+redis`.
    pub label: String,
    /// Whether artifacts are in S3.
    pub s3: bool,
    /// The Redis URL and key prefix in use, if any.
    pub redis: Option<(String, String)>,
}

/// Opens the embedded backends (`real == false`) or every configured real one. A real backend
/// that is asked for but unreachable panics: the run fails, it does not skip.
pub async fn open(real: bool, dir: &std::path::Path) -> TestBackends {
    let mut label = Vec::new();
    let db = if real && env("STEWARD_TEST_DATABASE_URL").is_some() {
        label.push("postgres");
        TestDb::postgres().await.expect("postgres asked for")
    } else {
        label.push("sqlite");
        TestDb::sqlite().await
    };
    let s3_endpoint = if real {
        env("STEWARD_TEST_S3_ENDPOINT")
    } else {
        None
    };
    let store_cfg = match &s3_endpoint {
        Some(endpoint) => {
            label.push("s3");
            ObjectStoreConfig::S3(S3Config {
                bucket: format!(
                    "steward-test-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..16]
                ),
                prefix: "pfx".into(),
                region: "us-east-1".into(),
                endpoint: Some(endpoint.clone()),
                path_style: true,
                access_key_id: Some("test".into()),
                secret_access_key: Some("test".into()),
                create_bucket: true,
            })
        }
        None => {
            label.push("local");
            ObjectStoreConfig::Local {
                root: dir.join("artifacts"),
            }
        }
    };
    let objects = steward_artifacts::open(&store_cfg)
        .await
        .expect("object store");
    objects.check().await.expect("object store reachable");
    let redis_url = if real {
        env("STEWARD_TEST_REDIS_URL")
    } else {
        None
    };
    let (bus, redis): (Arc<dyn EventBus>, _) = match redis_url {
        Some(url) => {
            label.push("redis");
            let prefix = format!("steward-test-{}:", uuid::Uuid::new_v4().simple());
            (
                Arc::new(
                    RedisBus::connect(&url, &prefix)
                        .await
                        .expect("redis asked for"),
                ),
                Some((url, prefix)),
            )
        }
        None => {
            label.push("in-process");
            (Arc::new(InProcessBus::new()), None)
        }
    };
    TestBackends {
        backends: Backends {
            db: db.db.clone(),
            objects,
            bus,
            tokens: Arc::new(PageTokenCodec::random()),
        },
        db,
        label: label.join("+"),
        s3: s3_endpoint.is_some(),
        redis,
    }
}

/// Asserts a gRPC error's code, that it carries `ErrorInfo`, and (with `field`) that its
/// `BadRequest` names the field.
#[track_caller]
pub fn assert_bad(status: tonic::Status, code: tonic::Code, field: Option<&str>) {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.get_details_error_info().is_some(),
        "every error carries ErrorInfo: {status:?}"
    );
    if let Some(f) = field {
        let br = status
            .get_details_bad_request()
            .unwrap_or_else(|| panic!("no BadRequest in {status:?}"));
        assert!(
            br.field_violations.iter().any(|v| v.field == f),
            "expected a violation on {f}, got {:?}",
            br.field_violations
        );
    }
}

/// The `ErrorInfo` reason of a status (empty without one).
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// Installs tracing once per test process as `service` (warnings only), so spans carry trace
/// ids as in the binaries.
pub fn telemetry(service: &'static str) {
    static ONCE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let mut cfg = steward_telemetry::TelemetryConfig::new(service);
        cfg.log_filter = "warn".into();
        std::mem::forget(steward_telemetry::init(&cfg).expect("telemetry"));
    });
}

/// Registers model `model` with `n` READY versions of `model_bytes` (an ONNX file), each from
/// its own run (dataset "transactions", git commit `c0ffee{i}`), through the tracking and
/// registry APIs on `channel` as actor "alice".
pub async fn onnx_model_with_versions(
    channel: tonic::transport::Channel,
    model: &str,
    n: usize,
    model_bytes: &'static [u8],
) {
    use steward_proto::registry as rpb;
    use steward_proto::tracking as tpb;
    let alice = |mut r: tonic::Request<()>| {
        r.metadata_mut().insert(
            "x-steward-actor",
            tonic::metadata::MetadataValue::from_static("alice"),
        );
        Ok(r)
    };
    let mut reg = rpb::registry_service_client::RegistryServiceClient::with_interceptor(
        channel.clone(),
        alice,
    );
    let mut tracking =
        tpb::tracking_service_client::TrackingServiceClient::with_interceptor(channel, alice);
    reg.create_registered_model(rpb::CreateRegisteredModelRequest {
        registered_model: Some(rpb::RegisteredModel {
            name: model.to_string(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("create model");
    let exp = tracking
        .create_experiment(tpb::CreateExperimentRequest {
            experiment: Some(tpb::Experiment {
                display_name: format!("e-{model}"),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create experiment")
        .into_inner();
    for i in 0..n {
        let run = tracking
            .create_run(tpb::CreateRunRequest {
                parent: exp.name.clone(),
                run: Some(tpb::Run {
                    run_name: format!("train-{i}"),
                    tags: [(
                        "steward.source.git_commit".to_string(),
                        format!("c0ffee{i}"),
                    )]
                    .into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create run")
            .into_inner();
        tracking
            .log_run_inputs(tpb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![tpb::DatasetInput {
                    dataset: Some(tpb::Dataset {
                        name: "transactions".into(),
                        digest: format!("sha256:{}", "e".repeat(64)),
                        ..Default::default()
                    }),
                    context: "training".into(),
                }],
                request_id: String::new(),
            })
            .await
            .expect("log inputs");
        let msgs = vec![
            tpb::UploadArtifactRequest {
                part: Some(tpb::upload_artifact_request::Part::Header(
                    tpb::ArtifactHeader {
                        run: run.name.clone(),
                        path: "model/model.onnx".into(),
                        ..Default::default()
                    },
                )),
            },
            tpb::UploadArtifactRequest {
                part: Some(tpb::upload_artifact_request::Part::Chunk(
                    model_bytes.to_vec().into(),
                )),
            },
        ];
        tracking
            .upload_artifact(futures::stream::iter(msgs))
            .await
            .expect("upload model");
        reg.create_model_version(rpb::CreateModelVersionRequest {
            parent: format!("registeredModels/{model}"),
            model_version: Some(rpb::ModelVersion {
                source_run: run.name,
                artifact_path: "model".into(),
                format: "onnx".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create version");
    }
}
