//! Exponential backoff and once-per-outage logging, shared by the relay and the Redis reader.

use std::time::Duration;

use steward_common::Error;
use tokio::time::Instant;

/// Exponential backoff: `initial`, doubling, capped at `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    current: Option<Duration>,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(Duration::from_millis(1));
        Self {
            initial: initial.clamp(Duration::from_millis(1), max),
            max,
            current: None,
        }
    }

    /// The delay before the next attempt, growing with each call until [`reset`](Self::reset).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let next = match self.current {
            None => self.initial,
            Some(d) => d.saturating_mul(2).min(self.max),
        };
        self.current = Some(next);
        next
    }

    /// The delay currently in force, if backing off.
    pub(crate) fn current(&self) -> Option<Duration> {
        self.current
    }

    /// Back to no delay after a success.
    pub(crate) fn reset(&mut self) {
        self.current = None;
    }
}

/// Tracks one outage of a dependency so it is logged once when it starts (WARN) and once when it
/// ends (INFO), not on every retry.
#[derive(Debug)]
pub(crate) struct Outage {
    what: &'static str,
    down: Option<(Instant, u64)>,
}

impl Outage {
    pub(crate) fn new(what: &'static str) -> Self {
        Self { what, down: None }
    }

    /// Records a failed attempt; logs a warning only for the first one of an outage.
    pub(crate) fn failed(&mut self, error: &Error) {
        match &mut self.down {
            Some((_, attempts)) => {
                *attempts += 1;
                tracing::debug!(
                    component = self.what,
                    error = %error,
                    attempts = *attempts,
                    "still failing; retrying with backoff"
                );
            }
            None => {
                self.down = Some((Instant::now(), 1));
                tracing::warn!(
                    component = self.what,
                    error = %error,
                    "outage started; retrying with backoff (logged once per outage)"
                );
            }
        }
    }

    /// Records a success; logs the end of the outage if there was one.
    pub(crate) fn succeeded(&mut self) {
        if let Some((since, attempts)) = self.down.take() {
            tracing::info!(
                component = self.what,
                down_for = ?since.elapsed(),
                failed_attempts = attempts,
                "outage over"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let got: Vec<_> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.current(), None);
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn initial_is_capped_by_max() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_millis(20));
        assert_eq!(b.next_delay(), Duration::from_millis(20));
    }
}
