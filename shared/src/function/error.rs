//! Why an invocation, or one record of it, was not processed: the guard's refusals
//! ([`GuardError`]), the invocation's errors as Lambda reports them ([`InvokeError`], with their
//! `errorType`s from [`crate::answer`]), and one record's failure inside an admitted invocation.

use std::fmt::Display;

use crate::answer;

/// Why an invocation was refused before (or instead of) running the tenant handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The invocation carried no tenant id.
    #[error("the invocation has no tenant id: the function must run in tenant isolation mode")]
    NoTenant,
    /// The context's tenant id is not a valid tenant id.
    #[error("the invocation's tenant id is invalid: {0}")]
    InvalidTenant(String),
    /// This environment served another tenant: it refuses everything from now on.
    #[error("this execution environment was offered a second tenant and fails closed")]
    FailedClosed,
    /// The envelope names another tenant than the invocation.
    #[error("the envelope's tenant does not match the invocation's tenant")]
    TenantMismatch,
    /// The payload is not a valid envelope (or envelope batch).
    #[error("the payload is not a valid envelope: {0}")]
    BadEnvelope(String),
}

/// Why an invocation produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The guard refused it.
    #[error(transparent)]
    Refused(#[from] GuardError),
    /// The tenant handler failed (returned an error or panicked).
    #[error("tenant handler failed: {0}")]
    Handler(String),
    /// Another execution environment is processing the record (retry later).
    #[error("the record is being processed by another execution environment; retry later")]
    InProgress,
    /// The idempotency store could not answer; nothing was processed (retry later).
    #[error("{0}; not processed, retry later")]
    StoreUnavailable(String),
    /// The tenant's session (tenant-scoped access) could not be had; nothing was run (retry
    /// later), never with the execution role's access.
    #[error("{0}; nothing run, retry later")]
    CredentialsUnavailable(String),
    /// The tenant handler failed for some records of an envelope batch sent without
    /// `"answer": "per-record"` (the others were processed and are remembered, so a retry runs
    /// only the failed and skipped ones).
    #[error(
        "tenant handler failed for {failed} records of the batch ({skipped} not run after them): {detail}"
    )]
    PartialFailure {
        /// Records processed now.
        processed: usize,
        /// Records recognised as duplicates.
        duplicates: usize,
        /// Records whose handler failed.
        failed: usize,
        /// Records not run because a record they are ordered after failed.
        skipped: usize,
        /// `id: error` for each failed record.
        detail: String,
    },
}

impl InvokeError {
    /// The `errorType` reported to Lambda (and so to async destinations and callers).
    pub fn error_type(&self) -> &'static str {
        match self {
            InvokeError::Refused(GuardError::NoTenant) => answer::TENANT_MISSING,
            InvokeError::Refused(GuardError::InvalidTenant(_)) => answer::TENANT_INVALID,
            InvokeError::Refused(GuardError::FailedClosed) => {
                answer::TENANT_ENVIRONMENT_FAILED_CLOSED
            }
            InvokeError::Refused(GuardError::TenantMismatch) => answer::TENANT_MISMATCH,
            InvokeError::Refused(GuardError::BadEnvelope(_)) => answer::ENVELOPE_INVALID,
            InvokeError::Handler(_) => answer::HANDLER_ERROR,
            InvokeError::InProgress => answer::IDEMPOTENCY_IN_PROGRESS,
            InvokeError::StoreUnavailable(_) => answer::IDEMPOTENCY_STORE_UNAVAILABLE,
            InvokeError::CredentialsUnavailable(_) => answer::TENANT_CREDENTIALS_UNAVAILABLE,
            InvokeError::PartialFailure { .. } => answer::HANDLER_PARTIAL_FAILURE,
        }
    }
}

impl From<InvokeError> for lambda_runtime::Diagnostic {
    fn from(error: InvokeError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Why one record of an admitted invocation was not processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RecordError {
    /// The handler failed or panicked.
    Handler(String),
    /// Another environment is processing it.
    InProgress,
    /// The idempotency store could not answer.
    Store(String),
}

impl Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Handler(e) => f.write_str(e),
            RecordError::InProgress => f.write_str(
                "the record is being processed by another execution environment; retry later",
            ),
            RecordError::Store(e) => write!(f, "{e}; not processed, retry later"),
        }
    }
}

impl From<RecordError> for InvokeError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::Handler(e) => InvokeError::Handler(e),
            RecordError::InProgress => InvokeError::InProgress,
            RecordError::Store(e) => InvokeError::StoreUnavailable(e),
        }
    }
}
