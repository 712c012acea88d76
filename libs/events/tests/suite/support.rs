//! Shared test support: backends, envelopes, an in-memory outbox and a bus that fails on demand.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use prost_types::Timestamp;
use steward_common::{Error, Result};
use steward_events::{
    Delivery, EventBus, InProcessBus, InProcessOptions, OutboxRecord, OutboxStore, RedisBus,
    RedisBusOptions, Subscription,
};
use steward_proto::events::{ArtifactWritten, EventEnvelope, RunFinished, event_envelope::Payload};

/// Generous bound on anything that should happen "soon" (the machine is shared and busy).
pub const SOON: Duration = Duration::from_secs(15);

/// One bus backend of the suite. For Redis it owns a unique key prefix and deletes its keys when
/// dropped.
pub enum TestBackend {
    InProcess,
    Redis { url: String, prefix: String },
}

impl TestBackend {
    pub fn in_process() -> Self {
        Self::InProcess
    }

    /// The Redis backend if `STEWARD_TEST_REDIS_URL` is set; panics if it is set but Redis is
    /// unreachable.
    pub async fn redis() -> Option<Self> {
        let Ok(url) = std::env::var("STEWARD_TEST_REDIS_URL") else {
            say_once("Redis tier not asked for (set STEWARD_TEST_REDIS_URL)");
            return None;
        };
        let prefix = format!("steward-test-{}:", uuid::Uuid::new_v4().simple());
        if let Err(e) = RedisBus::connect(&url, &prefix).await {
            panic!("STEWARD_TEST_REDIS_URL={url} is set but Redis is unreachable: {e}");
        }
        Some(Self::Redis { url, prefix })
    }

    /// A bus redelivering unacked events after `redeliver_after`. For Redis, every bus of one
    /// backend shares the same stream (like separate processes would).
    pub async fn bus(&self, redeliver_after: Duration) -> Arc<dyn EventBus> {
        match self {
            Self::InProcess => Arc::new(InProcessBus::with_options(InProcessOptions {
                redeliver_after,
                ..InProcessOptions::default()
            })),
            Self::Redis { url, prefix } => {
                let opts = RedisBusOptions {
                    redeliver_after,
                    ..RedisBusOptions::default()
                };
                Arc::new(
                    RedisBus::connect_with_options(url, prefix, opts)
                        .await
                        .expect("connect"),
                )
            }
        }
    }

    /// A bus with the default (long) redelivery timeout.
    pub async fn default_bus(&self) -> Arc<dyn EventBus> {
        self.bus(Duration::from_secs(30)).await
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        if let Self::Redis { url, prefix } = self {
            delete_keys(url, prefix);
        }
    }
}

/// Prints `line` once per test run, past libtest's output capture.
pub fn say_once(line: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let _ = writeln!(std::io::stderr(), "{line}");
    });
}

/// Logs of the current thread go to the test's captured output (shown when it fails).
pub fn log_to_test_output() -> tracing::subscriber::DefaultGuard {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_test_writer()
        .finish();
    tracing::subscriber::set_default(subscriber)
}

/// Deletes every key starting with `prefix`.
pub fn delete_keys(url: &str, prefix: &str) {
    let result = (|| -> redis::RedisResult<()> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        let keys: Vec<String> =
            redis::Commands::scan_match::<_, String>(&mut conn, format!("{prefix}*"))?
                .filter_map(Result::ok)
                .collect();
        for key in keys {
            redis::cmd("DEL").arg(key).exec(&mut conn)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("could not delete test keys {prefix}*: {e}");
    }
}

/// A fully populated envelope, distinct per `n`.
pub fn envelope(n: u32) -> EventEnvelope {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let payload = if n.is_multiple_of(2) {
        Payload::RunFinished(RunFinished {
            run: format!("experiments/e1/runs/r{n}"),
            status: "FINISHED".into(),
            end_time: Some(Timestamp {
                seconds: 1_700_000_100 + i64::from(n),
                nanos: 42,
            }),
        })
    } else {
        Payload::ArtifactWritten(ArtifactWritten {
            run: format!("experiments/e1/runs/r{n}"),
            path: format!("model/{n}.onnx"),
            size_bytes: -1 - i64::from(n),
            sha256: "ab".repeat(32),
        })
    };
    EventEnvelope {
        r#type: if n.is_multiple_of(2) {
            "tracking.run.finished"
        } else {
            "tracking.artifact.written"
        }
        .into(),
        source: format!("experiments/e1/runs/r{n}"),
        time: Some(Timestamp {
            seconds: 1_700_000_000 + i64::from(n),
            nanos: 123_456_789,
        }),
        traceparent: format!("00-{id}-{}-01", &id[..16]),
        producer: "tracking".into(),
        payload: Some(payload),
        event_id: id,
    }
}

/// The next delivery, or `None` if nothing comes within `wait`.
pub async fn next_within(sub: &mut Subscription, wait: Duration) -> Option<Delivery> {
    match tokio::time::timeout(wait, sub.next()).await {
        Ok(result) => Some(result.expect("subscription failed")),
        Err(_) => None,
    }
}

/// Receives and acks `n` events, panicking if they do not all come within [`SOON`].
pub async fn receive(sub: &mut Subscription, n: usize) -> Vec<EventEnvelope> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let Some(delivery) = next_within(sub, SOON).await else {
            panic!("received only {} of {n} events", got.len());
        };
        let envelope = delivery.envelope.clone();
        delivery.ack().await.expect("ack");
        got.push(envelope);
    }
    got
}

/// Asserts nothing more arrives within `wait`.
pub async fn assert_quiet(sub: &mut Subscription, wait: Duration) {
    if let Some(d) = next_within(sub, wait).await {
        panic!("unexpected delivery {d:?}");
    }
}

/// An in-memory outbox.
#[derive(Default)]
pub struct MemOutbox {
    rows: Mutex<BTreeMap<i64, (EventEnvelope, bool)>>,
    next_id: Mutex<i64>,
}

impl MemOutbox {
    /// Appends a row (as a committed transaction would), returning its id.
    pub fn insert(&self, envelope: EventEnvelope) -> i64 {
        let mut next = self.next_id.lock().unwrap();
        *next += 1;
        self.rows.lock().unwrap().insert(*next, (envelope, false));
        *next
    }

    pub fn pending_ids(&self) -> Vec<i64> {
        let rows = self.rows.lock().unwrap();
        rows.iter()
            .filter(|(_, (_, published))| !published)
            .map(|(id, _)| *id)
            .collect()
    }
}

#[async_trait]
impl OutboxStore for MemOutbox {
    async fn fetch_pending(&self, limit: usize) -> Result<Vec<OutboxRecord>> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|(_, (_, published))| !published)
            .take(limit)
            .map(|(id, (envelope, _))| OutboxRecord {
                id: *id,
                envelope: envelope.clone(),
            })
            .collect())
    }

    async fn mark_published(&self, ids: &[i64]) -> Result<()> {
        let mut rows = self.rows.lock().unwrap();
        for id in ids {
            if let Some(row) = rows.get_mut(id) {
                row.1 = true;
            }
        }
        Ok(())
    }
}

/// Wraps a bus; while down, or for its first `fail_first` publishes, publishing fails as an
/// unreachable bus would.
pub struct FlakyBus {
    inner: Arc<dyn EventBus>,
    down: AtomicBool,
    fail_first: AtomicUsize,
    pub rejected: AtomicUsize,
}

impl FlakyBus {
    pub fn new(inner: Arc<dyn EventBus>, fail_first: usize) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            fail_first: AtomicUsize::new(fail_first),
            rejected: AtomicUsize::new(0),
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<()> {
        let failing_first = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing_first || self.down.load(Ordering::SeqCst) {
            self.rejected.fetch_add(1, Ordering::SeqCst);
            return Err(Error::unavailable(
                "EVENT_BUS_UNAVAILABLE",
                "test bus is down",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl EventBus for FlakyBus {
    async fn publish(&self, envelope: &EventEnvelope) -> Result<()> {
        self.check()?;
        self.inner.publish(envelope).await
    }

    async fn publish_batch(&self, envelopes: &[EventEnvelope]) -> Result<()> {
        self.check()?;
        self.inner.publish_batch(envelopes).await
    }

    async fn subscribe(&self, group: &str, consumer: &str) -> Result<Subscription> {
        self.inner.subscribe(group, consumer).await
    }

    async fn group_lags(&self) -> Result<Vec<steward_events::GroupLag>> {
        self.inner.group_lags().await
    }
}

/// Polls `cond` until it holds, panicking after [`SOON`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + SOON;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
