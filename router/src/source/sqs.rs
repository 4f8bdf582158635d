//! Amazon SQS batches, standard and FIFO.
//!
//! The payload is the message body as JSON; an SNS notification or EventBridge event in the body is
//! unwrapped. Arrival time is the `SentTimestamp` attribute. Failures are reported by `messageId`
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>); on a FIFO
//! queue the records of one `MessageGroupId` share a lane, so they run in order and a failure stops
//! the rest of the group.

use std::borrow::Cow;
use std::sync::OnceLock;

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shared::Source;

use super::build::{self, Parts};
use super::document::JsonText;
use crate::config::{Config, TenantFrom, TokenFrom};
use crate::invocation::{BatchError, InvocationInfo};
use crate::outcome::{Outcome, Rejection};
use crate::record::{ArnCache, DecodeResult, Decoded, Pending, Record, RecordMeta};

/// What is read of an SQS record up front: enough to report and order it. The rest (the body
/// above all) is decoded when the record's turn comes ([`Pending::Deferred`]).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "messageId", borrow)]
    message_id: Option<Cow<'a, str>>,
    #[serde(rename = "eventSourceARN", borrow)]
    event_source_arn: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    attributes: HeadAttributes<'a>,
}

#[derive(Deserialize, Default)]
struct HeadAttributes<'a> {
    #[serde(rename = "MessageGroupId", borrow)]
    message_group_id: Option<Cow<'a, str>>,
}

/// Reads every record of an SQS batch far enough to report and order it; each record is decoded
/// when it is routed.
pub fn decode<'a>(raw: &[&'a RawValue]) -> Result<(Vec<Record<'a>>, bool), BatchError> {
    let mut fifo = false;
    let mut records = Vec::with_capacity(raw.len());
    let mut arns = ArnCache::default();
    for (index, raw) in raw.iter().enumerate() {
        let head: Head<'_> = match serde_json::from_str(raw.get()) {
            Ok(head) => head,
            Err(error) => {
                // Unreadable, but reportable if its identifier can be found.
                records.push(build::unreadable_record(
                    raw,
                    index,
                    ("", "messageId"),
                    "an SQS message",
                    &error,
                )?);
                continue;
            }
        };
        let id = match head.message_id.as_deref() {
            Some(id) if !id.is_empty() => id.to_owned(),
            // An empty identifier would fail the whole batch at the ESM anyway; say why here.
            _ => {
                return Err(BatchError::Malformed(format!(
                    "record {index} has no messageId, so it cannot be reported"
                )));
            }
        };
        fifo |= head
            .event_source_arn
            .as_deref()
            .is_some_and(|arn| arn.ends_with(".fifo"));
        let source_arn = arns.get(head.event_source_arn.as_deref().unwrap_or_default());
        records.push(Record {
            meta: RecordMeta {
                id,
                raw,
                lane: head.attributes.message_group_id.map(Cow::into_owned),
                claimed_tenant: OnceLock::new(),
                source_arn,
                user_record: None,
            },
            decoded: Pending::Deferred {
                raw,
                decode: decode_record,
            },
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

/// Decodes one SQS record ([`crate::record::DecodeFn`]).
fn decode_record(raw: &RawValue, id: &str, config: &Config, info: &InvocationInfo) -> DecodeResult {
    match serde_json::from_str::<Message<'_>>(raw.get()) {
        Ok(message) => decode_message(message, id, config, info),
        Err(error) => (
            Err(Rejection::new(
                "malformed-record",
                format!("not an SQS message: {error}"),
            )),
            None,
        ),
    }
}

/// An SQS message as the router reads it when its turn comes: borrowed from the event, and only
/// the fields it uses (the SDK's `SqsMessage` owns every field and builds two hash maps per record).
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    body: Option<Cow<'a, str>>,
    #[serde(rename = "eventSourceARN", borrow, default)]
    event_source_arn: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    attributes: Option<Attributes<'a>>,
    #[serde(rename = "messageAttributes", borrow, default)]
    message_attributes: Option<HashMap<Cow<'a, str>, MessageAttribute<'a>>>,
}

/// The message attributes (SQS system attributes) the router reads.
#[derive(Deserialize, Default)]
struct Attributes<'a> {
    #[serde(rename = "SentTimestamp", borrow, default)]
    sent_timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "MessageGroupId", borrow, default)]
    message_group_id: Option<Cow<'a, str>>,
    #[serde(rename = "AWSTraceHeader", borrow, default)]
    aws_trace_header: Option<Cow<'a, str>>,
    #[serde(rename = "SequenceNumber", borrow, default)]
    sequence_number: Option<Cow<'a, str>>,
    #[serde(rename = "MessageDeduplicationId", borrow, default)]
    message_deduplication_id: Option<Cow<'a, str>>,
    #[serde(rename = "ApproximateReceiveCount", borrow, default)]
    approximate_receive_count: Option<Cow<'a, str>>,
}

/// A user message attribute: only its string value is used.
#[derive(Deserialize)]
struct MessageAttribute<'a> {
    #[serde(rename = "stringValue", borrow, default)]
    string_value: Option<Cow<'a, str>>,
}

fn decode_message(
    message: Message<'_>,
    id: &str,
    config: &Config,
    info: &InvocationInfo,
) -> (Result<Decoded, Rejection>, Option<String>) {
    let Some(body) = message.body else {
        return (
            Err(Rejection::new("missing-body", "the message has no body")),
            None,
        );
    };
    let body = match JsonText::new(body.into_owned()) {
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
    let (payload, carried_by) = match build::unwrap_carried(body) {
        Ok(unwrapped) => unwrapped,
        Err(rejection) => return (Err(rejection), None),
    };

    let system = message.attributes.unwrap_or_default();
    let arrived_at_ms = system
        .sent_timestamp
        .as_deref()
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(info.now_ms);
    let group_id = system.message_group_id.as_deref().map(str::to_owned);
    let trace_header = system.aws_trace_header.as_deref().map(str::to_owned);
    let mut attributes = Map::new();
    for (value, key) in [
        (&system.message_group_id, "messageGroupId"),
        (&system.sequence_number, "sequenceNumber"),
        (&system.message_deduplication_id, "messageDeduplicationId"),
        (&system.approximate_receive_count, "approximateReceiveCount"),
    ] {
        if let Some(value) = value {
            attributes.insert(key.to_owned(), Value::String(value.to_string()));
        }
    }
    if let Some(carrier) = carried_by {
        attributes.insert("carriedBy".into(), Value::String(carrier.into()));
    }
    let user_attributes = message.message_attributes.unwrap_or_default();
    let attribute = |name: &str| {
        user_attributes
            .get(name)
            .and_then(|a| a.string_value.as_deref())
            .map(str::to_owned)
    };
    let parts = Parts {
        source: Source::Sqs,
        id,
        event_source_arn: message
            .event_source_arn
            .map(Cow::into_owned)
            .unwrap_or_default(),
        arrived_at_ms,
        payload,
        attributes,
        trace_header,
    };
    build::build(
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config() -> Config {
        let env = std::collections::HashMap::from([
            ("ROUTER_BACKEND_FUNCTION", "backend"),
            ("ROUTER_VALIDATION", "trusted"),
        ]);
        Config::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap()
    }

    #[test]
    fn records_are_read_up_front_but_decoded_only_when_routed() {
        let event = serde_json::json!({"Records": [
            {"messageId": "m1", "body": "{\"tenantId\": \"acme\"}", "eventSourceARN": "arn:q.fifo",
             "attributes": {"MessageGroupId": "g1", "SentTimestamp": "1"}},
            {"messageId": "m2", "body": "{not json", "eventSourceARN": "arn:q.fifo",
             "attributes": {"MessageGroupId": "g2"}},
        ]})
        .to_string();
        let raw: Vec<&RawValue> =
            serde_json::from_str::<std::collections::HashMap<&str, Vec<&RawValue>>>(&event)
                .unwrap()
                .remove("Records")
                .unwrap();
        let (config, info) = (
            config(),
            InvocationInfo::with_budget(Duration::from_secs(1), Duration::ZERO),
        );
        let (records, fifo) = decode(&raw).unwrap();
        assert!(fifo);
        let mut decoded = Vec::new();
        for record in records {
            // Id and lane are known at once; the tenant only once the record is decoded.
            assert!(matches!(record.decoded, Pending::Deferred { .. }));
            assert!(record.meta.claimed_tenant.get().is_none());
            let result = record.decoded.resolve(&record.meta, &config, &info);
            decoded.push((
                record.meta.id.clone(),
                record.meta.lane.clone(),
                record.meta.claimed_tenant.get().cloned(),
                result.map(|d| d.tenant.to_string()).map_err(|v| match v {
                    crate::outcome::Verdict::Reject(r) => r.reason,
                    crate::outcome::Verdict::Fail(o) => o.reason().unwrap_or_default(),
                }),
            ));
        }
        assert_eq!(
            decoded,
            [
                (
                    "m1".into(),
                    Some("g1".into()),
                    Some("acme".into()),
                    Ok("acme".into())
                ),
                ("m2".into(), Some("g2".into()), None, Err("malformed-body")),
            ]
        );
    }
}
