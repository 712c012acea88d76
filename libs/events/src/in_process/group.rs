//! One consumer group of the in-process bus: its backlog, its pending deliveries, and the
//! redelivery deadlines.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use steward_proto::events::EventEnvelope;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How often, at most, a group logs that it dropped events for lack of room.
const DROP_WARN_EVERY: Duration = Duration::from_secs(10);

/// A consumer group. Shared by the bus (which pushes) and the group's subscriptions (which take).
#[derive(Debug)]
pub(super) struct Group {
    name: String,
    max_retained: usize,
    redeliver_after: Duration,
    state: Mutex<State>,
    /// Woken on every push, so waiting consumers look again.
    pub(super) notify: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Events not yet handed to any consumer, oldest first.
    backlog: VecDeque<(u64, Arc<EventEnvelope>)>,
    /// Events handed out and not acked, by sequence number.
    pending: BTreeMap<u64, Pending>,
    /// `(deadline, seq, delivery number)` per delivery, in deadline order. Entries whose pending
    /// event was acked or delivered again since are stale and skipped.
    deadlines: VecDeque<(Instant, u64, u32)>,
    dropped_since_warn: u64,
    last_drop_warn: Option<Instant>,
}

#[derive(Debug)]
struct Pending {
    consumer: Arc<str>,
    envelope: Arc<EventEnvelope>,
    deliveries: u32,
}

/// What [`Group::take`] found.
pub(super) enum Take {
    /// An event for the consumer: `(seq, envelope, redelivered)`.
    Ready(u64, Arc<EventEnvelope>, bool),
    /// Nothing now; look again when notified or, if given, at this instant (a redelivery is due).
    Wait(Option<Instant>),
}

impl Group {
    pub(super) fn new(name: &str, max_retained: usize, redeliver_after: Duration) -> Self {
        Self {
            name: name.to_owned(),
            max_retained: max_retained.max(1),
            redeliver_after,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent in a way that
        // matters more than losing the bus, so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends an event, dropping the oldest retained ones beyond `max_retained`.
    pub(super) fn push(&self, seq: u64, envelope: Arc<EventEnvelope>) {
        let mut st = self.state();
        st.backlog.push_back((seq, envelope));
        while st.backlog.len() + st.pending.len() > self.max_retained {
            let oldest_backlog = st.backlog.front().map(|(s, _)| *s);
            let oldest_pending = st.pending.keys().next().copied();
            match (oldest_backlog, oldest_pending) {
                (Some(b), Some(p)) if p < b => {
                    st.pending.remove(&p);
                }
                (Some(_), _) => {
                    st.backlog.pop_front();
                }
                (None, Some(p)) => {
                    st.pending.remove(&p);
                }
                (None, None) => break,
            }
            st.dropped_since_warn += 1;
        }
        if st.dropped_since_warn > 0
            && st
                .last_drop_warn
                .is_none_or(|at| at.elapsed() >= DROP_WARN_EVERY)
        {
            tracing::warn!(
                group = %self.name,
                dropped = st.dropped_since_warn,
                max_retained = self.max_retained,
                "in-process event bus: group full, dropped oldest events (consumers slow or gone)"
            );
            st.dropped_since_warn = 0;
            st.last_drop_warn = Some(Instant::now());
        }
        drop(st);
        self.notify.notify_waiters();
    }

    /// `(events not handed out yet, events handed out and not acked)`.
    pub(super) fn lag(&self) -> (u64, u64) {
        let st = self.state();
        (st.backlog.len() as u64, st.pending.len() as u64)
    }

    /// Takes the next event for `consumer`: first its own pending events after `*replay` (while
    /// `replay` is `Some`), then any delivery idle past the redelivery timeout, then a new event.
    pub(super) fn take(&self, consumer: &Arc<str>, replay: &mut Option<u64>) -> Take {
        let mut st = self.state();
        let now = Instant::now();
        if let Some(after) = *replay {
            let own = st
                .pending
                .range((Bound::Excluded(after), Bound::Unbounded))
                .find(|(_, p)| p.consumer == *consumer)
                .map(|(seq, _)| *seq);
            match own {
                Some(seq) => {
                    *replay = Some(seq);
                    return self.deliver(&mut st, seq, consumer, now, true);
                }
                None => *replay = None,
            }
        }
        st.prune_stale_deadlines();
        if let Some(&(deadline, seq, _)) = st.deadlines.front()
            && deadline <= now
        {
            st.deadlines.pop_front();
            return self.deliver(&mut st, seq, consumer, now, true);
        }
        if let Some((seq, envelope)) = st.backlog.pop_front() {
            st.pending.insert(
                seq,
                Pending {
                    consumer: consumer.clone(),
                    envelope,
                    deliveries: 0,
                },
            );
            return self.deliver(&mut st, seq, consumer, now, false);
        }
        Take::Wait(st.deadlines.front().map(|(deadline, _, _)| *deadline))
    }

    fn deliver(
        &self,
        st: &mut State,
        seq: u64,
        consumer: &Arc<str>,
        now: Instant,
        redelivered: bool,
    ) -> Take {
        let Some(p) = st.pending.get_mut(&seq) else {
            // Callers only pass sequence numbers they just found in `pending`.
            return Take::Wait(None);
        };
        p.consumer = consumer.clone();
        p.deliveries += 1;
        let envelope = p.envelope.clone();
        let delivery = p.deliveries;
        st.deadlines
            .push_back((now + self.redeliver_after, seq, delivery));
        Take::Ready(seq, envelope, redelivered)
    }

    /// Acknowledges `seq`: it will not be delivered again. Unknown ids are ignored (already acked
    /// or dropped for lack of room).
    pub(super) fn ack(&self, seq: u64) {
        let mut st = self.state();
        st.pending.remove(&seq);
        st.prune_stale_deadlines();
    }
}

impl State {
    fn prune_stale_deadlines(&mut self) {
        while let Some(&(_, seq, delivery)) = self.deadlines.front() {
            match self.pending.get(&seq) {
                Some(p) if p.deliveries == delivery => break,
                _ => {
                    self.deadlines.pop_front();
                }
            }
        }
    }
}
