//! The outbox relay against every bus: order, marking, notify, outages, shutdown.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steward_common::ErrorKind;
use steward_events::{Relay, RelayOptions};

use crate::support::{
    FlakyBus, MemOutbox, SOON, TestBackend, assert_quiet, envelope, eventually, receive,
};

bus_suite!(
    relay_publishes_in_id_order_and_marks_published,
    notifications_right_after_a_drain_are_coalesced,
    relay_retries_until_the_bus_recovers_and_logs_the_outage_once,
    rows_stay_pending_while_the_bus_is_down,
    shutdown_makes_a_final_bounded_drain,
);

/// Options for tests: quick retries.
fn quick() -> RelayOptions {
    RelayOptions {
        poll_interval: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        ..RelayOptions::default()
    }
}

/// A notification after a quiet spell drains at once; one that comes sooner than
/// `min_drain_interval` after the last drain started waits for it (one drain publishes the
/// events of several commits).
async fn notifications_right_after_a_drain_are_coalesced(backend: &TestBackend) {
    let bus = backend.default_bus().await;
    let mut sub = bus.subscribe("g", "c").await.unwrap();
    let store = Arc::new(MemOutbox::default());
    let interval = Duration::from_secs(1);
    let opts = RelayOptions {
        poll_interval: Duration::from_secs(3600),
        min_drain_interval: interval,
        ..RelayOptions::default()
    };
    let relay = Relay::spawn(store.clone(), bus.clone(), opts);
    // The start-up drain, then a quiet spell longer than the interval.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;

    let first = envelope(1);
    store.insert(first.clone());
    let quiet = std::time::Instant::now();
    relay.notify();
    assert_eq!(receive(&mut sub, 1).await, [first]);
    assert!(
        quiet.elapsed() < interval / 2,
        "a notification after a quiet spell waited {:?}",
        quiet.elapsed()
    );

    // Two commits right after that drain: published together, not before the interval.
    let (second, third) = (envelope(2), envelope(3));
    store.insert(second.clone());
    relay.notify();
    store.insert(third.clone());
    relay.notify();
    assert_eq!(receive(&mut sub, 2).await, [second, third]);
    assert!(
        quiet.elapsed() >= interval,
        "a notification {:?} after a drain did not wait for the interval",
        quiet.elapsed()
    );
    eventually("the rows marked published", || {
        store.pending_ids().is_empty()
    })
    .await;

    // A command is served while a drain waits for the interval: flush publishes at once.
    let fourth = envelope(4);
    store.insert(fourth.clone());
    let waiting = std::time::Instant::now();
    relay.notify();
    relay.flush().await.unwrap();
    assert!(
        waiting.elapsed() < interval / 2,
        "flush waited {:?} behind a deferred drain",
        waiting.elapsed()
    );
    assert_eq!(receive(&mut sub, 1).await, [fourth]);
    relay.shutdown().await.unwrap();
}

async fn relay_publishes_in_id_order_and_marks_published(backend: &TestBackend) {
    let bus = backend.default_bus().await;
    let mut sub = bus.subscribe("g", "c").await.unwrap();
    let store = Arc::new(MemOutbox::default());
    // More than two batches of 500.
    let sent: Vec<_> = (1..=1203).map(envelope).collect();
    for e in &sent {
        store.insert(e.clone());
    }
    // A poll interval too long to matter: only the start-up drain, flush and notify move rows.
    let opts = RelayOptions {
        poll_interval: Duration::from_secs(3600),
        ..RelayOptions::default()
    };
    let relay = Relay::spawn(store.clone(), bus.clone(), opts);
    relay.flush().await.unwrap();
    assert!(store.pending_ids().is_empty(), "all rows marked published");
    assert_eq!(
        receive(&mut sub, sent.len()).await,
        sent,
        "published in id order"
    );

    // After a commit, notify wakes the relay right away.
    let later: Vec<_> = (2000..2003).map(envelope).collect();
    for e in &later {
        store.insert(e.clone());
    }
    relay.notify();
    assert_eq!(receive(&mut sub, later.len()).await, later);
    eventually("rows marked published", || store.pending_ids().is_empty()).await;
    relay.shutdown().await.unwrap();
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
}

async fn relay_retries_until_the_bus_recovers_and_logs_the_outage_once(backend: &TestBackend) {
    let logs = LogCapture::start();
    let inner = backend.default_bus().await;
    let mut sub = inner.subscribe("g", "c").await.unwrap();
    let flaky = Arc::new(FlakyBus::new(inner, 4));
    let store = Arc::new(MemOutbox::default());
    let sent: Vec<_> = (1..=10).map(envelope).collect();
    for e in &sent {
        store.insert(e.clone());
    }
    let relay = Relay::spawn(store.clone(), flaky.clone(), quick());
    eventually("relay recovered", || store.pending_ids().is_empty()).await;
    assert_eq!(flaky.rejected.load(Ordering::SeqCst), 4);
    assert_eq!(
        receive(&mut sub, sent.len()).await,
        sent,
        "everything, in order"
    );
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    relay.shutdown().await.unwrap();

    let text = logs.text();
    let warnings: Vec<_> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning per outage, not per retry:\n{text}"
    );
    assert!(warnings[0].contains("outbox relay") && warnings[0].contains("outage started"));
    assert_eq!(
        text.matches("outage over").count(),
        1,
        "recovery logged once:\n{text}"
    );
}

async fn rows_stay_pending_while_the_bus_is_down(backend: &TestBackend) {
    let inner = backend.default_bus().await;
    let mut sub = inner.subscribe("g", "c").await.unwrap();
    let flaky = Arc::new(FlakyBus::new(inner, 0));
    flaky.set_down(true);
    let store = Arc::new(MemOutbox::default());
    let relay = Relay::spawn(store.clone(), flaky.clone(), quick());
    let sent: Vec<_> = (1..=5).map(envelope).collect();
    let ids: Vec<_> = sent.iter().map(|e| store.insert(e.clone())).collect();
    relay.notify();

    eventually("several failed attempts", || {
        flaky.rejected.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert_eq!(
        store.pending_ids(),
        ids,
        "nothing marked published while the bus is down"
    );
    let err = relay.flush().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    assert_eq!(store.pending_ids(), ids);

    flaky.set_down(false);
    let deadline = tokio::time::Instant::now() + SOON;
    while let Err(e) = relay.flush().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "relay did not recover: {e}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(store.pending_ids().is_empty());
    assert_eq!(
        receive(&mut sub, sent.len()).await,
        sent,
        "nothing lost, in order"
    );
    relay.shutdown().await.unwrap();
}

async fn shutdown_makes_a_final_bounded_drain(backend: &TestBackend) {
    let inner = backend.default_bus().await;
    let mut sub = inner.subscribe("g", "c").await.unwrap();
    let flaky = Arc::new(FlakyBus::new(inner, 0));
    let store = Arc::new(MemOutbox::default());
    let opts = RelayOptions {
        poll_interval: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        shutdown_timeout: Duration::from_secs(2),
        ..RelayOptions::default()
    };

    // Bus down at shutdown: the final attempt fails, the rows stay, shutdown still returns.
    flaky.set_down(true);
    let relay = Relay::spawn(store.clone(), flaky.clone(), opts);
    let first = envelope(1);
    let first_id = store.insert(first.clone());
    let started = tokio::time::Instant::now();
    let err = relay.shutdown().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(started.elapsed() < SOON);
    assert_eq!(store.pending_ids(), vec![first_id]);

    // Bus up, with rows only the final drain can see (the poll and backoff are an hour).
    flaky.set_down(false);
    let relay = Relay::spawn(store.clone(), flaky.clone(), opts);
    tokio::time::sleep(Duration::from_millis(100)).await; // past the start-up drain
    let second = envelope(2);
    store.insert(second.clone());
    relay.shutdown().await.unwrap();
    assert!(store.pending_ids().is_empty());
    let got = receive(&mut sub, 2).await;
    assert_eq!(got, vec![first, second]);
}

/// Captures this thread's log output (the tests run on a current-thread runtime, so the relay
/// task logs on this thread too).
struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn start() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = SharedWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}
