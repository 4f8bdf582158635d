//! Retry timing: jittered exponential backoff that honours a retry-after hint, and the invocation
//! deadline that no retry may outlive.

use std::time::Duration;

use tokio::time::Instant;

/// Backoff for transient Invoke failures ("full jitter": a random delay up to an exponentially
/// growing cap, so throttled routers spread out instead of retrying in lockstep).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per record, the first included.
    pub max_attempts: u32,
    /// Cap of the first retry's delay.
    pub base_delay: Duration,
    /// Largest cap.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Delay before retry number `retry` (1 for the first retry). A `retry_after` hint from the
    /// service is a floor: the router never comes back sooner than it was asked to.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let cap = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        let jittered = Duration::from_micros(fastrand::u64(0..=cap.as_micros() as u64));
        match retry_after {
            Some(hint) => jittered.max(hint),
            None => jittered,
        }
    }
}

/// When the invocation must have answered, and the margin kept free before it.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    margin: Duration,
}

impl Deadline {
    /// A deadline at `at`, keeping `margin` free for answering.
    pub fn new(at: Instant, margin: Duration) -> Self {
        Self { at, margin }
    }

    /// A deadline `after` from now.
    pub fn after(after: Duration, margin: Duration) -> Self {
        Self::new(Instant::now() + after, margin)
    }

    /// Time left for work: until the deadline minus the margin.
    pub fn remaining(&self) -> Duration {
        self.at
            .checked_sub(self.margin)
            .map(|cutoff| cutoff.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }

    /// Whether new work may still start.
    pub fn can_start(&self) -> bool {
        !self.remaining().is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
    };

    #[test]
    fn delays_stay_under_an_exponential_cap() {
        for _ in 0..200 {
            assert!(POLICY.delay(1, None) <= Duration::from_millis(100));
            assert!(POLICY.delay(3, None) <= Duration::from_millis(400));
            assert!(POLICY.delay(30, None) <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn delays_are_jittered() {
        let delays: std::collections::HashSet<_> = (0..50).map(|_| POLICY.delay(4, None)).collect();
        assert!(delays.len() > 10);
    }

    #[test]
    fn retry_after_is_a_floor() {
        for _ in 0..50 {
            assert!(POLICY.delay(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        }
    }

    #[test]
    fn deadline_margin() {
        let d = Deadline::after(Duration::from_millis(50), Duration::from_millis(100));
        assert!(!d.can_start());
        let d = Deadline::after(Duration::from_secs(10), Duration::from_millis(100));
        assert!(d.can_start());
        assert!(d.remaining() <= Duration::from_millis(9900));
    }
}
