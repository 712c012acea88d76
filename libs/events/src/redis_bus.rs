//! [`RedisBus`]: the event bus of distributed mode, on Redis Streams with consumer groups.

mod reply;
mod subscription;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prost::Message;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, RedisError, RetryMethod, Value};
use steward_common::{Error, Result};
use steward_proto::events::EventEnvelope;

use crate::bus::{EventBus, GroupLag, Subscription};
use steward_telemetry::client_span::{self, Attribute, Call, CallTimer, Kind};
use subscription::RedisSubscription;

/// The reason of every "Redis cannot be reached" error.
pub const EVENT_BUS_UNAVAILABLE: &str = "EVENT_BUS_UNAVAILABLE";

/// Settings of a [`RedisBus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisBusOptions {
    /// Approximate cap on the stream length (`XADD MAXLEN ~`). Default 1 000 000.
    pub max_len: usize,
    /// A pending entry idle this long is claimed by the next consumer of its group that reads
    /// (`XAUTOCLAIM`). Default 30 s.
    pub redeliver_after: Duration,
    /// Entries fetched per read (`COUNT`). A subscription holds up to about this many fetched
    /// entries (pending, their idle clock running) until its consumer asks for them. Default 16.
    pub read_count: usize,
    /// Timeout of one connection attempt. Default 2 s.
    pub connect_timeout: Duration,
    /// Timeout of one command (a blocking read gets its block time on top). Default 5 s.
    pub response_timeout: Duration,
}

impl Default for RedisBusOptions {
    fn default() -> Self {
        Self {
            max_len: 1_000_000,
            redeliver_after: Duration::from_secs(30),
            read_count: 16,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
        }
    }
}

/// An [`EventBus`] on one Redis stream, `{key_prefix}events`.
///
/// Each entry holds the prost-encoded envelope in field `e` and its type in field `type`. Groups
/// are Redis consumer groups created at `$` (`XGROUP CREATE ... $ MKSTREAM`), so a group sees what
/// is published after it first subscribed. A subscription first re-reads its consumer's own
/// pending entries (id `0`), then claims entries idle for
/// [`redeliver_after`](RedisBusOptions::redeliver_after) (`XAUTOCLAIM`), then reads new ones
/// (`XREADGROUP ... BLOCK ... >`) on a connection of its own, so blocking reads never delay
/// publishes, which share one [`ConnectionManager`].
///
/// If a group disappears (Redis restarted without persistence, or the stream was deleted), the
/// next read recreates it from the start of the stream, so events published since are not missed.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisBus {
    client: Client,
    manager: ConnectionManager,
    key: Arc<str>,
    opts: RedisBusOptions,
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("key", &self.key)
            .field("opts", &self.opts)
            .finish()
    }
}

impl RedisBus {
    /// Connects to `url` (`redis://host:port[/db]`) with default options; the stream key is
    /// `{key_prefix}events`.
    ///
    /// Fails with kind `Unavailable`, reason [`EVENT_BUS_UNAVAILABLE`], if Redis cannot be reached.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self> {
        Self::connect_with_options(url, key_prefix, RedisBusOptions::default()).await
    }

    /// Like [`connect`](Self::connect), with `opts`.
    pub async fn connect_with_options(
        url: &str,
        key_prefix: &str,
        opts: RedisBusOptions,
    ) -> Result<Self> {
        let client = Client::open(url).map_err(|e| {
            Error::invalid_field(
                "redis_url",
                format!("not a valid Redis URL ({})", e.category()),
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(opts.connect_timeout))
            .set_response_timeout(Some(opts.response_timeout))
            // The relay and the subscriptions retry with their own backoff; fail fast here.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(bus_error)?;
        let bus = Self {
            client,
            manager,
            key: Arc::from(format!("{key_prefix}events")),
            opts,
        };
        let _: Value = bus.query(&redis::cmd("PING")).await?;
        Ok(bus)
    }

    /// The stream key, `{key_prefix}events`.
    pub fn stream_key(&self) -> &str {
        &self.key
    }

    fn xadd(&self, envelope: &EventEnvelope) -> Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&*self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.opts.max_len)
            .arg("*")
            .arg(reply::ENVELOPE_FIELD)
            .arg(envelope.encode_to_vec())
            .arg(reply::TYPE_FIELD)
            .arg(&envelope.r#type);
        cmd
    }

    /// One producer span per published event, in the trace the event carries (its
    /// `traceparent`), so the hop from the writer's request to the bus shows in that trace.
    fn trace_publish(&self, timer: CallTimer, envelopes: &[EventEnvelope], result: &Result<()>) {
        if !client_span::enabled() {
            return;
        }
        for e in envelopes {
            client_span::record(
                &steward_telemetry::context_from_traceparent(&e.traceparent),
                timer,
                Call {
                    name: format!("publish {}", e.r#type),
                    kind: Kind::Producer,
                    attributes: vec![
                        Attribute::new("messaging.system", "redis"),
                        Attribute::new("messaging.operation", "publish"),
                        Attribute::new("messaging.destination.name", self.key.to_string()),
                        Attribute::new("messaging.message.id", e.event_id.clone()),
                        Attribute::new("db.system", "redis"),
                        Attribute::new("db.operation", "XADD"),
                    ],
                    error: result.as_ref().err().map(|e| e.message.clone()),
                },
            );
        }
    }

    async fn query(&self, cmd: &Cmd) -> Result<Value> {
        cmd.query_async(&mut self.manager.clone())
            .await
            .map_err(bus_error)
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, envelope: &EventEnvelope) -> Result<()> {
        let timer = CallTimer::start();
        let result = self.query(&self.xadd(envelope)).await.map(drop);
        self.trace_publish(timer, std::slice::from_ref(envelope), &result);
        result
    }

    async fn publish_batch(&self, envelopes: &[EventEnvelope]) -> Result<()> {
        if envelopes.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for envelope in envelopes {
            pipe.add_command(self.xadd(envelope));
        }
        let timer = CallTimer::start();
        let result = pipe
            .exec_async(&mut self.manager.clone())
            .await
            .map_err(bus_error);
        self.trace_publish(timer, envelopes, &result);
        result
    }

    async fn subscribe(&self, group: &str, consumer: &str) -> Result<Subscription> {
        create_group(&self.manager, &self.key, group, "$").await?;
        Ok(Subscription::new(RedisSubscription::spawn(
            self.clone(),
            group,
            consumer,
        )))
    }

    /// From `XINFO GROUPS`: `lag` (entries not read yet; nil after trimming past the group)
    /// and `pending`. A stream that does not exist yet has no groups.
    async fn group_lags(&self) -> Result<Vec<GroupLag>> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("GROUPS").arg(&*self.key);
        let reply = match cmd.query_async::<Value>(&mut self.manager.clone()).await {
            Ok(v) => v,
            Err(e) if e.to_string().contains("no such key") => return Ok(Vec::new()),
            Err(e) => return Err(bus_error(e)),
        };
        reply::group_lags(reply).map_err(|e| Error::internal(format!("XINFO GROUPS: {e}")))
    }
}

/// `XGROUP CREATE key group start MKSTREAM`; an existing group is fine.
async fn create_group(
    manager: &ConnectionManager,
    key: &str,
    group: &str,
    start: &str,
) -> Result<()> {
    let mut cmd = redis::cmd("XGROUP");
    cmd.arg("CREATE")
        .arg(key)
        .arg(group)
        .arg(start)
        .arg("MKSTREAM");
    match cmd.query_async::<Value>(&mut manager.clone()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(bus_error(e)),
    }
}

/// Maps a Redis error: anything a retry may fix becomes `Unavailable` /
/// [`EVENT_BUS_UNAVAILABLE`]; the rest is an internal fault.
fn bus_error(e: RedisError) -> Error {
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.retry_method(),
            RetryMethod::Reconnect
                | RetryMethod::ReconnectFromInitialConnections
                | RetryMethod::RetryImmediately
                | RetryMethod::WaitAndRetry
        );
    if transient {
        Error::unavailable(
            EVENT_BUS_UNAVAILABLE,
            format!("event bus (Redis) is unavailable: {e}"),
        )
    } else {
        Error::internal(format!("event bus (Redis) command failed: {e}"))
    }
}

/// Whether `e` came from [`bus_error`] for a transient failure.
fn is_unavailable(e: &Error) -> bool {
    e.reason == EVENT_BUS_UNAVAILABLE
}
