//! The outcome of every record: exactly one of invoked, rejected or failed (PRODUCT.md §5).

use serde::Serialize;

/// What happened to one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// The backend accepted the async Invoke (202).
    Invoked {
        /// Attempts it took.
        attempts: u32,
    },
    /// The record can never succeed. It was written to the quarantine queue (then it counts as
    /// handled) or, with no queue or a failed write, it is reported as a batch item failure.
    Rejected {
        /// Stable reason code.
        reason: &'static str,
        /// Human-readable detail (never a token or payload).
        detail: String,
        /// Whether the quarantine queue holds it.
        quarantined: bool,
    },
    /// A transient problem outlived the retries or the deadline: reported for redelivery.
    Failed {
        /// Stable reason code.
        reason: &'static str,
        /// Human-readable detail.
        detail: String,
    },
}

impl Outcome {
    /// Whether the event source must redeliver the record (a batch item failure).
    pub fn is_reported(&self) -> bool {
        match self {
            Outcome::Invoked { .. } => false,
            Outcome::Rejected { quarantined, .. } => !quarantined,
            Outcome::Failed { .. } => true,
        }
    }

    /// `invoked`, `rejected` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Invoked { .. } => "invoked",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// The reason code, if the record was not invoked.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Outcome::Invoked { .. } => None,
            Outcome::Rejected { reason, .. } | Outcome::Failed { reason, .. } => Some(reason),
        }
    }

    pub(crate) fn failed(reason: &'static str, detail: impl Into<String>) -> Self {
        Outcome::Failed {
            reason,
            detail: detail.into(),
        }
    }
}

/// Why a record is unusable, before it is quarantined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Stable reason code.
    pub reason: &'static str,
    /// Human-readable detail.
    pub detail: String,
}

impl Rejection {
    /// A rejection with `reason` and `detail`.
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}
