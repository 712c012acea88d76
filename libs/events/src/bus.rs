//! The [`EventBus`] trait and the types a subscriber sees: [`Subscription`] and [`Delivery`].

use std::fmt;

use async_trait::async_trait;
use steward_common::Result;
use steward_proto::events::EventEnvelope;

/// A bus that fans events out to consumer groups, at least once.
///
/// Semantics every implementation keeps (the shared test suite checks them):
/// - A group receives every event published *after* the group was first created (by the first
///   [`subscribe`](EventBus::subscribe) naming it). Groups outlive their subscriptions.
/// - Within a group each event goes to one consumer.
/// - At least once: a [`Delivery`] that is not [acked](Delivery::ack) is delivered again, to any
///   consumer of the group, once it has been idle for the bus's redelivery timeout; and a consumer
///   that subscribes again under the same name first re-reads the deliveries it still holds.
///   Consumers therefore dedupe on `event_id` (see [`Deduper`](crate::Deduper)).
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes one event. Returns once the bus has accepted it.
    ///
    /// Fails with kind `Unavailable` (reason `EVENT_BUS_UNAVAILABLE`) when the bus cannot be
    /// reached; the caller may retry (which can duplicate the event).
    async fn publish(&self, envelope: &EventEnvelope) -> Result<()>;

    /// Publishes several events, in order. On error some of them may have been published.
    ///
    /// The default publishes them one by one; implementations may batch.
    async fn publish_batch(&self, envelopes: &[EventEnvelope]) -> Result<()> {
        for envelope in envelopes {
            self.publish(envelope).await?;
        }
        Ok(())
    }

    /// Joins consumer group `group` as consumer `consumer`, creating the group if it is new.
    async fn subscribe(&self, group: &str, consumer: &str) -> Result<Subscription>;

    /// How far behind each consumer group is, for operator metrics, by group name.
    async fn group_lags(&self) -> Result<Vec<GroupLag>>;
}

/// How far behind one consumer group is ([`EventBus::group_lags`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    /// The group.
    pub group: String,
    /// Events published that no consumer of the group has read yet; `None` when the bus cannot
    /// tell (Redis reports no lag after the stream was trimmed past the group).
    pub undelivered: Option<u64>,
    /// Events read by a consumer but not acked yet.
    pub pending: u64,
}

/// The stream of deliveries of one consumer in one group, returned by [`EventBus::subscribe`].
pub struct Subscription {
    source: Box<dyn SubscriptionSource>,
}

impl Subscription {
    /// Wraps a bus implementation's source of deliveries.
    pub fn new(source: impl SubscriptionSource) -> Self {
        Self {
            source: Box::new(source),
        }
    }

    /// Waits for the next delivery.
    ///
    /// Cancel safe: a `next` future dropped before it completes loses no event (useful in
    /// `select!` with a shutdown signal). Transient bus outages are retried inside, with backoff,
    /// logged once per outage; an error here is a fault that retrying right away will not fix.
    pub async fn next(&mut self) -> Result<Delivery> {
        self.source.next().await
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

/// The per-consumer side of an [`EventBus`] implementation, behind [`Subscription`].
#[async_trait]
pub trait SubscriptionSource: Send + 'static {
    /// Waits for the next delivery; see [`Subscription::next`], whose contract (cancel safety
    /// included) implementations keep.
    async fn next(&mut self) -> Result<Delivery>;
}

/// Acknowledges one delivery on the bus it came from; behind [`Delivery::ack`].
#[async_trait]
pub trait Acker: Send + Sync + 'static {
    /// Marks the delivery as processed so it is not delivered again.
    async fn ack(self: Box<Self>) -> Result<()>;
}

/// One event handed to one consumer. Ack it once it has been processed.
///
/// Dropping a delivery without acking it leaves it pending: it is delivered again after the
/// bus's redelivery timeout.
pub struct Delivery {
    /// The event.
    pub envelope: EventEnvelope,
    redelivered: bool,
    acker: Box<dyn Acker>,
}

impl Delivery {
    /// A delivery of `envelope`; `redelivered` says whether it was handed out before.
    pub fn new(envelope: EventEnvelope, redelivered: bool, acker: impl Acker) -> Self {
        Self {
            envelope,
            redelivered,
            acker: Box::new(acker),
        }
    }

    /// Whether this event may have been delivered before (to this or another consumer).
    pub fn is_redelivery(&self) -> bool {
        self.redelivered
    }

    /// Acknowledges the delivery: the group will not deliver it again.
    ///
    /// If this fails (bus unavailable) the event stays pending and is redelivered later.
    pub async fn ack(self) -> Result<()> {
        self.acker.ack().await
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("event_id", &self.envelope.event_id)
            .field("type", &self.envelope.r#type)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}
