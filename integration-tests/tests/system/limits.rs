//! Resource limits on `steward up`: a client stream that goes silent is ended by the idle
//! timeout and stores nothing; a caller over the request rate gets RESOURCE_EXHAUSTED with a
//! RetryInfo, per method, while other methods and health still answer.

use std::time::{Duration, Instant};

use steward_proto::tracking as pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::support::server::Server;
use crate::support::tracking::{create_experiment, create_run, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_streams_end_and_fast_callers_are_slowed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::steward_up(
        dir.path(),
        &[
            ("STEWARD_STREAM_IDLE_TIMEOUT_MS", "500"),
            ("STEWARD_RATE_LIMIT_PER_S", "5"),
            ("STEWARD_RATE_LIMIT_BURST", "10"),
        ],
    )
    .await;
    let mut t = server.tracking();
    let exp = create_experiment(&mut t, &unique("limits")).await;
    let run = create_run(&mut t, &exp.name, "r").await;

    // Control-plane requests are limited to 4 MiB; bulk ones (run data) to the message limit.
    let big = t
        .update_experiment(pb::UpdateExperimentRequest {
            experiment: Some(pb::Experiment {
                name: exp.name.clone(),
                description: "d".repeat(5 << 20),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".into()],
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(big.code(), Code::ResourceExhausted, "{big:?}");
    let params: Vec<pb::Param> = (0..700)
        .map(|i| pb::Param {
            key: format!("p{i}"),
            value: "v".repeat(8000),
        })
        .collect();
    t.log_run_data(pb::LogRunDataRequest {
        run: run.name.clone(),
        params,
        ..Default::default()
    })
    .await
    .expect("5.6 MB of params is a bulk request within the message limit");

    // An upload that sends its header and then nothing.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::UploadArtifactRequest {
        part: Some(pb::upload_artifact_request::Part::Header(
            pb::ArtifactHeader {
                run: run.name.clone(),
                path: "stalled.bin".into(),
                ..Default::default()
            },
        )),
    })
    .await
    .unwrap();
    let started = Instant::now();
    let status = t
        .upload_artifact(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_err();
    // The upload reports the interrupted stream (ABORTED, UPLOAD_INTERRUPTED) with the cause.
    assert!(
        matches!(status.code(), Code::Aborted | Code::DeadlineExceeded)
            && status.message().contains("sent nothing"),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(tx);
    let listed = t
        .list_artifacts(pb::ListArtifactsRequest {
            run: run.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.artifacts.is_empty(),
        "a stalled upload stores nothing: {listed:?}"
    );

    // 30 reads at once from one client: the burst passes, the rest are told when to retry.
    let calls = (0..30).map(|_| {
        let mut t = server.tracking();
        let name = exp.name.clone();
        async move {
            t.get_experiment(pb::GetExperimentRequest {
                name,
                ..Default::default()
            })
            .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let limited: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let passed = results.len() - limited.len();
    assert!((10..=13).contains(&passed), "{passed} passed");
    for s in &limited {
        assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
        let retry = s.get_details_retry_info().and_then(|r| r.retry_delay);
        assert!(retry.is_some_and(|d| d <= Duration::from_secs(1)), "{s:?}");
    }
    // Another method has its own budget.
    t.list_experiments(pb::ListExperimentsRequest::default())
        .await
        .expect("ListExperiments is not limited by GetExperiment's budget");
    tokio::time::sleep(Duration::from_millis(400)).await;
    t.get_experiment(pb::GetExperimentRequest {
        name: exp.name.clone(),
        ..Default::default()
    })
    .await
    .expect("tokens come back at the configured rate");
}
