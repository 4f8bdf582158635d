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
use shared::Source;

use super::Parts;
use crate::config::{Config, TenantFrom, TokenFrom};
use crate::handler::{BatchError, InvocationInfo};
use crate::outcome::{Outcome, Rejection};
use crate::record::{Decoded, Record, RecordMeta};

/// Decodes every record of an SQS batch.
pub fn decode<'a>(
    raw: &[&'a RawValue],
    config: &Config,
    info: &InvocationInfo,
) -> Result<(Vec<Record<'a>>, bool), BatchError> {
    let mut fifo = false;
    let mut records = Vec::with_capacity(raw.len());
    for (index, raw) in raw.iter().enumerate() {
        let message: SqsMessage = match serde_json::from_str(raw.get()) {
            Ok(message) => message,
            Err(error) => {
                // Unreadable, but reportable if its identifier can be found.
                records.push(super::unreadable_record(
                    raw,
                    index,
                    ("", "messageId"),
                    "an SQS message",
                    &error,
                )?);
                continue;
            }
        };
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
    let (payload, carried_by) = match super::unwrap_carried(body) {
        Ok(unwrapped) => unwrapped,
        Err(rejection) => return (Err(rejection), None),
    };

    let arrived_at_ms = message
        .attributes
        .get("SentTimestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(info.now_ms);
    let group_id = message.attributes.get("MessageGroupId").cloned();
    let trace_header = message.attributes.get("AWSTraceHeader").cloned();
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
    let attribute = |name: &str| {
        message
            .message_attributes
            .get(name)
            .and_then(|a| a.string_value.clone())
    };
    let parts = Parts {
        source: Source::Sqs,
        id,
        event_source_arn: message.event_source_arn.take().unwrap_or_default(),
        arrived_at_ms,
        payload,
        attributes,
        trace_header,
    };
    super::build(
        parts,
        config,
        info,
        |from| match from {
            TenantFrom::Attribute(name) => Some(attribute(name)),
            TenantFrom::MessageGroupId => Some(group_id.clone()),
            _ => None,
        },
        |from| match from {
            TokenFrom::Attribute(name) => Some(attribute(name)),
            TokenFrom::Payload(_) => None,
        },
    )
}

/// The partial batch response: every reported record's `messageId`, once, in batch order.
pub fn response(records: &[RecordMeta<'_>], outcomes: &[Outcome]) -> SqsBatchResponse {
    let mut seen = std::collections::HashSet::new();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = records
        .iter()
        .zip(outcomes)
        .filter(|(record, outcome)| outcome.is_reported() && seen.insert(record.id.as_str()))
        .map(|(record, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.id.clone();
            failure
        })
        .collect();
    response
}
