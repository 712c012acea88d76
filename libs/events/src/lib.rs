//! Steward's domain events on the wire: the event bus, consumer-side dedupe and the outbox relay.
//!
//! Every domain event is one [`EventEnvelope`](steward_proto::events::EventEnvelope). A service
//! writes it to its outbox in the same database transaction as the change; a [`Relay`] publishes
//! outbox rows to an [`EventBus`] after commit, so a bus outage never fails a write and nothing
//! committed is lost. Buses deliver to consumer groups at least once; consumers dedupe on
//! `event_id` (see [`Deduper`]). The envelope carries the W3C `traceparent` of the request that
//! caused it; consumers restore the trace context from it.
//!
//! Two buses with the same semantics (one shared test suite runs against both):
//! - [`InProcessBus`] for embedded mode (one process, nothing to run);
//! - [`RedisBus`] for distributed mode (Redis Streams consumer groups).

#![warn(missing_docs)]

mod backoff;
mod bus;
mod dedupe;
mod in_process;
mod outbox;
mod redis_bus;
mod relay;

pub use bus::{Acker, Delivery, EventBus, GroupLag, Subscription, SubscriptionSource};
pub use dedupe::Deduper;
pub use in_process::{InProcessBus, InProcessOptions};
pub use outbox::{OutboxRecord, OutboxStore};
pub use redis_bus::{EVENT_BUS_UNAVAILABLE, RedisBus, RedisBusOptions};
pub use relay::{Relay, RelayHandle, RelayNotifier, RelayOptions};
