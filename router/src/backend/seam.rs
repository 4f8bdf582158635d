//! The seam itself: what the router asks of AWS ([`Backend`]) and what crosses it (an Invoke, its
//! answer, a quarantine message). Every implementation — the AWS one, the tests' fakes — sits
//! behind it.

use std::future::Future;

use shared::{SQS_MESSAGE_LIMIT, TenantId};

use super::failure::{InvokeFailure, WriteFailure};
use crate::config::InvocationType;

/// One Invoke.
#[derive(Clone, Copy, Debug)]
pub struct InvokeRequest<'a> {
    /// `Event` (async) or `RequestResponse` (sync).
    pub invocation_type: InvocationType,
    /// Tenant id sent as `X-Amz-Tenant-Id`: always the one proven for the record.
    pub tenant: &'a TenantId,
    /// The serialised envelope.
    pub payload: &'a [u8],
    /// `X-Amzn-Trace-Id` to send, continuing the record's trace.
    pub trace_header: Option<&'a str>,
}

/// How the service answered an Invoke it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An async Invoke was queued (202).
    Queued,
    /// A sync Invoke ran (200): the function's answer, and whether it is a function error
    /// (`X-Amz-Function-Error`, then the payload is `{errorType, errorMessage}`).
    Returned {
        /// The `X-Amz-Function-Error` header (`Unhandled`, …), if present.
        function_error: Option<String>,
        /// The function's answer.
        payload: Vec<u8>,
    },
}

/// What the router needs from AWS.
pub trait Backend: Send + Sync {
    /// Invokes the backend for `request.tenant`, async or sync as `request.invocation_type` says.
    fn invoke(
        &self,
        request: InvokeRequest<'_>,
    ) -> impl Future<Output = Result<Answer, InvokeFailure>> + Send;

    /// Whether a quarantine queue is configured.
    fn has_quarantine(&self) -> bool;

    /// The quarantine bucket (`ROUTER_QUARANTINE_BUCKET`), if one is configured.
    fn quarantine_bucket(&self) -> Option<&str> {
        None
    }

    /// The quarantine queue's largest message, body and attributes together (its
    /// `MaximumMessageSize`): a larger quarantine message goes to the bucket instead.
    fn quarantine_message_limit(&self) -> usize {
        SQS_MESSAGE_LIMIT
    }

    /// Writes one message to the quarantine queue.
    fn quarantine(
        &self,
        message: QuarantineMessage<'_>,
    ) -> impl Future<Output = Result<(), WriteFailure>> + Send;

    /// Keeps a record too large for a quarantine message in the quarantine bucket at `key`.
    fn keep_record(
        &self,
        _key: &str,
        _record: &[u8],
    ) -> impl Future<Output = Result<(), WriteFailure>> + Send {
        async {
            Err(WriteFailure::permanent(
                "no quarantine bucket is configured",
            ))
        }
    }
}

/// One message for the quarantine queue.
#[derive(Clone, Copy, Debug)]
pub struct QuarantineMessage<'a> {
    /// The message body (JSON).
    pub body: &'a str,
    /// The rejection's reason code, also sent as the `reason` message attribute.
    pub reason: &'a str,
    /// For a FIFO queue: its `MessageGroupId` and `MessageDeduplicationId`.
    pub fifo: Option<(&'a str, &'a str)>,
}
