//! The bus contract, one body per behaviour, run against every bus implementation.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::{SOON, TestBackend, assert_quiet, envelope, next_within, receive};

bus_suite!(
    round_trip_preserves_every_field,
    every_group_gets_every_event,
    consumers_in_a_group_split_events_without_duplicates,
    unacked_event_is_redelivered_after_the_idle_timeout,
    resubscribing_consumer_rereads_its_own_pending_events,
    deduper_drops_redeliveries,
    group_lags_count_what_each_group_has_not_acked,
);

async fn round_trip_preserves_every_field(backend: &TestBackend) {
    let bus = backend.default_bus().await;
    let before = envelope(0);
    bus.publish(&before).await.unwrap();
    let mut sub = bus.subscribe("indexer", "c1").await.unwrap();
    let mut sent: Vec<_> = (1..=4).map(envelope).collect();
    // Sparse envelopes survive too: no payload, no time, no traceparent.
    sent.push(steward_proto::events::EventEnvelope {
        event_id: "0123456789abcdef0123456789abcdef".into(),
        r#type: "test.bare".into(),
        ..Default::default()
    });
    for e in &sent {
        bus.publish(e).await.unwrap();
    }
    let got = receive(&mut sub, sent.len()).await;
    assert_eq!(
        got, sent,
        "every field, in publish order; nothing from before the group existed"
    );
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
}

async fn every_group_gets_every_event(backend: &TestBackend) {
    let bus = backend.default_bus().await;
    let mut audit = bus.subscribe("audit", "a1").await.unwrap();
    let mut alerts = bus.subscribe("alerts", "b1").await.unwrap();
    let sent: Vec<_> = (1..=6).map(envelope).collect();
    bus.publish_batch(&sent).await.unwrap();
    assert_eq!(receive(&mut audit, sent.len()).await, sent);
    assert_eq!(receive(&mut alerts, sent.len()).await, sent);
    assert_quiet(&mut audit, Duration::from_millis(200)).await;
    assert_quiet(&mut alerts, Duration::from_millis(200)).await;
}

async fn consumers_in_a_group_split_events_without_duplicates(backend: &TestBackend) {
    let bus = backend.default_bus().await;
    let mut c1 = bus.subscribe("workers", "c1").await.unwrap();
    let mut c2 = bus.subscribe("workers", "c2").await.unwrap();
    let sent: Vec<_> = (1..=40).map(envelope).collect();
    for e in &sent {
        bus.publish(e).await.unwrap();
    }
    let mut got = Vec::new();
    let (mut from_c1, mut from_c2) = (0, 0);
    let deadline = tokio::time::Instant::now() + SOON;
    while got.len() < sent.len() {
        // `next` is cancel safe, so racing the two consumers loses nothing.
        let delivery = tokio::select! {
            d = c1.next() => { from_c1 += 1; d.unwrap() }
            d = c2.next() => { from_c2 += 1; d.unwrap() }
            () = tokio::time::sleep_until(deadline) => panic!("received only {} events", got.len()),
        };
        got.push(delivery.envelope.event_id.clone());
        delivery.ack().await.unwrap();
    }
    let unique: HashSet<_> = got.iter().collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "no event delivered twice within the group"
    );
    let expected: HashSet<_> = sent.iter().map(|e| &e.event_id).collect();
    assert_eq!(unique, expected);
    assert_eq!(from_c1 + from_c2, sent.len());
    assert_quiet(&mut c1, Duration::from_millis(300)).await;
    assert_quiet(&mut c2, Duration::from_millis(300)).await;
}

async fn unacked_event_is_redelivered_after_the_idle_timeout(backend: &TestBackend) {
    // Long enough that the redelivered copy is acked well within one idle period even on a
    // loaded 2-core CI machine; otherwise the other consumer may legitimately claim it again
    // (at-least-once) before the ack lands, and "never again" below would not hold.
    let idle = Duration::from_millis(1500);
    let bus = backend.bus(idle).await;
    let mut c1 = bus.subscribe("g", "c1").await.unwrap();
    let mut c2 = bus.subscribe("g", "c2").await.unwrap();
    let sent = envelope(1);
    bus.publish(&sent).await.unwrap();

    let first = next_within(&mut c1, SOON).await.expect("first delivery");
    assert_eq!(first.envelope, sent);
    assert!(!first.is_redelivery());
    let taken_at = tokio::time::Instant::now();
    drop(first); // crashed before acking

    // After the idle timeout the entry is claimed again, by whichever consumer's claim loop runs
    // first (the other consumer, or the original one re-claiming its own entry).
    let again = tokio::select! {
        d = next_within(&mut c1, SOON) => d,
        d = next_within(&mut c2, SOON) => d,
    }
    .expect("redelivery after the idle timeout");
    // The idle clock started a little before `taken_at`; allow for that.
    assert!(
        taken_at.elapsed() >= idle / 2,
        "redelivered before the idle timeout"
    );
    assert_eq!(again.envelope, sent);
    assert!(again.is_redelivery());
    again.ack().await.unwrap();

    // Acked: no consumer claims it again. A copy claimed before the ack may still sit in a
    // consumer's buffer (at-least-once: consumers dedupe), but nothing arrives after that.
    for c in [&mut c1, &mut c2] {
        if let Some(stale) = next_within(c, idle * 3).await {
            assert_eq!(
                stale.envelope.event_id, sent.event_id,
                "only the same event, claimed before the ack"
            );
            stale.ack().await.unwrap();
        }
        assert_quiet(c, idle * 2).await;
    }
}

async fn resubscribing_consumer_rereads_its_own_pending_events(backend: &TestBackend) {
    let bus = backend.default_bus().await; // 30 s idle timeout: only the re-read can redeliver
    let mut sub = bus.subscribe("g", "worker-1").await.unwrap();
    let sent: Vec<_> = (1..=3).map(envelope).collect();
    bus.publish_batch(&sent).await.unwrap();
    let d1 = next_within(&mut sub, SOON).await.unwrap();
    assert_eq!(d1.envelope, sent[0]);
    d1.ack().await.unwrap();
    let d2 = next_within(&mut sub, SOON).await.unwrap();
    assert_eq!(d2.envelope, sent[1]);
    drop(d2);
    drop(sub); // the process restarts; events 2 and 3 were not acked

    let mut sub = bus.subscribe("g", "worker-1").await.unwrap();
    let got = receive(&mut sub, 2).await;
    assert_eq!(got, sent[1..].to_vec());
    assert_quiet(&mut sub, Duration::from_millis(300)).await;

    // Another consumer of the group does not get them before the idle timeout.
    let mut other = bus.subscribe("g", "worker-2").await.unwrap();
    assert_quiet(&mut other, Duration::from_millis(300)).await;
}

async fn deduper_drops_redeliveries(backend: &TestBackend) {
    let bus = backend.bus(Duration::from_millis(200)).await;
    let mut sub = bus.subscribe("g", "c").await.unwrap();
    let sent = envelope(7);
    bus.publish(&sent).await.unwrap();
    bus.publish(&sent).await.unwrap(); // e.g. the relay published it twice

    let mut dedupe = steward_events::Deduper::new(1000);
    let mut processed = Vec::new();
    let mut deliveries = 0;
    // Three deliveries of the same id: two publishes, plus one redelivery of an unacked one.
    while deliveries < 3 {
        let d = next_within(&mut sub, SOON).await.expect("delivery");
        deliveries += 1;
        if dedupe.first_time(&d.envelope.event_id) {
            processed.push(d.envelope.clone());
            drop(d); // processed but the ack was lost
        } else {
            d.ack().await.unwrap();
        }
    }
    assert_eq!(processed, vec![sent]);
    assert_quiet(&mut sub, Duration::from_millis(500)).await;
}

async fn group_lags_count_what_each_group_has_not_acked(backend: &TestBackend) {
    let bus = backend.default_bus().await;
    drop(bus.subscribe("lagging", "l1").await.unwrap());
    let mut current = bus.subscribe("current", "c1").await.unwrap();
    let sent: Vec<_> = (1..=3).map(envelope).collect();
    bus.publish_batch(&sent).await.unwrap();
    receive(&mut current, sent.len()).await;
    let lags = bus.group_lags().await.unwrap();
    let behind = |group: &str| {
        let lag = lags
            .iter()
            .find(|l| l.group == group)
            .unwrap_or_else(|| panic!("no lag for {group} in {lags:?}"));
        // A consumer that read ahead before it was dropped holds its reads as pending.
        lag.undelivered.unwrap_or(0) + lag.pending
    };
    assert_eq!(behind("current"), 0, "{lags:?}");
    assert_eq!(behind("lagging"), 3, "{lags:?}");
}
