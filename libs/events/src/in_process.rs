//! [`InProcessBus`]: the event bus of embedded mode, inside one process, on tokio.

mod group;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use steward_common::Result;
use steward_proto::events::EventEnvelope;

use crate::bus::{Acker, Delivery, EventBus, GroupLag, Subscription, SubscriptionSource};
use group::{Group, Take};

/// Settings of an [`InProcessBus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InProcessOptions {
    /// Most events a group retains (undelivered plus delivered-but-unacked). Beyond it the oldest
    /// are dropped, with a warning. Default 100 000.
    pub max_retained: usize,
    /// An unacked delivery is handed out again once it has been idle this long. Default 30 s.
    pub redeliver_after: Duration,
}

impl Default for InProcessOptions {
    fn default() -> Self {
        Self {
            max_retained: 100_000,
            redeliver_after: Duration::from_secs(30),
        }
    }
}

/// An [`EventBus`] inside one process, with the same consumer-group semantics as the Redis one.
///
/// - A group receives every event published after it was first subscribed to; groups live as
///   long as the bus.
/// - Unacked deliveries are redelivered the same way as on Redis: once idle for
///   [`redeliver_after`](InProcessOptions::redeliver_after) (to whichever consumer of the group
///   asks next), and to their own consumer right away when it subscribes again under the same
///   name. Dropping a [`Delivery`] does not redeliver it sooner, so code tested here behaves the
///   same on Redis.
/// - Memory is bounded: each group retains at most
///   [`max_retained`](InProcessOptions::max_retained) events and drops the oldest beyond that,
///   logging a warning (at most every 10 s per group). Nothing survives a restart; durability
///   comes from the outbox, which the relay publishes again after a crash.
///
/// Cloning is cheap and shares the bus.
#[derive(Debug, Clone, Default)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    opts: InProcessOptions,
    groups: Mutex<Groups>,
}

#[derive(Debug, Default)]
struct Groups {
    by_name: HashMap<String, Arc<Group>>,
    next_seq: u64,
}

impl InProcessBus {
    /// A bus with default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// A bus with `opts`.
    pub fn with_options(opts: InProcessOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                opts,
                groups: Mutex::default(),
            }),
        }
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, Groups> {
        self.inner
            .groups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, envelope: &EventEnvelope) -> Result<()> {
        let envelope = Arc::new(envelope.clone());
        // Fan out under the groups lock, so a group created concurrently either gets the event or
        // was created after it was published.
        let mut groups = self.groups();
        groups.next_seq += 1;
        let seq = groups.next_seq;
        for group in groups.by_name.values() {
            group.push(seq, envelope.clone());
        }
        Ok(())
    }

    async fn subscribe(&self, group: &str, consumer: &str) -> Result<Subscription> {
        let opts = self.inner.opts;
        let group = self
            .groups()
            .by_name
            .entry(group.to_owned())
            .or_insert_with(|| Arc::new(Group::new(group, opts.max_retained, opts.redeliver_after)))
            .clone();
        Ok(Subscription::new(InProcessSubscription {
            group,
            consumer: Arc::from(consumer),
            replay: Some(0),
        }))
    }

    async fn group_lags(&self) -> Result<Vec<GroupLag>> {
        let mut lags: Vec<GroupLag> = self
            .groups()
            .by_name
            .iter()
            .map(|(name, g)| {
                let (undelivered, pending) = g.lag();
                GroupLag {
                    group: name.clone(),
                    undelivered: Some(undelivered),
                    pending,
                }
            })
            .collect();
        lags.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(lags)
    }
}

struct InProcessSubscription {
    group: Arc<Group>,
    consumer: Arc<str>,
    /// While `Some(seq)`: still re-reading this consumer's own pending events after `seq`.
    replay: Option<u64>,
}

#[async_trait]
impl SubscriptionSource for InProcessSubscription {
    async fn next(&mut self) -> Result<Delivery> {
        loop {
            let notified = self.group.notify.notified();
            tokio::pin!(notified);
            // Register before looking, so a push between the look and the wait is not missed.
            notified.as_mut().enable();
            match self.group.take(&self.consumer, &mut self.replay) {
                Take::Ready(seq, envelope, redelivered) => {
                    let acker = InProcessAcker {
                        group: self.group.clone(),
                        seq,
                    };
                    let envelope = Arc::unwrap_or_clone(envelope);
                    return Ok(Delivery::new(envelope, redelivered, acker));
                }
                Take::Wait(Some(deadline)) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                Take::Wait(None) => notified.await,
            }
        }
    }
}

struct InProcessAcker {
    group: Arc<Group>,
    seq: u64,
}

#[async_trait]
impl Acker for InProcessAcker {
    async fn ack(self: Box<Self>) -> Result<()> {
        self.group.ack(self.seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> EventEnvelope {
        EventEnvelope {
            event_id: format!("{n:032x}"),
            r#type: "test".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn full_group_drops_oldest() {
        let bus = InProcessBus::with_options(InProcessOptions {
            max_retained: 3,
            redeliver_after: Duration::from_secs(60),
        });
        let mut sub = bus.subscribe("g", "c").await.unwrap();
        for n in 1..=5 {
            bus.publish(&event(n)).await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            let d = sub.next().await.unwrap();
            got.push(d.envelope.event_id.clone());
            d.ack().await.unwrap();
        }
        assert_eq!(
            got,
            vec![event(3).event_id, event(4).event_id, event(5).event_id]
        );
        let more = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
        assert!(more.is_err(), "nothing beyond the retained events");
    }

    #[tokio::test]
    async fn unacked_deliveries_count_against_the_limit() {
        let bus = InProcessBus::with_options(InProcessOptions {
            max_retained: 2,
            redeliver_after: Duration::from_millis(1),
        });
        let mut sub = bus.subscribe("g", "c").await.unwrap();
        bus.publish(&event(1)).await.unwrap();
        let first = sub.next().await.unwrap(); // pending, never acked
        assert_eq!(first.envelope.event_id, event(1).event_id);
        bus.publish(&event(2)).await.unwrap();
        bus.publish(&event(3)).await.unwrap(); // evicts the pending event 1
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut got = Vec::new();
        for _ in 0..2 {
            let d = sub.next().await.unwrap();
            got.push(d.envelope.event_id.clone());
            d.ack().await.unwrap();
        }
        assert_eq!(got, vec![event(2).event_id, event(3).event_id]);
        first.ack().await.unwrap(); // acking a dropped event is harmless
    }
}
