//! Every control-plane mutation writes one hash-chained audit record in its transaction, and
//! domain events flow from the outbox to the bus with the request's trace context.

use std::time::Duration;

use prost_types::FieldMask;
use steward_proto::events::event_envelope::Payload;
use steward_proto::tracking as pb;
use steward_storage::audit;
use steward_tracking::app::SERVICE;

use crate::harness;

#[tokio::test]
async fn audit_chain_records_control_plane_mutations() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let conn = h.backends.db.conn().clone();
        let before = audit::list(&conn, SERVICE, None, 0, 100_000)
            .await
            .unwrap()
            .len();
        let mut req = tonic::Request::new(pb::CreateExperimentRequest {
            experiment: Some(pb::Experiment {
                display_name: format!("audited-{}", uuid::Uuid::new_v4()),
                ..Default::default()
            }),
            request_id: "audit-req-1".into(),
        });
        req.metadata_mut()
            .insert("x-steward-actor", "alice".parse().unwrap());
        let e = h.client.create_experiment(req).await.unwrap().into_inner();
        let run = h.run(&e.name).await;
        h.client
            .update_run(pb::UpdateRunRequest {
                run: Some(pb::Run {
                    name: run.name.clone(),
                    status: pb::RunStatus::Finished as i32,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["status".into()],
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
        // Data-plane writes are not audited one by one.
        h.client
            .log_run_data(pb::LogRunDataRequest {
                run: run.name.clone(),
                params: vec![pb::Param {
                    key: "k".into(),
                    value: "v".into(),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        let recs = audit::list(&conn, SERVICE, None, 0, 100_000).await.unwrap();
        let new: Vec<_> = recs[before..].iter().collect();
        let actions: Vec<&str> = new.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(
            actions,
            vec![
                "tracking.experiments.create",
                "tracking.runs.create",
                "tracking.runs.update"
            ],
            "{label}"
        );
        assert_eq!(new[0].actor, "alice");
        assert_eq!(new[0].request_id, "audit-req-1");
        assert_eq!(new[0].resource, e.name);
        assert!(new[2].before_json.as_deref().unwrap().contains("Running"));
        assert!(new[2].after_json.as_deref().unwrap().contains("Finished"));
        let report = audit::verify_chain(&conn, SERVICE).await.unwrap();
        assert_eq!(report.first_broken_seq, None, "{label}");
        assert_eq!(report.records as usize, recs.len());

        // Tampering with a stored record is detected at that record.
        use sea_orm::ConnectionTrait;
        conn.execute_unprepared(&format!(
            "UPDATE audit_records SET actor = 'mallory' WHERE service = 'tracking' AND seq = {}",
            new[0].seq
        ))
        .await
        .unwrap();
        let report = audit::verify_chain(&conn, SERVICE).await.unwrap();
        assert_eq!(report.first_broken_seq, Some(new[0].seq), "{label}");
        h.stop().await;
    }
}

#[tokio::test]
async fn events_reach_the_bus_with_trace_context() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let mut sub = h.backends.bus.subscribe("test-group", "c1").await.unwrap();
        let relay = h.backends.start_relay(SERVICE);
        let e = h.experiment().await;
        let mut req = tonic::Request::new(pb::CreateRunRequest {
            parent: e.name.clone(),
            run: None,
            request_id: String::new(),
        });
        req.metadata_mut().insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let run = h.client.create_run(req).await.unwrap().into_inner();
        h.client
            .update_run(pb::UpdateRunRequest {
                run: Some(pb::Run {
                    name: run.name.clone(),
                    status: pb::RunStatus::Failed as i32,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["status".into()],
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen.len() < 3 {
            let d = tokio::time::timeout_at(deadline, sub.next())
                .await
                .unwrap_or_else(|_| panic!("{label}: events arrived: {seen:?}"))
                .unwrap();
            seen.push((
                d.envelope.r#type.clone(),
                d.envelope.traceparent.clone(),
                d.envelope.payload.clone(),
            ));
            d.ack().await.unwrap();
        }
        assert_eq!(seen[0].0, "tracking.experiment.created", "{label}");
        assert_eq!(seen[1].0, "tracking.run.created");
        assert!(
            seen[1].1.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
            "{label}: traceparent carried: {:?}",
            seen[1].1
        );
        match &seen[2].2 {
            Some(Payload::RunFinished(f)) => {
                assert_eq!(f.run, run.name);
                assert_eq!(f.status, "FAILED");
            }
            other => panic!("{label}: expected RunFinished, got {other:?}"),
        }
        let _ = relay.shutdown().await;
        h.stop().await;
    }
}
