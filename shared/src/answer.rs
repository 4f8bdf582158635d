//! What a tenant-isolated function answers, as the router reads it in `request-response` mode:
//! the backend contract's answer half, shared by the guard that writes it
//! ([`crate::function`]) and the router that reads it.
//!
//! - A success (`200`, no `X-Amz-Function-Error`) for one envelope: the record is processed.
//! - A success for an envelope batch sent with `"answer": "per-record"` ([`BatchResult`]): one
//!   result per record, in the batch's order, each `processed`, `failed` or `skipped` (not run,
//!   because an earlier record it is ordered after failed: [`crate::BatchOrdering`]). A batch
//!   answer is compact: per record only `id`, `status`, `error` (at most [`MAX_ERROR_CHARS`]
//!   characters) and `duplicate`, never the handler's result, so its size is bounded by the ids
//!   it carries ([`record_answer_bound`]) and a sync batch's answer always fits Lambda's 6 MB
//!   response limit: the router sizes its chunks by that bound.
//! - A function error (`X-Amz-Function-Error`, body [`FunctionError`]): nothing was processed
//!   (or, for a batch without `"answer"`, not every record). Its `errorType` tells a refusal of
//!   the tenant guard ([`is_guard_refusal`]: permanent, the record can never pass) from any other
//!   error (transient: the event source redelivers). An environment that failed closed
//!   ([`TENANT_ENVIRONMENT_FAILED_CLOSED`]) is a fault of that environment, not of the record:
//!   transient.

use serde::{Deserialize, Serialize};

/// `errorType` of an invocation without a tenant id.
pub const TENANT_MISSING: &str = "Tenant.Missing";
/// `errorType` of an invocation whose tenant id is not a valid one.
pub const TENANT_INVALID: &str = "Tenant.Invalid";
/// `errorType` of an environment that served another tenant and now refuses everything: a fault
/// of that environment (the platform replaces it), so not a refusal of the record.
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
/// `errorType` of an invocation whose tenant session could not be had (tenant-scoped access):
/// nothing was run, and the record is delivered again (transient).
pub const TENANT_CREDENTIALS_UNAVAILABLE: &str = "Tenant.CredentialsUnavailable";
/// `errorType` of an envelope batch, sent without `"answer"`, in which some records failed.
pub const HANDLER_PARTIAL_FAILURE: &str = "Handler.PartialFailure";

/// Whether a function error's `errorType` is a refusal of the tenant guard: the record can never
/// pass (no tenant, an invalid or another tenant, not a valid envelope). A failed-closed
/// environment is not one: the same record passes in a healthy environment.
pub fn is_guard_refusal(error_type: &str) -> bool {
    matches!(
        error_type,
        TENANT_MISSING | TENANT_INVALID | TENANT_MISMATCH | ENVELOPE_INVALID
    )
}

/// Longest `error` of a record in a batch answer, in characters (a longer message is cut to
/// one character less and `…`).
pub const MAX_ERROR_CHARS: usize = 256;

/// `message` as a batch answer's `error`: at most [`MAX_ERROR_CHARS`] characters.
pub fn cut_error(message: &str) -> String {
    match message.char_indices().nth(MAX_ERROR_CHARS) {
        Some(_) => {
            let end = message
                .char_indices()
                .nth(MAX_ERROR_CHARS - 1)
                .map_or(message.len(), |(end, _)| end);
            format!("{}…", &message[..end])
        }
        None => message.to_owned(),
    }
}

/// The most bytes `text` can take as a JSON string, quotes included, whoever writes it: every
/// character escaped the widest way a JSON writer may (`\u00XX` for a control character, and
/// with ASCII-only output such as Python's default `\uXXXX`, twice for a character outside the
/// Basic Multilingual Plane).
pub fn json_string_bound(text: &str) -> usize {
    2 + text
        .chars()
        .map(|c| match c {
            '"' | '\\' => 2,
            c if (c as u32) < 0x20 => 6,
            c if c.is_ascii() => 1,
            c if (c as u32) < 0x1_0000 => 6,
            _ => 12,
        })
        .sum::<usize>()
}

/// The most bytes one record's result can take in a batch answer, for a record whose envelope
/// `id` is `id`: `{"id":…,"status":"processed","error":…,"duplicate":true},` with the longest
/// status and error, written the widest way ([`json_string_bound`]), and room for white space.
pub fn record_answer_bound(id: &str) -> usize {
    const MEMBERS: usize = r#"{"id":,"status":"processed","error":,"duplicate":true},"#.len();
    // The longest error: MAX_ERROR_CHARS characters outside the BMP, escaped.
    const ERROR: usize = 2 + 12 * MAX_ERROR_CHARS;
    const WHITE_SPACE: usize = 16;
    MEMBERS + json_string_bound(id) + ERROR + WHITE_SPACE
}

/// The most bytes a batch answer's members besides `records` can take: the tenant id (at most
/// 256 characters, [`crate::TenantId`]) and the four counts.
pub const BATCH_ANSWER_OVERHEAD: usize = 2
    + 12 * 256
    + r#"{"tenantId":,"records":[],"processed":,"duplicates":,"failed":,"skipped":}"#.len()
    + 4 * 20
    + 64;

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

/// One record's result in a [`BatchResult`], as the guard writes it: nothing else, so the
/// answer's size is bounded ([`record_answer_bound`]). A reader ignores other members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordResult {
    /// The envelope's `id`.
    pub id: String,
    /// What became of it.
    pub status: RecordStatus,
    /// Why it failed or was skipped (at most [`MAX_ERROR_CHARS`] characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `true` when the record had been processed before and the handler did not run again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
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
            TENANT_MISMATCH,
            ENVELOPE_INVALID,
        ] {
            assert!(is_guard_refusal(refusal), "{refusal}");
        }
        for other in [
            // The environment's fault: the record passes elsewhere.
            TENANT_ENVIRONMENT_FAILED_CLOSED,
            TENANT_CREDENTIALS_UNAVAILABLE,
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

    #[test]
    fn errors_are_cut_to_the_limit() {
        assert_eq!(cut_error("boom"), "boom");
        let exact = "é".repeat(MAX_ERROR_CHARS);
        assert_eq!(cut_error(&exact), exact);
        let cut = cut_error(&"é".repeat(MAX_ERROR_CHARS + 1));
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn the_answer_bound_holds_for_the_widest_result() {
        // The widest result a guard can write for an id: the longest error, escaped the widest
        // way (Python's ensure_ascii writes a character outside the BMP as two \\uXXXX).
        let widest_error = "😀".repeat(MAX_ERROR_CHARS);
        for id in [
            "m1",
            "49590338271490256608559692538361571095921575989136588898:3",
            "\u{1}\"ü😀",
        ] {
            let result = RecordResult {
                id: id.to_owned(),
                status: RecordStatus::Processed,
                error: Some(widest_error.clone()),
                duplicate: true,
            };
            let mut text = serde_json::to_string(&result).unwrap();
            assert!(text.contains(r#""duplicate":true"#));
            // What an ASCII-only writer makes of it.
            let ascii: String = text
                .chars()
                .flat_map(|c| {
                    if c.is_ascii() {
                        vec![c.to_string()]
                    } else {
                        let mut units = [0u16; 2];
                        c.encode_utf16(&mut units)
                            .iter()
                            .map(|u| format!("\\u{u:04x}"))
                            .collect()
                    }
                })
                .collect();
            if ascii.len() > text.len() {
                text = ascii;
            }
            assert!(
                text.len() < record_answer_bound(id),
                "{id:?}: {} > {}",
                text.len() + 1,
                record_answer_bound(id)
            );
        }
        assert!(json_string_bound("a\"") == 5);
    }
}
