//! What routing one batch needs besides its records: the backend seam, the identity rules, the
//! settings, the invocation and the source's ordering ([`RouteContext`]), and the counters of
//! its Invoke attempts ([`BatchStats`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use shared::Source;

use super::identity::Identity;
use crate::config::{Config, InvocationType};
use crate::invocation::InvocationInfo;
use crate::record::Ordering;

/// Everything routing a batch needs besides the records.
pub struct RouteContext<'a, B> {
    /// Where Invokes and quarantined records go.
    pub backend: &'a B,
    /// How tenants are proven.
    pub identity: &'a Identity,
    /// Router settings.
    pub config: &'a Config,
    /// The invocation: its deadline and processing time (deferred records are decoded with it).
    pub info: &'a InvocationInfo,
    /// The batch's source, for logs and the quarantine queue.
    pub source: Source,
    /// The source's ordering rules.
    pub ordering: Ordering,
    /// How this batch's records are sent (`ROUTER_INVOCATION_TYPE` for its source).
    pub invocation: InvocationType,
    /// Where attempts are counted.
    pub stats: &'a BatchStats,
}

/// Counters of one batch's Invoke attempts, for its metrics.
#[derive(Debug, Default)]
pub struct BatchStats {
    attempts: AtomicU64,
    retries: AtomicU64,
    latencies_ms: Mutex<Vec<f64>>,
}

impl BatchStats {
    /// Counts attempt number `number` (1 for the first), which took `took`.
    pub fn attempt(&self, number: u32, took: Duration) {
        self.attempts.fetch_add(1, AtomicOrdering::Relaxed);
        if number > 1 {
            self.retries.fetch_add(1, AtomicOrdering::Relaxed);
        }
        self.latencies_ms
            .lock()
            .expect("stats lock")
            .push(took.as_secs_f64() * 1000.0);
    }

    /// Invoke attempts made.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(AtomicOrdering::Relaxed)
    }

    /// Attempts that were retries.
    pub fn retries(&self) -> u64 {
        self.retries.load(AtomicOrdering::Relaxed)
    }

    /// The duration of every attempt, in milliseconds.
    pub fn latencies_ms(&self) -> Vec<f64> {
        self.latencies_ms.lock().expect("stats lock").clone()
    }
}
