//! The outbox [`Relay`]: publishes committed outbox rows to the bus, in order, at least once.

use std::sync::Arc;
use std::time::Duration;

use steward_common::{Error, Result};
use steward_proto::events::EventEnvelope;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::backoff::{Backoff, Outage};
use crate::bus::EventBus;
use crate::outbox::OutboxStore;

/// First delay after a failure; it doubles up to [`RelayOptions::max_backoff`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// Settings of a [`Relay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayOptions {
    /// Most rows fetched and published at once. Default 500.
    pub batch_size: usize,
    /// How often the outbox is polled when no [`notify`](RelayHandle::notify) comes. Default
    /// 500 ms.
    pub poll_interval: Duration,
    /// Longest wait between retries while the bus or the store fails. Default 5 s.
    pub max_backoff: Duration,
    /// How long [`shutdown`](RelayHandle::shutdown) tries a final drain. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Least time between the starts of two drains on notification. Under a steady stream of
    /// commits (a busy decision writer commits hundreds of times a second) notifications that
    /// come sooner wait for it, so one drain publishes the events of several commits instead
    /// of each commit paying for a fetch and a delete transaction. A notification after a
    /// quiet spell drains at once. Default 10 ms.
    pub min_drain_interval: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            min_drain_interval: Duration::from_millis(10),
        }
    }
}

/// Publishes outbox rows to the bus, in id order, and marks them published once the bus has
/// accepted them.
///
/// It runs as a tokio task: it drains the outbox when [notified](RelayHandle::notify) (right after
/// a commit) and every [`poll_interval`](RelayOptions::poll_interval). When the bus or the store
/// fails it logs a warning once per outage (and once when it is over), retries with exponential
/// backoff up to [`max_backoff`](RelayOptions::max_backoff), and resumes where it stopped: rows
/// stay pending until published, so nothing is lost. A row can be published twice (the bus
/// accepted it but marking it failed, or the relay stopped in between): at least once.
///
/// A panic in the store or the bus ends the relay; [`RelayHandle::shutdown`] then reports it.
pub struct Relay {
    store: Arc<dyn OutboxStore>,
    bus: Arc<dyn EventBus>,
    opts: RelayOptions,
    backoff: Backoff,
    outage: Outage,
    /// When the last drain started.
    last_drain: Option<tokio::time::Instant>,
}

enum Command {
    Flush(oneshot::Sender<Result<()>>),
    Shutdown,
}

impl Relay {
    /// Starts the relay on the current tokio runtime. It drains the outbox once right away.
    ///
    /// Dropping the returned handle stops the relay without a final drain; call
    /// [`RelayHandle::shutdown`] to stop it cleanly.
    pub fn spawn(
        store: Arc<dyn OutboxStore>,
        bus: Arc<dyn EventBus>,
        opts: RelayOptions,
    ) -> RelayHandle {
        let notify = Arc::new(Notify::new());
        notify.notify_one();
        let (commands, receiver) = mpsc::channel(8);
        let relay = Self {
            store,
            bus,
            backoff: Backoff::new(INITIAL_BACKOFF, opts.max_backoff),
            outage: Outage::new("outbox relay"),
            opts,
            last_drain: None,
        };
        let task = tokio::spawn(
            relay
                .run(notify.clone(), receiver)
                .instrument(tracing::info_span!("outbox_relay")),
        );
        RelayHandle {
            notifier: RelayNotifier { notify },
            commands,
            task,
        }
    }

    async fn run(
        mut self,
        notify: Arc<Notify>,
        mut commands: mpsc::Receiver<Command>,
    ) -> Result<()> {
        let poll_interval = self.opts.poll_interval.max(Duration::from_millis(1));
        // A notification that came sooner than `min_drain_interval` after the last drain
        // started: the drain is due then (commands are still served meanwhile).
        let mut deferred = false;
        loop {
            let backing_off = self.backoff.current();
            let due = self
                .last_drain
                .map_or_else(tokio::time::Instant::now, |last| {
                    last + self.opts.min_drain_interval
                });
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    None => return Ok(()),
                    Some(Command::Flush(reply)) => {
                        deferred = false;
                        let result = self.attempt().await;
                        let _ = reply.send(result);
                    }
                    Some(Command::Shutdown) => return self.final_drain().await,
                },
                // While backing off, a commit's notification waits (its permit is kept) until the
                // backoff delay is over, so a down bus is not hammered once per commit.
                () = notify.notified(), if backing_off.is_none() && !deferred => {
                    if tokio::time::Instant::now() < due {
                        deferred = true;
                    } else {
                        let _ = self.attempt().await;
                    }
                }
                () = tokio::time::sleep_until(due), if deferred && backing_off.is_none() => {
                    deferred = false;
                    let _ = self.attempt().await;
                }
                () = tokio::time::sleep(backing_off.unwrap_or(poll_interval)) => {
                    deferred = false;
                    let _ = self.attempt().await;
                }
            }
        }
    }

    async fn final_drain(&mut self) -> Result<()> {
        match tokio::time::timeout(self.opts.shutdown_timeout, self.attempt()).await {
            Ok(result) => result,
            Err(_) => Err(Error::unavailable(
                "OUTBOX_RELAY_SHUTDOWN_TIMEOUT",
                "the outbox relay stopped before it could publish every pending event; they are \
                 published when it runs again",
            )),
        }
    }

    /// One drain, with outage bookkeeping.
    async fn attempt(&mut self) -> Result<()> {
        self.last_drain = Some(tokio::time::Instant::now());
        let result = self.drain().await;
        match &result {
            Ok(()) => {
                self.outage.succeeded();
                self.backoff.reset();
            }
            Err(e) => {
                self.outage.failed(e);
                self.backoff.next_delay();
            }
        }
        result
    }

    /// Publishes batches until the outbox has nothing pending (a batch shorter than the batch
    /// size).
    async fn drain(&self) -> Result<()> {
        let batch_size = self.opts.batch_size.max(1);
        loop {
            let mut records = self.store.fetch_pending(batch_size).await?;
            if records.is_empty() {
                return Ok(());
            }
            let full = records.len() >= batch_size;
            records.sort_by_key(|r| r.id);
            let (ids, envelopes): (Vec<i64>, Vec<EventEnvelope>) =
                records.into_iter().map(|r| (r.id, r.envelope)).unzip();
            self.bus.publish_batch(&envelopes).await?;
            self.store.mark_published(&ids).await?;
            tracing::debug!(
                count = ids.len(),
                last_id = ids.last(),
                "relayed outbox events"
            );
            if !full {
                return Ok(());
            }
        }
    }
}

/// Wakes a [`Relay`] after a commit. Cheap to clone; give one to every code path that writes the
/// outbox. It does not keep the relay running.
#[derive(Debug, Clone)]
pub struct RelayNotifier {
    notify: Arc<Notify>,
}

impl RelayNotifier {
    /// Tells the relay the outbox has new rows, so it drains it now instead of at the next poll.
    /// Several notifications before the relay wakes count as one.
    pub fn notify(&self) {
        self.notify.notify_one();
    }
}

/// Controls a running [`Relay`].
#[derive(Debug)]
pub struct RelayHandle {
    notifier: RelayNotifier,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<Result<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Flush(_) => "Flush",
            Command::Shutdown => "Shutdown",
        })
    }
}

impl RelayHandle {
    /// Wakes the relay; see [`RelayNotifier::notify`].
    pub fn notify(&self) {
        self.notifier.notify();
    }

    /// A notifier for code that only needs to wake the relay.
    pub fn notifier(&self) -> RelayNotifier {
        self.notifier.clone()
    }

    /// Drains the outbox now and returns once everything pending at the time of the call has been
    /// published, or with the first error (bus or store unavailable). For tests and tools.
    pub async fn flush(&self) -> Result<()> {
        let (reply, result) = oneshot::channel();
        self.commands
            .send(Command::Flush(reply))
            .await
            .map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }

    /// Stops the relay after a final drain attempt bounded by
    /// [`shutdown_timeout`](RelayOptions::shutdown_timeout). Returns that drain's outcome: an
    /// error means some events are still pending in the outbox (they are published by the next
    /// relay to run).
    pub async fn shutdown(self) -> Result<()> {
        // If the task already ended, the send fails and the join below reports why.
        let _ = self.commands.send(Command::Shutdown).await;
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(Error::internal(format!("outbox relay task failed: {e}"))),
        }
    }
}

fn stopped() -> Error {
    Error::failed_precondition("OUTBOX_RELAY_STOPPED", "the outbox relay has stopped")
}
