//! Decision records equal the answers: none lost, none doubled, also when the event bus is
//! unreachable during the traffic (events wait in the outbox and all arrive afterwards).

use std::collections::BTreeSet;
use std::time::Duration;

use steward_proto::deployment as pb;
use steward_proto::events::event_envelope::Payload;

use crate::harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_recorded_exactly_once_and_published_after_an_outage() {
    for real in [false, true] {
        if real && !steward_runtime::testing::real_tier_asked() {
            continue;
        }
        let mut h = harness::start_with(real, false).await;
        let l = h.label.clone();
        let mut events = h
            .backends
            .bus
            .subscribe("decisions-test", "t")
            .await
            .unwrap();
        let model = h.model_with_versions(2).await;
        let dep = h
            .deploy(&model, "staging", &[("a", 1, 5_000), ("b", 2, 5_000)])
            .await
            .unwrap()
            .name;
        // 8 clients x 150 routes, each id also retried once: 1,200 answers, 1,200 records.
        let mut tasks = Vec::new();
        for c in 0..8 {
            let mut client = h.dep.clone();
            let dep = dep.clone();
            tasks.push(tokio::spawn(async move {
                let mut answered = Vec::new();
                for i in 0..150 {
                    let id = format!("c{c}-{i}");
                    let req = pb::RouteRequest {
                        deployment: dep.clone(),
                        routing_key: format!("k{c}-{i}"),
                        request_id: id.clone(),
                    };
                    let a = client.route(req.clone()).await.unwrap().into_inner();
                    let b = client.route(req).await.unwrap().into_inner();
                    assert_eq!(a, b, "a retry answers as the first time");
                    answered.push((id, a.variant));
                }
                answered
            }));
        }
        let mut answered = Vec::new();
        for t in tasks {
            answered.extend(t.await.unwrap());
        }
        assert_eq!(answered.len(), 1200);
        for (id, variant) in answered.iter().step_by(37) {
            let d = h
                .dep
                .get_decision(pb::GetDecisionRequest {
                    request_id: id.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                &d.variant, variant,
                "{l}: the record says what was answered"
            );
        }
        // The bus was "down" (no relay): nothing published yet. Now it comes back.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), events.next())
                .await
                .is_err(),
            "{l}: published while the bus was down"
        );
        h.start_relay();
        let mut seen = BTreeSet::new();
        let mut total = 0;
        while seen.len() < 1200 {
            let d = tokio::time::timeout(Duration::from_secs(20), events.next())
                .await
                .unwrap_or_else(|_| panic!("{l}: only {} of 1200 decisions published", seen.len()))
                .unwrap();
            if let Some(Payload::DecisionsRecorded(r)) = &d.envelope.payload {
                for x in &r.decisions {
                    total += 1;
                    seen.insert(x.request_id.clone());
                }
            }
            d.ack().await.unwrap();
        }
        let expected: BTreeSet<String> = answered.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(seen, expected, "{l}");
        assert_eq!(total, 1200, "{l}: no decision published twice");
        h.stop().await;
    }
}
