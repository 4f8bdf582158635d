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

    /// The detail, if the record was not invoked.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Outcome::Invoked { .. } => None,
            Outcome::Rejected { detail, .. } | Outcome::Failed { detail, .. } => Some(detail),
        }
    }

    pub(crate) fn failed(reason: &'static str, detail: impl Into<String>) -> Self {
        Outcome::Failed {
            reason,
            detail: detail.into(),
        }
    }

    /// Not sent: record `earlier` of the same ordered lane (FIFO group, stream key) was reported.
    pub(crate) fn earlier_in_lane(earlier: &str) -> Self {
        Self::failed(
            EARLIER_RECORD_FAILED,
            format!("record {earlier} of the same ordered lane was not delivered"),
        )
    }

    /// Not sent: sequence number `lowest`, at or below this record's, failed in this stream batch.
    pub(crate) fn earlier_in_stream(lowest: &str) -> Self {
        Self::failed(
            EARLIER_RECORD_FAILED,
            format!("sequence number {lowest} failed earlier in this shard"),
        )
    }

    /// Not started: the invocation's deadline (less its margin) has come.
    pub(crate) fn not_started() -> Self {
        Self::failed(
            DEADLINE,
            "not started: the invocation deadline is too close",
        )
    }

    /// The deadline came while `what` was under way.
    pub(crate) fn deadline(what: &str) -> Self {
        Self::failed(DEADLINE, format!("the deadline came before {what}"))
    }

    /// The record's path panicked while `what`; only this record fails.
    pub(crate) fn internal_error(what: &str) -> Self {
        Self::failed(INTERNAL_ERROR, format!("{what} panicked"))
    }
}

/// Reason of a record not sent because an earlier record it is ordered after was reported.
pub const EARLIER_RECORD_FAILED: &str = "earlier-record-failed";
/// Reason of a record the deadline stopped.
pub const DEADLINE: &str = "deadline";
/// Reason of a record whose path panicked.
pub const INTERNAL_ERROR: &str = "internal-error";

/// Why a record stops before it is sent: a permanent rejection (quarantined or reported), or an
/// outcome of its own (a transient failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The record can never succeed.
    Reject(Rejection),
    /// The record ends now with this outcome (reported for redelivery).
    Fail(Outcome),
}

impl From<Rejection> for Verdict {
    fn from(rejection: Rejection) -> Self {
        Verdict::Reject(rejection)
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
