//! The outbox side the relay reads: [`OutboxStore`] and [`OutboxRecord`].

use async_trait::async_trait;
use steward_common::Result;
use steward_proto::events::EventEnvelope;

/// One outbox row: an event written in the same transaction as the change it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// Row id; ids grow with commit order (for example an auto-increment key).
    pub id: i64,
    /// The event to publish.
    pub envelope: EventEnvelope,
}

/// The outbox table, as the [`Relay`](crate::Relay) sees it. Implemented by the storage layer.
///
/// Several relays may read the same outbox (replicas of one service); that is safe but can
/// publish a row twice, which the at-least-once contract allows and consumers dedupe.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Up to `limit` rows not yet marked published, in ascending `id` order.
    async fn fetch_pending(&self, limit: usize) -> Result<Vec<OutboxRecord>>;

    /// Marks these rows published (or deletes them); unknown or already marked ids are ignored.
    async fn mark_published(&self, ids: &[i64]) -> Result<()>;
}
