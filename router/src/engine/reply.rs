//! What an accepted Invoke's answer means for the records it carried (the answer half of the
//! backend contract, `shared::answer`):
//! - async (`event`): queued is all there is to know: every record is done;
//! - sync (`request-response`), success: one envelope is processed; an envelope batch answers
//!   per record (`processed`, `failed`, `skipped`), in the order it was sent;
//! - sync, function error: a refusal of the tenant guard is permanent for every record carried
//!   (`backend-refused`: rejected, so quarantined); any other error fails them all
//!   (`backend-error`: reported, so the event source redelivers and, past its retry policy,
//!   dead-letters them).
//!
//! An answer that does not fit what was sent fails every record (`backend-answer-invalid`):
//! delivery stays at least once, never "assumed processed".

use shared::answer::{self, BatchResult, FunctionError, RecordStatus};

use crate::backend::Answer;
use crate::outcome::{EARLIER_RECORD_FAILED, Outcome, Rejection};

/// Reason of a record the tenant guard refused (permanent).
pub const BACKEND_REFUSED: &str = "backend-refused";
/// Reason of a record whose backend run failed (transient).
pub const BACKEND_ERROR: &str = "backend-error";
/// Reason of records whose answer could not be read.
pub const BACKEND_ANSWER_INVALID: &str = "backend-answer-invalid";

/// Longest backend error message kept in a record's outcome detail.
const MAX_MESSAGE_CHARS: usize = 512;

/// What the answer says of the records an Invoke carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Every record is done: queued (async) or processed (sync).
    Done,
    /// The tenant guard refused the invocation: no record carried can ever pass.
    Refused(Rejection),
    /// Every record carried failed with this outcome.
    Failed(Outcome),
    /// One result per record carried, in the order sent: `None` processed, else its outcome.
    PerRecord(Vec<Option<Outcome>>),
}

/// Reads `answer` to an Invoke that carried the records `ids` (asked for only when a batch
/// answer must be matched to them), as one envelope (`batch` false) or as an envelope batch.
pub fn read<'i>(answer: &Answer, batch: bool, ids: impl FnOnce() -> Vec<&'i str>) -> Reply {
    let (function_error, payload) = match answer {
        Answer::Queued => return Reply::Done,
        Answer::Returned {
            function_error,
            payload,
        } => (function_error, payload),
    };
    if let Some(kind) = function_error {
        let error: FunctionError = serde_json::from_slice(payload).unwrap_or_default();
        let error_type = if error.error_type.is_empty() {
            kind.as_str()
        } else {
            error.error_type.as_str()
        };
        let detail = format!(
            "{error_type}: {}",
            shorten(&error.error_message, MAX_MESSAGE_CHARS)
        );
        return if answer::is_guard_refusal(error_type) {
            Reply::Refused(Rejection::new(BACKEND_REFUSED, detail))
        } else {
            Reply::Failed(Outcome::failed(BACKEND_ERROR, detail))
        };
    }
    if !batch {
        return Reply::Done;
    }
    let ids = ids();
    let invalid = |why: String| Reply::Failed(Outcome::failed(BACKEND_ANSWER_INVALID, why));
    let result: BatchResult = match serde_json::from_slice(payload) {
        Ok(result) => result,
        Err(e) => {
            return invalid(format!(
                "the answer to an envelope batch is not a per-record result: {e}"
            ));
        }
    };
    if result.records.len() != ids.len() {
        return invalid(format!(
            "the answer holds {} results for {} records",
            result.records.len(),
            ids.len()
        ));
    }
    if let Some((position, (got, sent))) = result
        .records
        .iter()
        .zip(ids)
        .enumerate()
        .find(|(_, (got, sent))| got.id != **sent)
    {
        return invalid(format!(
            "result {position} is for record {:?}, record {sent:?} was sent there",
            shorten(&got.id, 100)
        ));
    }
    Reply::PerRecord(
        result
            .records
            .into_iter()
            .map(|record| {
                let why = shorten(record.error.as_deref().unwrap_or(""), MAX_MESSAGE_CHARS);
                match record.status {
                    RecordStatus::Processed => None,
                    RecordStatus::Failed => Some(Outcome::failed(
                        BACKEND_ERROR,
                        format!("the backend failed the record: {why}"),
                    )),
                    RecordStatus::Skipped => Some(Outcome::failed(
                        EARLIER_RECORD_FAILED,
                        format!("the backend did not run the record: {why}"),
                    )),
                }
            })
            .collect(),
    )
}

/// `text` cut to at most `max` characters.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn returned(error: Option<&str>, payload: serde_json::Value) -> Answer {
        Answer::Returned {
            function_error: error.map(str::to_owned),
            payload: payload.to_string().into_bytes(),
        }
    }

    #[test]
    fn function_errors_are_refusals_or_failures() {
        let refused = returned(
            Some("Unhandled"),
            json!({"errorType": "Tenant.Mismatch", "errorMessage": "another tenant"}),
        );
        let Reply::Refused(rejection) = read(&refused, false, || ["m1"].to_vec()) else {
            panic!("a guard refusal is permanent");
        };
        assert_eq!(rejection.reason, BACKEND_REFUSED);
        assert!(rejection.detail.starts_with("Tenant.Mismatch"));
        let failed = returned(
            Some("Unhandled"),
            json!({"errorType": "Handler.Error", "errorMessage": "x".repeat(2000)}),
        );
        let Reply::Failed(outcome) = read(&failed, true, || ["m1"].to_vec()) else {
            panic!("a handler error is transient");
        };
        assert_eq!(outcome.reason(), Some(BACKEND_ERROR));
        // Not JSON: the header's kind is the error type.
        let odd = Answer::Returned {
            function_error: Some("Unhandled".into()),
            payload: b"Task timed out".to_vec(),
        };
        assert!(matches!(
            read(&odd, false, || ["m1"].to_vec()),
            Reply::Failed(_)
        ));
        assert_eq!(
            read(&Answer::Queued, true, || vec!["m1", "m2"]),
            Reply::Done
        );
        assert_eq!(
            read(&returned(None, json!({})), false, || vec!["m1"]),
            Reply::Done
        );
    }

    #[test]
    fn a_batch_answer_is_read_per_record_and_must_fit_what_was_sent() {
        let answer = returned(
            None,
            json!({"records": [
                {"id": "m1", "status": "processed"},
                {"id": "m2", "status": "failed", "error": "boom"},
                {"id": "m3", "status": "skipped", "error": "m2 failed"}]}),
        );
        let Reply::PerRecord(results) = read(&answer, true, || ["m1", "m2", "m3"].to_vec()) else {
            panic!("per record");
        };
        assert_eq!(results[0], None);
        assert_eq!(results[1].as_ref().unwrap().reason(), Some(BACKEND_ERROR));
        assert_eq!(
            results[2].as_ref().unwrap().reason(),
            Some(EARLIER_RECORD_FAILED)
        );
        for ids in [&["m1", "m2"][..], &["m1", "mX", "m3"]] {
            let Reply::Failed(outcome) = read(&answer, true, || ids.to_vec()) else {
                panic!("{ids:?}: an answer that does not fit fails every record");
            };
            assert_eq!(outcome.reason(), Some(BACKEND_ANSWER_INVALID));
        }
        assert!(matches!(
            read(&returned(None, json!({"ok": true})), true, || vec!["m1"]),
            Reply::Failed(_)
        ));
    }
}
