//! The quarantine queue's writer (aws-sdk-sqs): one message per rejected record, with its reason
//! as a message attribute and, for a FIFO queue, its group and deduplication ids; and the
//! queue's largest message, taken from `ROUTER_QUARANTINE_MAX_MESSAGE_BYTES` or read from the
//! queue once at start.

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};

use super::bucket::QuarantineBucket;
use super::failure::WriteFailure;
use super::seam::QuarantineMessage;

pub use shared::SQS_MESSAGE_LIMIT;

/// Where rejected records go: the quarantine queue, and the bucket that keeps records too large
/// for a queue message.
#[derive(Clone, Debug)]
pub struct Quarantine {
    /// The SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// `ROUTER_QUARANTINE_QUEUE_URL`.
    pub queue_url: String,
    /// The queue's largest message, body and attributes together ([`message_limit`]).
    pub max_message_bytes: usize,
    /// `ROUTER_QUARANTINE_BUCKET`.
    pub bucket: Option<QuarantineBucket>,
}

impl Quarantine {
    /// Sends one message to the queue.
    pub async fn send(&self, message: QuarantineMessage<'_>) -> Result<(), WriteFailure> {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(message.reason)
            .build()
            .map_err(|e| WriteFailure::permanent(e.to_string()))?;
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.body)
            .message_attributes("reason", attribute);
        if let Some((group, deduplication)) = message.fifo {
            send = send
                .message_group_id(group)
                .message_deduplication_id(deduplication);
        }
        send.send().await.map(|_| ()).map_err(write_failure)
    }
}

/// The quarantine queue's largest message: `configured` (`ROUTER_QUARANTINE_MAX_MESSAGE_BYTES`)
/// when given, else its `MaximumMessageSize` (1,024 to 1,048,576 bytes), read
/// once with `GetQueueAttributes`. An answer that cannot be had is a start error naming both ways
/// to give it: guessing 1 MiB for a smaller queue would have every large rejected record refused
/// by SQS instead of kept in the bucket.
pub async fn message_limit(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    configured: Option<usize>,
) -> Result<usize, String> {
    if let Some(limit) = configured {
        return Ok(limit);
    }
    let unknown = |why: String| {
        format!(
            "ROUTER_QUARANTINE_MAX_MESSAGE_BYTES is not set and the quarantine queue's \
             MaximumMessageSize could not be read ({why}); set it, or allow \
             sqs:GetQueueAttributes on {queue_url}"
        )
    };
    let answer = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::MaximumMessageSize)
        .send()
        .await
        .map_err(|e| unknown(write_failure(e).message))?;
    let text = answer
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::MaximumMessageSize))
        .ok_or_else(|| unknown("the queue did not say".into()))?;
    text.parse::<usize>()
        .ok()
        .filter(|n| (1024..=SQS_MESSAGE_LIMIT).contains(n))
        .ok_or_else(|| unknown(format!("the queue answered {text:?}")))
}

/// Classifies a failed SQS call: no answer (timeout, I/O), throttling and 5xx are worth
/// another attempt; any other error (access denied, a missing queue or bucket, a KMS key that
/// cannot be used, an invalid message) is not.
fn write_failure<E: ProvideErrorMetadata + std::error::Error>(
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> WriteFailure {
    match &error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let service = context.err();
            let code = service.code().unwrap_or("Unknown");
            let message = format!("{status} {code}: {}", service.message().unwrap_or(""));
            let throttled = code.contains("Throttl")
                || matches!(
                    code,
                    "RequestThrottled" | "SlowDown" | "RequestLimitExceeded"
                );
            WriteFailure {
                retryable: status >= 500 || status == 429 || throttled,
                message,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            WriteFailure::transient(format!("{error}"))
        }
        _ => WriteFailure::permanent(format!("{error}")),
    }
}
