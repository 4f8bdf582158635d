//! The envelope: one JSON object per record, the same for every event source, that the router sends
//! to the tenant-isolated backend as the async Invoke payload (PRODUCT.md §4).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::TenantId;

/// Version of the envelope format written in [`Envelope::version`].
pub const ENVELOPE_VERSION: u32 = 1;

/// Largest payload an asynchronous (`InvocationType=Event`) Invoke accepts, in bytes: 1 MB
/// (<https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>). An envelope above it is
/// never sent.
pub const ASYNC_PAYLOAD_LIMIT: usize = 1024 * 1024;

/// The event source a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Amazon SQS, standard or FIFO.
    Sqs,
    /// Kinesis Data Streams.
    Kinesis,
    /// DynamoDB Streams.
    Dynamodb,
    /// An EventBridge event delivered to the router directly.
    Eventbridge,
}

impl Source {
    /// The lowercase name used in the envelope, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sqs => "sqs",
            Source::Kinesis => "kinesis",
            Source::Dynamodb => "dynamodb",
            Source::Eventbridge => "eventbridge",
        }
    }
}

/// One record, verified and ready for its tenant's backend.
///
/// The payload is kept as JSON text, so numbers of any precision (a DynamoDB `N` of 38 digits)
/// travel exactly as the source wrote them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Format version, [`ENVELOPE_VERSION`].
    pub version: u32,
    /// The tenant the record was proven to belong to; the Invoke carries the same value.
    pub tenant_id: TenantId,
    /// Where the record came from.
    pub source: Source,
    /// ARN of the queue, stream or table.
    pub event_source_arn: String,
    /// The record's id at its source: SQS `messageId`, or the stream sequence number.
    pub id: String,
    /// Stable across redeliveries of the same record: `<eventSourceArn>#<id>`.
    pub idempotency_key: String,
    /// When the source service accepted the record (RFC 3339, UTC).
    pub arrived_at: String,
    /// Id that follows the record end to end: from the payload, else the trace id, else generated.
    pub correlation_id: String,
    /// Source-specific facts a handler may want (message group id, partition key, event name …).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    /// The decoded record, with the identity token removed.
    pub payload: Box<RawValue>,
}

impl Envelope {
    /// The idempotency key for a record of `event_source_arn` with source id `id`.
    pub fn idempotency_key_for(event_source_arn: &str, id: &str) -> String {
        let mut key = String::with_capacity(event_source_arn.len() + 1 + id.len());
        key.push_str(event_source_arn);
        key.push('#');
        key.push_str(id);
        key
    }

    /// Parses an envelope from the Invoke payload.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Serialises the envelope as the Invoke payload.
    pub fn to_payload(&self) -> Vec<u8> {
        // Serialising a struct of strings and `Value`s cannot fail.
        serde_json::to_vec(self).expect("an envelope always serialises")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn wire_format_is_camel_case_and_round_trips() {
        let envelope = Envelope {
            version: ENVELOPE_VERSION,
            tenant_id: TenantId::parse("acme").unwrap(),
            source: Source::Sqs,
            event_source_arn: "arn:aws:sqs:us-east-1:1:q".into(),
            id: "m1".into(),
            idempotency_key: Envelope::idempotency_key_for("arn:aws:sqs:us-east-1:1:q", "m1"),
            arrived_at: "2024-01-01T00:00:00Z".into(),
            correlation_id: "c-1".into(),
            attributes: Map::new(),
            payload: RawValue::from_string(r#"{"a":1,"big":12345678901234567890.123}"#.into())
                .unwrap(),
        };
        let value: Value = serde_json::from_slice(&envelope.to_payload()).unwrap();
        assert_eq!(
            value,
            json!({
                "version": 1, "tenantId": "acme", "source": "sqs",
                "eventSourceArn": "arn:aws:sqs:us-east-1:1:q", "id": "m1",
                "idempotencyKey": "arn:aws:sqs:us-east-1:1:q#m1",
                "arrivedAt": "2024-01-01T00:00:00Z", "correlationId": "c-1",
                "payload": {"a": 1, "big": 12345678901234567890.123_f64}
            })
        );
        let back = Envelope::from_payload(&envelope.to_payload()).unwrap();
        assert_eq!(back.tenant_id, envelope.tenant_id);
        // Exact: the payload's number text is kept, not rounded through f64.
        assert_eq!(
            back.payload.get(),
            r#"{"a":1,"big":12345678901234567890.123}"#
        );
    }

    #[test]
    fn deserialising_refuses_an_invalid_tenant() {
        let bad = json!({
            "version": 1, "tenantId": "a#b", "source": "sqs", "eventSourceArn": "x", "id": "1",
            "idempotencyKey": "x#1", "arrivedAt": "t", "correlationId": "c", "payload": null
        });
        assert!(Envelope::from_payload(bad.to_string().as_bytes()).is_err());
    }
}
