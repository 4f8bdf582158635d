//! One Invoke, with retries: jittered exponential backoff under the retry policy, a per-attempt
//! time limit, and never past the invocation's deadline. Each failure is classified once, by
//! `crate::backend`, into retried, refused (the request itself is unusable) or not retried. A
//! `request-response` Invoke that times out is not retried: the backend may still be running it,
//! and a second attempt could run the record twice at once, out of its order.

use shared::TenantId;

use super::context::RouteContext;
use crate::backend::{Answer, Backend, FailureClass, InvokeFailure, InvokeRequest};
use crate::config::InvocationType;
use crate::outcome::{Outcome, Rejection};

/// How an Invoke ended, after its retries.
pub enum Sent {
    /// Accepted (async: queued; sync: the backend ran and answered) after this many attempts.
    Invoked {
        /// Attempts it took.
        attempts: u32,
        /// The service's answer.
        answer: Answer,
    },
    /// The service refused the request itself (400, 413, 415): retrying cannot help.
    Refused(Rejection),
    /// A transient or deployment failure outlived the retries or the deadline.
    Failed(Outcome),
    /// Not sent at all: the deadline came before the first attempt.
    Abandoned(Outcome),
}

/// Invokes with retries that honour the retry policy and never outlive the deadline. `label`
/// names what is sent (a record id, or the first record of a tenant batch) in debug logs.
pub async fn send<B: Backend>(
    label: &str,
    tenant: &TenantId,
    payload: &[u8],
    trace_header: Option<&str>,
    context: &RouteContext<'_, B>,
) -> Sent {
    let policy = context.config.retry;
    let deadline = context.info.deadline;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let remaining = deadline.remaining();
        if remaining.is_zero() {
            let outcome = Outcome::deadline("the Invoke succeeded");
            return match attempt {
                1 => Sent::Abandoned(outcome),
                _ => Sent::Failed(outcome),
            };
        }
        let request = InvokeRequest {
            invocation_type: context.invocation,
            tenant,
            payload,
            trace_header,
        };
        let timeout = remaining.min(context.config.invoke_timeout);
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(timeout, context.backend.invoke(request)).await;
        context.stats.attempt(attempt, started.elapsed());
        let failure = match answer {
            Ok(Ok(answer)) => {
                return Sent::Invoked {
                    attempts: attempt,
                    answer,
                };
            }
            Ok(Err(failure)) => failure,
            Err(_) => InvokeFailure::transient(
                "timeout",
                format!("no answer within {} ms", timeout.as_millis()),
            ),
        };
        let detail = format!(
            "attempt {attempt}: {} {} {}",
            failure
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            failure.code,
            failure.message
        );
        match failure.class {
            FailureClass::Rejected => {
                return Sent::Refused(Rejection::new(failure.reason(), detail));
            }
            FailureClass::NotRetried | FailureClass::DeploymentFault => {
                return Sent::Failed(Outcome::failed(failure.reason(), detail));
            }
            FailureClass::Retryable
                if context.invocation == InvocationType::RequestResponse
                    && failure.code == "timeout" =>
            {
                return Sent::Failed(Outcome::failed(
                    failure.reason(),
                    format!("{detail}; not retried: the backend may still be running it"),
                ));
            }
            FailureClass::Retryable => {}
        }
        if attempt >= policy.max_attempts {
            return Sent::Failed(Outcome::failed(failure.reason(), detail));
        }
        let delay = policy.delay(attempt, failure.retry_after);
        if delay >= deadline.remaining() {
            return Sent::Failed(Outcome::failed(
                failure.reason(),
                format!("{detail}; no time left to retry before the deadline"),
            ));
        }
        tracing::debug!(
            message = "retrying Invoke",
            record_id = label,
            attempt = attempt,
            delay_ms = delay.as_millis() as u64,
            code = failure.code.as_str(),
        );
        tokio::time::sleep(delay).await;
    }
}
