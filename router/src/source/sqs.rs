//! Amazon SQS batches, standard and FIFO.
//!
//! The payload is the message body as JSON; an SNS notification or EventBridge event in the body is
//! unwrapped. Arrival time is the `SentTimestamp` attribute. Failures are reported by `messageId`
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>); on a FIFO
//! queue the records of one `MessageGroupId` share a lane, so they run in order and a failure stops
//! the rest of the group.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shared::{ENVELOPE_VERSION, Envelope, Source};

use crate::config::{Config, TenantFrom, TokenFrom};
use crate::handler::{BatchError, InvocationInfo};
use crate::outcome::{Outcome, Rejection};
use crate::record::{Decoded, Record, RecordMeta, string_at, take_at};

/// Decodes every record of an SQS batch.
pub fn decode<'a>(
    raw: &[&'a RawValue],
    config: &Config,
    info: &InvocationInfo,
) -> Result<(Vec<Record<'a>>, bool), BatchError> {
    let mut fifo = false;
    let mut records = Vec::with_capacity(raw.len());
    for (index, raw) in raw.iter().enumerate() {
        let message: SqsMessage = serde_json::from_str(raw.get()).map_err(|e| {
            BatchError::Malformed(format!("record {index} is not an SQS message: {e}"))
        })?;
        let id = match message.message_id.as_deref() {
            Some(id) if !id.is_empty() => id.to_owned(),
            // An empty identifier would fail the whole batch at the ESM anyway; say why here.
            _ => {
                return Err(BatchError::Malformed(format!(
                    "record {index} has no messageId, so it cannot be reported"
                )));
            }
        };
        fifo |= message
            .event_source_arn
            .as_deref()
            .is_some_and(|arn| arn.ends_with(".fifo"));
        let group = message.attributes.get("MessageGroupId").cloned();
        let (decoded, claimed_tenant) = decode_message(message, &id, config, info);
        records.push(Record {
            meta: RecordMeta {
                id,
                raw,
                lane: group,
                claimed_tenant,
            },
            decoded,
        });
    }
    if !fifo {
        // A standard queue has no order to keep: every record is its own lane.
        for record in &mut records {
            record.meta.lane = None;
        }
    }
    Ok((records, fifo))
}

fn decode_message(
    mut message: SqsMessage,
    id: &str,
    config: &Config,
    info: &InvocationInfo,
) -> (Result<Decoded, Rejection>, Option<String>) {
    let body = match message.body.take() {
        Some(body) => body,
        None => {
            return (
                Err(Rejection::new("missing-body", "the message has no body")),
                None,
            );
        }
    };
    let body: Value = match serde_json::from_str(&body) {
        Ok(body) => body,
        Err(e) => {
            return (
                Err(Rejection::new(
                    "malformed-body",
                    format!("the body is not JSON: {e}"),
                )),
                None,
            );
        }
    };
    let (mut payload, carried_by) = match super::unwrap_carried(body) {
        Ok(unwrapped) => unwrapped,
        Err(rejection) => return (Err(rejection), None),
    };

    let attribute = |name: &str| {
        message
            .message_attributes
            .get(name)
            .and_then(|a| a.string_value.as_deref())
    };
    let (claimed, from) = match &config.tenant_from {
        TenantFrom::Payload(pointer) => {
            (string_at(&payload, pointer), format!("payload {pointer}"))
        }
        TenantFrom::Attribute(name) => (attribute(name), format!("message attribute {name}")),
        TenantFrom::MessageGroupId => (
            message.attributes.get("MessageGroupId").map(String::as_str),
            "MessageGroupId".to_owned(),
        ),
    };
    let claimed_tenant = claimed.map(str::to_owned);
    let tenant = match super::tenant_id(claimed, &from) {
        Ok(tenant) => tenant,
        Err(rejection) => return (Err(rejection), claimed_tenant),
    };

    // The token never travels further than the router, whatever the validation mode.
    let token = match &config.token_from {
        TokenFrom::Payload(pointer) => match take_at(&mut payload, pointer) {
            Some(Value::String(token)) => Some(token),
            Some(_) => {
                return (
                    Err(Rejection::new(
                        "token-malformed",
                        format!("the token at payload {pointer} is not a string"),
                    )),
                    claimed_tenant,
                );
            }
            None => None,
        },
        TokenFrom::Attribute(name) => attribute(name).map(str::to_owned),
    };

    let arrived_at_ms = message
        .attributes
        .get("SentTimestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(info.now_ms);
    let arn = message.event_source_arn.take().unwrap_or_default();

    let correlation_id = string_at(&payload, &config.correlation_id_pointer)
        .map(str::to_owned)
        .or_else(|| message.attributes.get("AWSTraceHeader").cloned())
        .or_else(|| info.trace_id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let mut attributes = Map::new();
    for (name, key) in [
        ("MessageGroupId", "messageGroupId"),
        ("SequenceNumber", "sequenceNumber"),
        ("MessageDeduplicationId", "messageDeduplicationId"),
        ("ApproximateReceiveCount", "approximateReceiveCount"),
    ] {
        if let Some(value) = message.attributes.remove(name) {
            attributes.insert(key.to_owned(), Value::String(value));
        }
    }
    if let Some(carrier) = carried_by {
        attributes.insert("carriedBy".into(), Value::String(carrier.into()));
    }

    let envelope = Envelope {
        version: ENVELOPE_VERSION,
        tenant_id: tenant.clone(),
        source: Source::Sqs,
        idempotency_key: Envelope::idempotency_key_for(&arn, id),
        event_source_arn: arn,
        id: id.to_owned(),
        arrived_at: rfc3339_ms(arrived_at_ms),
        correlation_id,
        attributes,
        payload,
    };
    (
        Ok(Decoded {
            tenant,
            token,
            arrived_at_ms,
            envelope,
        }),
        claimed_tenant,
    )
}

/// RFC 3339 in UTC with milliseconds.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The partial batch response: every reported record's `messageId`, in batch order.
pub fn response(records: &[RecordMeta<'_>], outcomes: &[Outcome]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = records
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_reported())
        .map(|(record, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.id.clone();
            failure
        })
        .collect();
    response
}
