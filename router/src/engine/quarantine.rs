//! Rejected records: written to the quarantine queue with their reason and the original record
//! (then they count as handled), or reported for redelivery when no queue is configured or the
//! write fails. Nothing rejected is ever dropped, and no quarantine message can become a poison
//! pill of its own:
//! - a message never exceeds the quarantine queue's `MaximumMessageSize` (1 KiB to 1 MiB, body
//!   and attributes together; `ROUTER_QUARANTINE_MAX_MESSAGE_BYTES`, else read from the queue at
//!   start): a record too large for one is kept in the quarantine bucket
//!   (`ROUTER_QUARANTINE_BUCKET`, key `<source>/<source ARN>/<record id>[/<user record>].json`)
//!   and the message carries its location instead — the claim-check pattern of the SQS Extended
//!   Client; without a bucket such a record is reported, never sent oversized or cut;
//! - writes are retried with jittered backoff under the retry policy, within the deadline, like
//!   Invokes;
//! - a FIFO quarantine queue (`.fifo`) gets a `MessageGroupId` (the record's lane, so its order is
//!   kept; else its own) and a `MessageDeduplicationId` stable across redeliveries, and distinct
//!   for records of two sources that share an id (two streams' sequence numbers);
//! - a rejected user record of a KPL aggregate is kept as that user record alone.

use serde::Serialize;
use serde_json::value::RawValue;
use shared::Source;

use super::context::RouteContext;
use crate::backend::{Backend, QuarantineMessage, WriteFailure};
use crate::outcome::{Outcome, Rejection};
use crate::record::RecordMeta;

/// Name of the message attribute holding the reason.
const REASON_ATTRIBUTE: &str = "reason";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    reason: &'a str,
    detail: &'a str,
    source: Source,
    record_id: &'a str,
    tenant_id: Option<&'a str>,
    /// The index of a KPL user record within its aggregate.
    #[serde(skip_serializing_if = "Option::is_none")]
    user_record: Option<usize>,
    /// The record itself, when the message can hold it.
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a RawValue>,
    /// Where the record is kept otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    record_location: Option<Location<'a>>,
}

#[derive(Serialize)]
struct Location<'a> {
    bucket: &'a str,
    key: &'a str,
    bytes: usize,
}

/// Quarantines a rejected record; without a queue, or if writing fails, it is reported instead.
pub async fn reject<B: Backend>(
    meta: &RecordMeta<'_>,
    rejection: Rejection,
    context: &RouteContext<'_, B>,
) -> Outcome {
    let Rejection { reason, detail } = rejection;
    let reported = |why: String| Outcome::Rejected {
        reason,
        detail: format!("{detail}; not quarantined: {why}"),
        quarantined: false,
    };
    if !context.backend.has_quarantine() {
        return Outcome::Rejected {
            reason,
            detail,
            quarantined: false,
        };
    }
    let user_record = meta
        .user_record
        .and_then(|user| Some((user.index, user.alone(meta.raw)?)));
    let record: &RawValue = user_record.as_ref().map_or(meta.raw, |(_, alone)| alone);
    let mut message = Message {
        reason,
        detail: &detail,
        source: context.source,
        record_id: &meta.id,
        tenant_id: meta.claimed_tenant.get().map(String::as_str),
        user_record: user_record.as_ref().map(|(index, _)| *index),
        record: Some(record),
        record_location: None,
    };
    let attributes = REASON_ATTRIBUTE.len() + "String".len() + reason.len();
    let mut body = serde_json::to_string(&message).expect("the quarantine message serialises");
    let key;
    let limit = context.backend.quarantine_message_limit();
    if body.len() + attributes > limit {
        let too_large = format!(
            "the quarantine message would be {} bytes, over the quarantine queue's limit of \
             {limit}",
            body.len() + attributes
        );
        let Some(bucket) = context.backend.quarantine_bucket() else {
            return reported(format!(
                "{too_large}, and ROUTER_QUARANTINE_BUCKET is not set"
            ));
        };
        key = object_key(
            context.source,
            &meta.source_arn,
            &meta.id,
            message.user_record,
        );
        let kept = with_retries(context, || {
            context.backend.keep_record(&key, record.get().as_bytes())
        })
        .await;
        if let Err(failure) = kept {
            return reported(format!(
                "{too_large}, and keeping it in the quarantine bucket failed: {failure}"
            ));
        }
        message.record = None;
        message.record_location = Some(Location {
            bucket,
            key: &key,
            bytes: record.get().len(),
        });
        body = serde_json::to_string(&message).expect("the quarantine message serialises");
    }
    let fifo = is_fifo(context).then(|| fifo_ids(context.source, meta));
    let sent = with_retries(context, || {
        context.backend.quarantine(QuarantineMessage {
            body: &body,
            reason,
            fifo: fifo.as_ref().map(|(g, d)| (g.as_str(), d.as_str())),
        })
    })
    .await;
    match sent {
        Ok(()) => Outcome::Rejected {
            reason,
            detail,
            quarantined: true,
        },
        Err(error) => Outcome::Rejected {
            reason,
            detail: format!("{detail}; quarantine failed: {error}"),
            quarantined: false,
        },
    }
}

/// Runs `write` until it succeeds, fails for good, runs out of attempts (the retry policy) or of
/// time (each attempt and each backoff within the deadline, less its margin).
async fn with_retries<B, F, Fut>(context: &RouteContext<'_, B>, mut write: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), WriteFailure>>,
{
    let policy = context.config.retry;
    let deadline = context.info.deadline;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if !deadline.can_start() {
            return Err("no time left before the invocation deadline".into());
        }
        let timeout = deadline.remaining().min(context.config.invoke_timeout);
        let failure = match tokio::time::timeout(timeout, write()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(failure)) => failure,
            Err(_) => {
                WriteFailure::transient(format!("no answer within {} ms", timeout.as_millis()))
            }
        };
        let detail = format!("attempt {attempt}: {}", failure.message);
        if !failure.retryable || attempt >= policy.max_attempts {
            return Err(detail);
        }
        let delay = policy.delay(attempt, None);
        if delay >= deadline.remaining() {
            return Err(format!(
                "{detail}; no time left to retry before the deadline"
            ));
        }
        tokio::time::sleep(delay).await;
    }
}

fn is_fifo<B>(context: &RouteContext<'_, B>) -> bool {
    context
        .config
        .quarantine_queue_url
        .as_deref()
        .is_some_and(|url| url.ends_with(".fifo"))
}

/// The quarantine bucket key of a record: `<source>/<source ARN>/<record id>[/<user
/// record>].json` (two streams can share a sequence number, so the ARN is part of the key), the
/// ARN and the id kept to letters, digits, `.`, `_` and `-` (anything else percent-encoded).
fn object_key(source: Source, arn: &str, id: &str, user_record: Option<usize>) -> String {
    let mut key = format!("{}/", source.as_str());
    push_safe(&mut key, arn);
    key.push('/');
    push_safe(&mut key, id);
    if let Some(index) = user_record {
        key.push_str(&format!("/{index}"));
    }
    key.push_str(".json");
    key
}

/// Appends `text` to an object key, percent-encoding all but letters, digits, `.`, `_`, `-`.
fn push_safe(key: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            key.push(byte as char);
        } else {
            key.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// `MessageGroupId` and `MessageDeduplicationId` for a FIFO quarantine queue: the group is the
/// record's lane when SQS accepts it as one (at most 128 printable ASCII characters), else a
/// digest of it, and a record without a lane is a group of its own; the deduplication id is a
/// digest of the source, its ARN, the record id and the user record, the same on every
/// redelivery, so a record rejected twice within SQS's five-minute window is kept once, and two
/// records of two streams that share a sequence number are two messages.
fn fifo_ids(source: Source, meta: &RecordMeta<'_>) -> (String, String) {
    let deduplication = hex_sha256(&format!(
        "{}\n{}\n{}\n{}",
        source.as_str(),
        meta.source_arn,
        meta.id,
        meta.user_record
            .map(|user| user.index.to_string())
            .unwrap_or_default()
    ));
    let group = match &meta.lane {
        Some(lane)
            if !lane.is_empty()
                && lane.len() <= 128
                && lane.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            lane.clone()
        }
        Some(lane) => hex_sha256(lane),
        None => deduplication.clone(),
    };
    (group, deduplication)
}

fn hex_sha256(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_are_safe_and_stable() {
        assert_eq!(
            object_key(Source::Sqs, "arn:q", "0f2c-11", None),
            "sqs/arn%3Aq/0f2c-11.json"
        );
        assert_eq!(
            object_key(Source::Kinesis, "arn:s/a", "4959:x/y z", Some(3)),
            "kinesis/arn%3As%2Fa/4959%3Ax%2Fy%20z/3.json"
        );
        // Two streams sharing a sequence number keep two objects.
        assert_ne!(
            object_key(Source::Kinesis, "arn:s/a", "4959", None),
            object_key(Source::Kinesis, "arn:s/b", "4959", None)
        );
    }

    #[test]
    fn fifo_ids_are_stable_and_valid() {
        let raw = RawValue::from_string("{}".into()).unwrap();
        let meta_of = |arn: &str, lane: Option<&str>| RecordMeta {
            id: "m1".into(),
            raw: &raw,
            lane: lane.map(str::to_owned),
            claimed_tenant: std::sync::OnceLock::new(),
            source_arn: arn.into(),
            user_record: None,
        };
        let meta = |lane: Option<&str>| meta_of("arn:a", lane);
        // Two sources whose records share an id: two messages, not one deduplicated away.
        assert_ne!(
            fifo_ids(Source::Kinesis, &meta_of("arn:a", Some("k"))).1,
            fifo_ids(Source::Kinesis, &meta_of("arn:b", Some("k"))).1
        );
        let (group, dedup) = fifo_ids(Source::Sqs, &meta(Some("group-1")));
        assert_eq!(group, "group-1");
        assert_eq!(dedup.len(), 64);
        assert_eq!(fifo_ids(Source::Sqs, &meta(Some("group-1"))).1, dedup);
        assert_ne!(fifo_ids(Source::Kinesis, &meta(Some("group-1"))).1, dedup);
        let (group, _) = fifo_ids(Source::Kinesis, &meta(Some("ключ раздела")));
        assert_eq!(group.len(), 64);
        let (group, dedup) = fifo_ids(Source::Sqs, &meta(None));
        assert_eq!(group, dedup);
    }
}
