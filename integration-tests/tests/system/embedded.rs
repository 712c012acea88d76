//! `steward up`, the embedded mode a new user runs first: health, reflection (v1 and v1alpha),
//! the tracking API, durability across a crash, and a clean exit on SIGTERM.

use std::time::Duration;

use prost::Message;
use steward_proto::tracking as pb;
use tonic::transport::Channel;

use crate::support::server::Server;
use crate::support::tracking::{self as t, unique};

const TRACKING_SERVICE: &str = "steward.tracking.v1.TrackingService";
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// One reflection round trip: the listed services, and the file that defines
/// [`TRACKING_SERVICE`] (what a client needs to call it). Written once per reflection version;
/// the generated types of v1 and v1alpha differ only in their module.
macro_rules! reflect {
    ($v:ident, $channel:expr) => {{
        use tonic_reflection::pb::$v::ServerReflectionRequest;
        use tonic_reflection::pb::$v::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$v::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$v::server_reflection_response::MessageResponse;
        let req = |m| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        };
        let mut stream = ServerReflectionClient::new($channel)
            .server_reflection_info(futures::stream::iter(vec![
                req(MessageRequest::ListServices(String::new())),
                req(MessageRequest::FileContainingSymbol(
                    TRACKING_SERVICE.into(),
                )),
            ]))
            .await
            .expect(concat!("reflection ", stringify!($v)))
            .into_inner();
        let mut services = Vec::new();
        let mut files = Vec::new();
        while let Some(resp) = stream.message().await.expect("reflection response") {
            match resp.message_response {
                Some(MessageResponse::ListServicesResponse(l)) => {
                    services.extend(l.service.into_iter().map(|s| s.name))
                }
                Some(MessageResponse::FileDescriptorResponse(f)) => {
                    files.extend(f.file_descriptor_proto)
                }
                other => panic!("unexpected reflection response {other:?}"),
            }
        }
        (services, files)
    }};
}

/// Asserts that both reflection versions list the tracking and health services and describe
/// the tracking service.
async fn check_reflection(channel: Channel) {
    let (v1, v1_files) = reflect!(v1, channel.clone());
    let (v1alpha, v1alpha_files) = reflect!(v1alpha, channel);
    for (version, services, files) in [
        ("grpc.reflection.v1", v1, v1_files),
        ("grpc.reflection.v1alpha", v1alpha, v1alpha_files),
    ] {
        for want in [TRACKING_SERVICE, HEALTH_SERVICE] {
            assert!(
                services.iter().any(|s| s == want),
                "{version} does not list {want}: {services:?}"
            );
        }
        let described = files.iter().any(|bytes| {
            prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .expect("reflection returns valid descriptors")
                .service
                .iter()
                .any(|s| s.name() == "TrackingService")
        });
        assert!(
            described,
            "{version} FileContainingSymbol({TRACKING_SERVICE}) has no TrackingService"
        );
    }
}

#[tokio::test]
async fn steward_up_serves_persists_and_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut first = Server::steward_up(data.path(), &[]).await;
    assert!(
        first.proc.stdout().contains("Steward is up"),
        "banner missing\n{}",
        first.proc.logs()
    );

    check_reflection(first.channel.clone()).await;

    // The tracking API end to end.
    let mut c = first.tracking();
    let name = unique("smoke");
    let exp = t::create_experiment(&mut c, &name).await;
    assert!(exp.name.starts_with("experiments/"), "{exp:?}");
    let run = t::create_run(&mut c, &exp.name, "first-run").await;
    t::log(
        &mut c,
        &run.name,
        &[("acc", 0.5, 0), ("acc", 0.75, 1), ("loss", 0.3, 1)],
        &[("lr", "0.01"), ("optimizer", "adam")],
    )
    .await;
    let got = c
        .get_run(pb::GetRunRequest {
            name: run.name.clone(),
        })
        .await
        .expect("GetRun")
        .into_inner();
    assert_eq!(t::latest(&got, "acc"), Some(0.75), "{got:?}");
    assert_eq!(got.params.get("lr").map(String::as_str), Some("0.01"));

    // Acknowledged means durable: kill the process without warning (like a crash or an OOM
    // kill) and start a new one on the same data dir.
    first.proc.kill();
    drop(first);
    let mut second = Server::steward_up(data.path(), &[]).await;
    let mut c = second.tracking();
    let survived = c
        .get_run(pb::GetRunRequest {
            name: run.name.clone(),
        })
        .await
        .expect("the run survives a crash and a restart")
        .into_inner();
    assert_eq!(survived.run_name, "first-run");
    assert_eq!(t::latest(&survived, "acc"), Some(0.75));
    assert_eq!(t::latest(&survived, "loss"), Some(0.3));
    assert_eq!(
        survived.params.get("optimizer").map(String::as_str),
        Some("adam")
    );
    let again = c
        .get_experiment(pb::GetExperimentRequest {
            name: String::new(),
            display_name: name.clone(),
        })
        .await
        .expect("the experiment survives")
        .into_inner();
    assert_eq!(again.name, exp.name);

    // SIGTERM: graceful shutdown, exit code 0, within 10 s.
    second.proc.terminate();
    let status = second.proc.wait_exit(Duration::from_secs(10)).await;
    let status = status.unwrap_or_else(|| {
        panic!(
            "steward up still running 10 s after SIGTERM\n{}",
            second.proc.logs()
        )
    });
    assert!(
        status.success(),
        "steward up exited with {status} after SIGTERM\n{}",
        second.proc.logs()
    );
    assert!(
        second.proc.stderr().contains("NOT_SERVING"),
        "no shutdown log line\n{}",
        second.proc.logs()
    );
}
