//! What a tenant-isolated function answers, as the router reads it in `request-response` mode:
//! the backend contract's answer half, shared by the guard that writes it
//! ([`crate::function`]) and the router that reads it.
//!
//! - A success (`200`, no `X-Amz-Function-Error`) for one envelope: the record is processed.
//! - A success for an envelope batch sent with `"answer": "per-record"` ([`BatchResult`]): one
//!   result per record, in the batch's order, each `processed`, `failed` or `skipped` (not run,
//!   because an earlier record it is ordered after failed: [`crate::BatchOrdering`]).
//! - A function error (`X-Amz-Function-Error`, body [`FunctionError`]): nothing was processed
//!   (or, for a batch without `"answer"`, not every record). Its `errorType` tells a refusal of
//!   the tenant guard ([`is_guard_refusal`]: permanent, the record can never pass) from any other
//!   error (transient: the event source redelivers).

use serde::{Deserialize, Serialize};

/// `errorType` of an invocation without a tenant id.
pub const TENANT_MISSING: &str = "Tenant.Missing";
/// `errorType` of an invocation whose tenant id is not a valid one.
pub const TENANT_INVALID: &str = "Tenant.Invalid";
/// `errorType` of an environment that served another tenant and now refuses everything.
pub const TENANT_ENVIRONMENT_FAILED_CLOSED: &str = "Tenant.EnvironmentFailedClosed";
/// `errorType` of an envelope (or batch) naming another tenant than the invocation.
pub const TENANT_MISMATCH: &str = "Tenant.Mismatch";
/// `errorType` of a payload that is not an envelope or envelope batch.
pub const ENVELOPE_INVALID: &str = "Envelope.Invalid";
/// `errorType` of a tenant handler's error for one envelope.
pub const HANDLER_ERROR: &str = "Handler.Error";
/// `errorType` of a record another execution environment is processing (transient).
pub const IDEMPOTENCY_IN_PROGRESS: &str = "Idempotency.InProgress";
/// `errorType` of a record the idempotency store could not be asked about (transient).
pub const IDEMPOTENCY_STORE_UNAVAILABLE: &str = "Idempotency.StoreUnavailable";
/// `errorType` of an envelope batch, sent without `"answer"`, in which some records failed.
pub const HANDLER_PARTIAL_FAILURE: &str = "Handler.PartialFailure";

/// Whether a function error's `errorType` is a refusal of the tenant guard: the record can never
/// pass (no tenant, another tenant, a failed-closed environment, not an envelope).
pub fn is_guard_refusal(error_type: &str) -> bool {
    matches!(
        error_type,
        TENANT_MISSING
            | TENANT_INVALID
            | TENANT_ENVIRONMENT_FAILED_CLOSED
            | TENANT_MISMATCH
            | ENVELOPE_INVALID
    )
}

/// The body of a function error, as Lambda returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionError {
    /// The error's type (`Tenant.Mismatch`, `Handler.Error`, `Sandbox.Timedout`, …).
    #[serde(default)]
    pub error_type: String,
    /// Its message.
    #[serde(default)]
    pub error_message: String,
}

/// What became of one record of an envelope batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordStatus {
    /// The handler ran and succeeded (or had already, for a duplicate).
    Processed,
    /// The handler failed; the record should be delivered again.
    Failed,
    /// Not run: an earlier record it is ordered after failed in the same batch.
    Skipped,
}

/// One record's result in a [`BatchResult`]. Other members (the handler's `result`, `tenantId`,
/// `duplicate`, …) may be present and are not read by the router.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordResult {
    /// The envelope's `id`.
    pub id: String,
    /// What became of it.
    pub status: RecordStatus,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to an envelope batch: one result per record, in the batch's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResult {
    /// The results.
    pub records: Vec<RecordResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_refusals_are_told_from_other_errors() {
        for refusal in [
            TENANT_MISSING,
            TENANT_INVALID,
            TENANT_ENVIRONMENT_FAILED_CLOSED,
            TENANT_MISMATCH,
            ENVELOPE_INVALID,
        ] {
            assert!(is_guard_refusal(refusal), "{refusal}");
        }
        for other in [
            HANDLER_ERROR,
            HANDLER_PARTIAL_FAILURE,
            "Sandbox.Timedout",
            "Runtime.ExitError",
            "",
        ] {
            assert!(!is_guard_refusal(other), "{other}");
        }
    }

    #[test]
    fn a_batch_result_reads_what_the_guard_writes() {
        let text = r#"{"tenantId":"acme","processed":1,"records":[
            {"id":"m1","status":"processed","result":{"x":1},"duplicate":true},
            {"id":"m2","status":"failed","error":"boom"},
            {"id":"m3","status":"skipped","error":"record m2 failed first"}]}"#;
        let result: BatchResult = serde_json::from_str(text).unwrap();
        let statuses: Vec<_> = result.records.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                RecordStatus::Processed,
                RecordStatus::Failed,
                RecordStatus::Skipped
            ]
        );
        let error: FunctionError =
            serde_json::from_str(r#"{"errorType":"Tenant.Mismatch","errorMessage":"m"}"#).unwrap();
        assert!(is_guard_refusal(&error.error_type));
    }
}
