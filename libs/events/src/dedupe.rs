//! [`Deduper`]: drops events a consumer has already seen, by event id.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// Remembers the last `capacity` event ids and tells whether an id is new.
///
/// The bus delivers at least once, so a consumer can see an event twice (redelivery after a
/// crash or an ack that did not reach the bus, or the outbox relay publishing again after a
/// failure). At-least-once delivery plus this dedupe gives *effectively once per consumer
/// process*, within the window of the last `capacity` ids. It is in memory: after a restart the
/// window is empty. A consumer whose side effects must not repeat across restarts keeps a durable
/// record instead (for example a processed-events table written in the same transaction as the
/// effect, keyed by event id), with the same shape: "first time? then do it and remember it".
///
/// ```
/// let mut seen = steward_events::Deduper::new(2);
/// assert!(seen.first_time("a"));
/// assert!(!seen.first_time("a"));
/// ```
#[derive(Debug, Clone)]
pub struct Deduper {
    capacity: usize,
    seen: HashSet<Arc<str>>,
    order: VecDeque<Arc<str>>,
}

impl Deduper {
    /// A deduper remembering up to `capacity` ids (at least 1); the oldest id is forgotten first.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            seen: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
        }
    }

    /// Returns `true` the first time `event_id` is seen (and remembers it), `false` for a repeat
    /// within the window.
    pub fn first_time(&mut self, event_id: &str) -> bool {
        if self.seen.contains(event_id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        let id: Arc<str> = Arc::from(event_id);
        self.seen.insert(id.clone());
        self.order.push_back(id);
        true
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered yet.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The most ids remembered at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn repeats_are_dropped_and_oldest_forgotten() {
        let mut d = Deduper::new(2);
        assert!(d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(!d.first_time("a"));
        assert!(!d.first_time("b"));
        assert!(d.first_time("c")); // forgets "a"
        assert_eq!(d.len(), 2);
        assert!(d.first_time("a"));
        assert!(!d.first_time("c"));
    }

    #[test]
    fn zero_capacity_still_dedupes_consecutive_repeats() {
        let mut d = Deduper::new(0);
        assert_eq!(d.capacity(), 1);
        assert!(d.first_time("x"));
        assert!(!d.first_time("x"));
    }

    proptest! {
        /// Matches a naive model: an id is a repeat iff it is among the last `cap` distinct ids
        /// admitted.
        #[test]
        fn matches_model(cap in 1usize..8, ids in proptest::collection::vec(0u8..12, 0..200)) {
            let mut d = Deduper::new(cap);
            let mut model: Vec<String> = Vec::new();
            for id in ids {
                let id = id.to_string();
                let expected = !model.contains(&id);
                if expected {
                    model.push(id.clone());
                    if model.len() > cap {
                        model.remove(0);
                    }
                }
                prop_assert_eq!(d.first_time(&id), expected);
                prop_assert!(d.len() <= cap);
            }
        }
    }
}
