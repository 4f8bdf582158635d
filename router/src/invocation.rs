//! The facts of one invocation that every layer below the handler may read: when it must answer
//! ([`InvocationInfo::deadline`]), its trace id, the processing time, and [`BatchError`], the ways a
//! whole event can fail. Nothing here knows a source or the routing engine.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::retry::Deadline;

/// Why a whole event could not be handled (the invocation fails; nothing was invoked).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The event is not a batch from a supported event source mapping.
    #[error("not a recognised event source batch: {0}")]
    NotAnEsmBatch(String),
    /// The batch is recognised but a record cannot be answered for.
    #[error("malformed batch: {0}")]
    Malformed(String),
    /// A single event (EventBridge) failed transiently; its sender should retry it.
    #[error("transient failure, retry later: {0}")]
    RetryLater(String),
}

/// Facts about the current invocation.
#[derive(Clone, Debug)]
pub struct InvocationInfo {
    /// When the answer is due.
    pub deadline: Deadline,
    /// The invocation's X-Ray trace id, if any.
    pub trace_id: Option<String>,
    /// Processing time, in milliseconds since the epoch.
    pub now_ms: i64,
}

impl InvocationInfo {
    /// Information for an invocation due `budget` from now.
    pub fn with_budget(budget: Duration, margin: Duration) -> Self {
        Self {
            deadline: Deadline::after(budget, margin),
            trace_id: None,
            now_ms: now_ms(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
