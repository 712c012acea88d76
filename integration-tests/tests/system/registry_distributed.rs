//! Distributed mode with the registry: `steward-tracking` and two `steward-registry` replicas as
//! separate processes on Postgres (+ Redis + S3 when asked for). A version is created through
//! one registry replica from a run that lives in the tracking process (checked over gRPC), the
//! alias is moved through the other, each replica resolves it (the mover at once, the other
//! within 1 s), and the audit API of either replica lists both services' records and verifies
//! the chains.

use std::time::{Duration, Instant};

use steward_proto::audit as apb;
use steward_proto::audit::audit_service_client::AuditServiceClient;
use steward_proto::deployment as dpb;
use steward_proto::deployment::deployment_service_client::DeploymentServiceClient;
use steward_proto::registry as rpb;
use steward_proto::registry::registry_service_client::RegistryServiceClient;
use steward_storage::testing::TestDb;
use tonic::transport::Channel;

use crate::support::binaries;
use crate::support::env;
use crate::support::process::command;
use crate::support::server::{Server, free_addr};
use crate::support::tracking::{self as t, unique};

async fn start(
    bin: &str,
    name: &str,
    common: &[(String, String)],
    extra: &[(&str, String)],
) -> Server {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap().keep();
    let mut cmd = command(binaries::path(bin));
    cmd.args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(dir)
        .envs(common.iter().map(|(k, v)| (k, v)))
        .envs(extra.iter().map(|(k, v)| (*k, v)));
    Server::start(name, cmd, addr).await
}

async fn resolve(c: &mut RegistryServiceClient<Channel>, name: &str) -> i64 {
    c.get_model_version(rpb::GetModelVersionRequest { name: name.into() })
        .await
        .expect("resolve")
        .into_inner()
        .version
}

#[tokio::test]
async fn registry_replicas_over_a_separate_tracking_service() {
    let Some(_) = env("STEWARD_TEST_DATABASE_URL") else {
        eprintln!("registry replicas need a shared database; set STEWARD_TEST_DATABASE_URL");
        return;
    };
    let db = TestDb::postgres_with(false)
        .await
        .expect("STEWARD_TEST_DATABASE_URL is set");
    let mut common = vec![
        ("STEWARD_DATABASE_URL".to_string(), db.url.clone()),
        ("STEWARD_PAGE_TOKEN_KEY".to_string(), "k".repeat(64)),
    ];
    if let Some(url) = env("STEWARD_TEST_REDIS_URL") {
        common.push(("STEWARD_REDIS_URL".into(), url));
        common.push((
            "STEWARD_REDIS_KEY_PREFIX".into(),
            format!("{}:", unique("steward-reg")),
        ));
    }
    let tracking = start(binaries::STEWARD_TRACKING, "tracking", &common, &[]).await;
    let turl = tracking.url();
    let peer = [("STEWARD_TRACKING_URL", turl.clone())];
    let (ra, rb) = tokio::join!(
        start(binaries::STEWARD_REGISTRY, "registry A", &common, &peer),
        start(binaries::STEWARD_REGISTRY, "registry B", &common, &peer),
    );
    let mut tc = tracking.tracking();
    let exp = t::create_experiment(&mut tc, &unique("reg")).await;
    let run = t::create_run(&mut tc, &exp.name, "train").await;
    t::log(&mut tc, &run.name, &[("auc", 0.91, 1)], &[("lr", "0.1")]).await;
    let art = t::upload(&mut tc, &run.name, "model/model.onnx", b"onnx").await;

    let mut a = RegistryServiceClient::new(ra.channel.clone());
    let mut b = RegistryServiceClient::new(rb.channel.clone());
    a.create_registered_model(rpb::CreateRegisteredModelRequest {
        registered_model: Some(rpb::RegisteredModel {
            name: "fraud".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("create model through A");
    for _ in 0..2 {
        let v = b
            .create_model_version(rpb::CreateModelVersionRequest {
                parent: "registeredModels/fraud".into(),
                model_version: Some(rpb::ModelVersion {
                    source_run: run.name.clone(),
                    artifact_path: "model".into(),
                    format: "onnx".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("B checks the run against the tracking process")
            .into_inner();
        assert!(!v.content_digest.is_empty());
        assert!(v.artifact_uri.ends_with("/model"));
    }
    let lineage = a
        .get_lineage(rpb::GetLineageRequest {
            name: "registeredModels/fraud/versions/1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lineage.metrics["auc"], 0.91);
    assert_eq!(lineage.params["lr"], "0.1");
    let _ = art;

    let name = "registeredModels/fraud@production";
    let set = |v: i64| rpb::SetModelVersionAliasRequest {
        registered_model: "registeredModels/fraud".into(),
        alias: "production".into(),
        version: v,
        request_id: String::new(),
    };
    a.set_model_version_alias(set(1)).await.unwrap();
    assert_eq!(resolve(&mut a, name).await, 1);
    assert_eq!(resolve(&mut b, name).await, 1);
    b.set_model_version_alias(set(2)).await.unwrap();
    assert_eq!(
        resolve(&mut b, name).await,
        2,
        "the mover resolves the new version at once"
    );
    let t0 = Instant::now();
    while resolve(&mut a, name).await != 2 {
        assert!(
            t0.elapsed() < Duration::from_millis(1600),
            "replica A still resolves the old version"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut audit = AuditServiceClient::new(rb.channel.clone());
    let all = audit
        .list_audit_events(apb::ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let services: std::collections::BTreeSet<&str> =
        all.events.iter().map(|e| e.service.as_str()).collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        ["registry", "tracking"]
    );
    let v = audit
        .verify_audit_chain(apb::VerifyAuditChainRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");

    // The deployment service as its own process: deploy the production alias (version 2) in
    // staging, route a request, read its decision back.
    let dp = start(
        binaries::STEWARD_DEPLOYMENT,
        "deployment",
        &common,
        &[
            ("STEWARD_TRACKING_URL", turl.clone()),
            ("STEWARD_REGISTRY_URL", rb.url()),
        ],
    )
    .await;
    let mut d = DeploymentServiceClient::new(dp.channel.clone());
    let dep = d
        .create_deployment(dpb::CreateDeploymentRequest {
            deployment: Some(dpb::Deployment {
                registered_model: "registeredModels/fraud".into(),
                environment: "environments/staging".into(),
                ..Default::default()
            }),
            variants: vec![dpb::Variant {
                name: "main".into(),
                model_version: "registeredModels/fraud@production".into(),
                weight_bp: 10_000,
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("the deployment process resolves the alias through the registry process")
        .into_inner();
    assert_eq!(dep.current_revision.unwrap().variants[0].version, 2);
    let routed = d
        .route(dpb::RouteRequest {
            deployment: dep.name.clone(),
            routing_key: "user-1".into(),
            request_id: "sys-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(routed.model_version, "registeredModels/fraud/versions/2");
    let decision = d
        .get_decision(dpb::GetDecisionRequest {
            request_id: "sys-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision.variant, "main");
    drop((dp, ra, rb, tracking));
    db.cleanup().await;
}
