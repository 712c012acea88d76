//! One consumer of one group on the Redis stream: replay of its own pending entries, claiming of
//! idle ones, blocking reads of new ones on a dedicated connection, and recovery from outages.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prost::Message;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Value};
use steward_common::{Error, Result};
use steward_proto::events::EventEnvelope;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::reply::{self, Body, Entry};
use super::{RedisBus, bus_error, create_group, is_unavailable};
use crate::backoff::{Backoff, Outage};
use crate::bus::{Acker, Delivery, SubscriptionSource};

/// The consumer's side: deliveries come from a reader task through a small channel, so
/// [`next`](SubscriptionSource::next) is cancel safe (a dropped `next` loses nothing).
pub(super) struct RedisSubscription {
    deliveries: mpsc::Receiver<Result<Delivery>>,
    reader: JoinHandle<()>,
}

impl RedisSubscription {
    pub(super) fn spawn(bus: RedisBus, group: &str, consumer: &str) -> Self {
        let (sender, deliveries) = mpsc::channel(1);
        let reader = tokio::spawn(Reader::new(bus, group, consumer).run(sender));
        Self { deliveries, reader }
    }
}

impl Drop for RedisSubscription {
    fn drop(&mut self) {
        // Entries the reader holds stay pending in Redis and are delivered again.
        self.reader.abort();
    }
}

#[async_trait]
impl SubscriptionSource for RedisSubscription {
    async fn next(&mut self) -> Result<Delivery> {
        match self.deliveries.recv().await {
            Some(result) => result,
            None => Err(Error::internal(
                "event bus subscription reader ended unexpectedly",
            )),
        }
    }
}

/// Reads the stream for one consumer on a connection of its own.
struct Reader {
    bus: RedisBus,
    group: Arc<str>,
    consumer: Arc<str>,
    /// Dedicated connection for blocking reads; `None` until connected or after a failure.
    reader: Option<MultiplexedConnection>,
    buffer: VecDeque<Delivery>,
    /// While `Some(id)`: re-reading this consumer's own pending entries after `id`.
    replay_from: Option<String>,
    claim_cursor: String,
    next_claim_at: Instant,
    /// How long one blocking read waits, and how often idle entries are claimed.
    poll: Duration,
    backoff: Backoff,
    outage: Outage,
}

impl Reader {
    fn new(bus: RedisBus, group: &str, consumer: &str) -> Self {
        let poll =
            (bus.opts.redeliver_after / 2).clamp(Duration::from_millis(10), Duration::from_secs(2));
        Self {
            bus,
            group: Arc::from(group),
            consumer: Arc::from(consumer),
            reader: None,
            buffer: VecDeque::new(),
            replay_from: Some("0".to_owned()),
            claim_cursor: "0-0".to_owned(),
            next_claim_at: Instant::now(),
            poll,
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(2)),
            outage: Outage::new("event bus subscription (Redis)"),
        }
    }

    /// Runs `cmd` on the dedicated connection, (re)connecting first if needed. A missing group is
    /// recreated from the start of the stream, and the reply is then nil.
    async fn query(&mut self, cmd: &Cmd) -> Result<Value> {
        let reader = match &mut self.reader {
            Some(reader) => reader,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.bus.opts.connect_timeout))
                    .set_response_timeout(Some(self.bus.opts.response_timeout + self.poll));
                let conn = self
                    .bus
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(bus_error)?;
                self.reader.insert(conn)
            }
        };
        match cmd.query_async::<Value>(reader).await {
            Ok(value) => Ok(value),
            Err(e) if e.code() == Some("NOGROUP") => {
                tracing::warn!(
                    stream = %self.bus.key,
                    group = %self.group,
                    "consumer group missing (Redis restarted without persistence or the stream \
                     was deleted); recreating it from the start of the stream"
                );
                create_group(&self.bus.manager, &self.bus.key, &self.group, "0").await?;
                self.replay_from = None;
                Ok(Value::Nil)
            }
            Err(e) => {
                let e = bus_error(e);
                if is_unavailable(&e) {
                    self.reader = None;
                }
                Err(e)
            }
        }
    }

    fn xreadgroup(&self, block: Option<Duration>, from: &str) -> Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&*self.group)
            .arg(&*self.consumer)
            .arg("COUNT")
            .arg(self.bus.opts.read_count.max(1));
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&*self.bus.key).arg(from);
        cmd
    }

    /// One round of reading; may add nothing to the buffer (a blocking read timed out).
    async fn fill(&mut self) -> Result<()> {
        if let Some(from) = self.replay_from.clone() {
            let value = self.query(&self.xreadgroup(None, &from)).await?;
            let entries = reply::read_reply(value).map_err(Error::internal)?;
            match entries.last() {
                Some(last) => self.replay_from = Some(last.id.clone()),
                None => self.replay_from = None,
            }
            self.accept(entries, true).await;
            return Ok(());
        }
        if Instant::now() >= self.next_claim_at {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&*self.bus.key)
                .arg(&*self.group)
                .arg(&*self.consumer)
                .arg(self.bus.opts.redeliver_after.as_millis() as u64)
                .arg(&self.claim_cursor)
                .arg("COUNT")
                .arg(self.bus.opts.read_count.max(1));
            let value = self.query(&cmd).await?;
            let (cursor, entries) = reply::autoclaim_reply(value).map_err(Error::internal)?;
            if cursor == "0-0" {
                self.next_claim_at = Instant::now() + self.poll;
            }
            self.claim_cursor = cursor;
            if !entries.is_empty() {
                self.accept(entries, true).await;
                return Ok(());
            }
        }
        let value = self.query(&self.xreadgroup(Some(self.poll), ">")).await?;
        let entries = reply::read_reply(value).map_err(Error::internal)?;
        self.accept(entries, false).await;
        Ok(())
    }

    /// Buffers the entries as deliveries; acks (drops) those that cannot be delivered.
    async fn accept(&mut self, entries: Vec<Entry>, redelivered: bool) {
        for Entry { id, body } in entries {
            let envelope = match body {
                Body::Envelope(bytes) => match EventEnvelope::decode(bytes.as_slice()) {
                    Ok(envelope) => Some(envelope),
                    Err(e) => {
                        tracing::warn!(
                            stream = %self.bus.key,
                            id,
                            error = %e,
                            "dropping stream entry that is not an EventEnvelope"
                        );
                        None
                    }
                },
                Body::Malformed => {
                    tracing::warn!(
                        stream = %self.bus.key,
                        id,
                        "dropping stream entry without an envelope field"
                    );
                    None
                }
                Body::Deleted => {
                    tracing::debug!(
                        stream = %self.bus.key,
                        id,
                        "pending entry was trimmed from the stream; acking it"
                    );
                    None
                }
            };
            let acker = RedisAcker {
                manager: self.bus.manager.clone(),
                key: self.bus.key.clone(),
                group: self.group.clone(),
                id,
            };
            match envelope {
                Some(envelope) => {
                    self.buffer
                        .push_back(Delivery::new(envelope, redelivered, acker))
                }
                None => {
                    // If this ack is lost the entry comes back later and is dropped again.
                    if let Err(e) = Box::new(acker).ack().await {
                        tracing::debug!(error = %e, "could not ack a dropped stream entry");
                    }
                }
            }
        }
    }
}

impl Reader {
    /// Feeds `sender` until the subscription is dropped. Transient failures are retried with
    /// backoff (logged once per outage); other errors are passed on and then retried too.
    async fn run(mut self, sender: mpsc::Sender<Result<Delivery>>) {
        loop {
            while let Some(delivery) = self.buffer.pop_front() {
                if sender.send(Ok(delivery)).await.is_err() {
                    return;
                }
            }
            let result = tokio::select! {
                () = sender.closed() => return,
                result = self.fill() => result,
            };
            match result {
                Ok(()) => {
                    self.outage.succeeded();
                    self.backoff.reset();
                }
                Err(e) => {
                    let delay = self.backoff.next_delay();
                    if is_unavailable(&e) {
                        self.outage.failed(&e);
                    } else if sender.send(Err(e)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

struct RedisAcker {
    manager: ConnectionManager,
    key: Arc<str>,
    group: Arc<str>,
    id: String,
}

#[async_trait]
impl Acker for RedisAcker {
    async fn ack(self: Box<Self>) -> Result<()> {
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&*self.key).arg(&*self.group).arg(&self.id);
        cmd.query_async::<Value>(&mut self.manager.clone())
            .await
            .map(drop)
            .map_err(bus_error)
    }
}
