//! What happened to one event ([`BatchReport`]): each record's outcome, the response sent back,
//! and the Invoke counters. The metrics document and the tests read it.

use serde_json::Value;
use shared::Source;

use crate::config::InvocationType;
use crate::outcome::Outcome;

/// What happened to one event: each record's outcome and the response sent back.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// The event's source (`None` for an empty batch).
    pub source: Option<Source>,
    /// How its records were sent (`None` for an empty batch). With `request-response`, an
    /// `invoked` record is one the backend processed.
    pub invocation: Option<InvocationType>,
    /// Record identifiers, in batch order.
    pub ids: Vec<String>,
    /// The tenant id each record claimed (proven only if it was invoked), in batch order.
    pub tenants: Vec<Option<String>>,
    /// One outcome per record, in batch order.
    pub outcomes: Vec<Outcome>,
    /// The response the event source mapping receives.
    pub response: Value,
    /// Invoke attempts made (retries included).
    pub attempts: u64,
    /// Invoke attempts that were retries.
    pub retries: u64,
    /// The duration of each Invoke attempt, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Time spent on the batch.
    pub duration: std::time::Duration,
}

impl BatchReport {
    /// The report of an empty batch: a success with nothing to report.
    pub fn empty(duration: std::time::Duration) -> Self {
        Self {
            source: None,
            invocation: None,
            ids: Vec::new(),
            tenants: Vec::new(),
            outcomes: Vec::new(),
            response: serde_json::json!({ "batchItemFailures": [] }),
            attempts: 0,
            retries: 0,
            latencies_ms: Vec::new(),
            duration,
        }
    }

    /// How many records ended `invoked`, `rejected` or `failed` (by [`Outcome::name`]).
    pub fn count(&self, name: &str) -> usize {
        self.outcomes.iter().filter(|o| o.name() == name).count()
    }
}
