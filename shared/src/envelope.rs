//! The envelope: one JSON object per record, the same for every event source, that the router sends
//! to the tenant-isolated backend as the async Invoke payload (PRODUCT.md §4), and the envelope
//! batch (`{version, tenantId, records: [envelope…]}`) that `ROUTER_DELIVERY=tenant-batch` sends
//! instead: one Invoke carrying several records of one tenant.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::TenantId;

/// Version of the envelope format written in [`Envelope::version`].
pub const ENVELOPE_VERSION: u32 = 1;

/// Largest payload an asynchronous (`InvocationType=Event`) Invoke accepts, in bytes: 1 MB
/// (<https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>). An envelope above it is
/// never sent asynchronously.
pub const ASYNC_PAYLOAD_LIMIT: usize = 1024 * 1024;

/// Largest payload a synchronous (`InvocationType=RequestResponse`) Invoke accepts, and largest
/// response it returns, in bytes: 6 MB each
/// (<https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>).
pub const SYNC_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// Largest SQS message, body and message attributes together: 1 MiB since 2025, and the
/// largest `MaximumMessageSize` a queue can have
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html>).
pub const SQS_MESSAGE_LIMIT: usize = 1024 * 1024;

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
    /// Records with the same ordering key must be processed in order, one after the other: the
    /// SQS FIFO message group id, the Kinesis partition key, the DynamoDB item's keys. Absent for
    /// records without an order (SQS standard queues, EventBridge events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
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
        let mut out = Vec::with_capacity(256 + self.payload.get().len());
        self.head().write([self.payload.get()], &mut out);
        out
    }

    /// Every field but the payload, borrowed.
    pub fn head(&self) -> EnvelopeHead<'_> {
        EnvelopeHead {
            version: self.version,
            tenant_id: &self.tenant_id,
            source: self.source,
            event_source_arn: &self.event_source_arn,
            id: &self.id,
            idempotency_key: &self.idempotency_key,
            arrived_at: &self.arrived_at,
            correlation_id: &self.correlation_id,
            ordering_key: self.ordering_key.as_deref(),
            attributes: &self.attributes,
        }
    }
}

/// An envelope's fields but the payload, borrowed, so that
/// an envelope can be written around payload text that is already JSON — the router's, cut from
/// the record — without parsing it again. [`Envelope::to_payload`] writes through it too, so both
/// give the same bytes as serialising an [`Envelope`].
#[derive(Clone, Copy, Debug)]
pub struct EnvelopeHead<'a> {
    /// See [`Envelope::version`].
    pub version: u32,
    /// See [`Envelope::tenant_id`].
    pub tenant_id: &'a TenantId,
    /// See [`Envelope::source`].
    pub source: Source,
    /// See [`Envelope::event_source_arn`].
    pub event_source_arn: &'a str,
    /// See [`Envelope::id`].
    pub id: &'a str,
    /// See [`Envelope::idempotency_key`].
    pub idempotency_key: &'a str,
    /// See [`Envelope::arrived_at`].
    pub arrived_at: &'a str,
    /// See [`Envelope::correlation_id`].
    pub correlation_id: &'a str,
    /// See [`Envelope::ordering_key`].
    pub ordering_key: Option<&'a str>,
    /// See [`Envelope::attributes`].
    pub attributes: &'a Map<String, Value>,
}

impl EnvelopeHead<'_> {
    /// Writes the envelope with `payload`, pieces of JSON text that together are one JSON value
    /// (the caller's promise: they are written as they are), in the field order and escaping of
    /// [`Envelope`]'s serialisation.
    pub fn write<'p>(&self, payload: impl IntoIterator<Item = &'p str>, out: &mut Vec<u8>) {
        let string = |out: &mut Vec<u8>, key: &str, value: &str| {
            out.extend_from_slice(key.as_bytes());
            serde_json::to_writer(&mut *out, value).expect("writing to a Vec cannot fail");
        };
        out.extend_from_slice(b"{\"version\":");
        out.extend_from_slice(self.version.to_string().as_bytes());
        string(out, ",\"tenantId\":", self.tenant_id.as_str());
        string(out, ",\"source\":", self.source.as_str());
        string(out, ",\"eventSourceArn\":", self.event_source_arn);
        string(out, ",\"id\":", self.id);
        string(out, ",\"idempotencyKey\":", self.idempotency_key);
        string(out, ",\"arrivedAt\":", self.arrived_at);
        string(out, ",\"correlationId\":", self.correlation_id);
        if let Some(key) = self.ordering_key {
            string(out, ",\"orderingKey\":", key);
        }
        if !self.attributes.is_empty() {
            out.extend_from_slice(b",\"attributes\":");
            serde_json::to_writer(&mut *out, self.attributes)
                .expect("writing to a Vec cannot fail");
        }
        out.extend_from_slice(b",\"payload\":");
        for piece in payload {
            out.extend_from_slice(piece.as_bytes());
        }
        out.push(b'}');
    }
}

/// What the backend must do after a record of an envelope batch fails (`ordering`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchOrdering {
    /// SQS FIFO: the later records with the failed record's `orderingKey` are not run
    /// (`skipped`); the others go on.
    Lanes,
    /// Kinesis, DynamoDB Streams: no later record of the batch is run (`skipped`), since the
    /// event source mapping redelivers everything after the lowest failed sequence number.
    Stream,
}

/// How the backend answers an envelope batch (`answer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchAnswer {
    /// The caller (a `request-response` router) reads every record's result from the answer
    /// ([`crate::answer::BatchResult`]): the invocation succeeds whatever the records' results.
    /// Without it a failed record makes the invocation a function error, so Lambda's async
    /// retries run the batch again.
    PerRecord,
}

/// Several envelopes of one tenant in one Invoke payload (`ROUTER_DELIVERY=tenant-batch`).
///
/// Every record is a complete [`Envelope`], exactly as record mode would send it, so a handler
/// sees the same thing in both modes. `records` keeps the order the router must preserve (FIFO
/// group, stream partition key): the backend processes them in that order, one at a time.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeBatch {
    /// Format version, [`ENVELOPE_VERSION`].
    pub version: u32,
    /// The tenant of every record; the Invoke carries the same value.
    pub tenant_id: TenantId,
    /// What a failed record means for the later ones; absent: nothing (unordered records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<BatchOrdering>,
    /// How to answer; absent: a failed record is a function error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<BatchAnswer>,
    /// The records, in delivery order.
    pub records: Vec<Envelope>,
}

/// What a tenant-isolated function receives: one envelope, or an envelope batch.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// `ROUTER_DELIVERY=record`: one record.
    One(Envelope),
    /// `ROUTER_DELIVERY=tenant-batch`: the records of one tenant.
    Batch(EnvelopeBatch),
}

impl Delivery {
    /// Parses an Invoke payload of either shape: an object with a `records` array is a batch.
    ///
    /// The shape is read first with a pass that skips every value, then the payload is parsed
    /// once as that shape: serde's untagged enums buffer values, which the envelope's
    /// `RawValue` payload does not support, so the two passes are the price of exact payloads.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Shape<'a> {
            #[serde(borrow)]
            records: Option<&'a RawValue>,
        }
        let shape: Shape<'_> = serde_json::from_slice(bytes)?;
        if shape.records.is_some() {
            serde_json::from_slice(bytes).map(Delivery::Batch)
        } else {
            serde_json::from_slice(bytes).map(Delivery::One)
        }
    }

    /// Parses an Invoke payload ([`Delivery::from_payload`]) and checks what JSON alone does not:
    /// the envelope (and the batch, and each of its records) is of version [`ENVELOPE_VERSION`],
    /// and every record has a non-empty `id` and `idempotencyKey` (records without one would all
    /// share one idempotency item). The error says which record and why.
    pub fn read(bytes: &[u8]) -> Result<Self, String> {
        let delivery = Self::from_payload(bytes).map_err(|e| e.to_string())?;
        match &delivery {
            Delivery::One(envelope) => check_envelope(envelope, "the envelope")?,
            Delivery::Batch(batch) => {
                check_version(batch.version, "the envelope batch")?;
                for (position, envelope) in batch.records.iter().enumerate() {
                    check_envelope(envelope, &format!("record {position} of the batch"))?;
                }
            }
        }
        Ok(delivery)
    }
}

fn check_version(version: u32, what: &str) -> Result<(), String> {
    if version == ENVELOPE_VERSION {
        Ok(())
    } else {
        Err(format!(
            "{what} is of version {version}; this guard reads version {ENVELOPE_VERSION}"
        ))
    }
}

fn check_envelope(envelope: &Envelope, what: &str) -> Result<(), String> {
    check_version(envelope.version, what)?;
    if envelope.id.is_empty() {
        return Err(format!("{what} has an empty id"));
    }
    if envelope.idempotency_key.is_empty() {
        return Err(format!(
            "{what} (id {:?}) has an empty idempotencyKey",
            envelope.id
        ));
    }
    Ok(())
}

/// Writes an envelope batch payload from envelopes already serialised with
/// [`Envelope::to_payload`], straight into the one buffer that is sent, without parsing them again;
/// it knows its size before each envelope is added, and where each envelope lies in it.
#[derive(Debug)]
pub struct BatchPayload {
    buffer: Vec<u8>,
    head: usize,
    /// Start and end of each envelope in `buffer`.
    records: Vec<(usize, usize)>,
}

impl BatchPayload {
    /// An empty batch for `tenant`, unordered, answered with a function error on failure.
    pub fn new(tenant: &TenantId) -> Self {
        Self::with(tenant, None, None)
    }

    /// An empty batch for `tenant` with its ordering rule and answer shape
    /// ([`EnvelopeBatch::ordering`], [`EnvelopeBatch::answer`]).
    pub fn with(
        tenant: &TenantId,
        ordering: Option<BatchOrdering>,
        answer: Option<BatchAnswer>,
    ) -> Self {
        let tenant = serde_json::to_string(tenant.as_str()).expect("a string serialises");
        let mut head = format!("{{\"version\":{ENVELOPE_VERSION},\"tenantId\":{tenant}");
        if let Some(ordering) = ordering {
            let ordering = serde_json::to_string(&ordering).expect("an enum serialises");
            head.push_str(&format!(",\"ordering\":{ordering}"));
        }
        if let Some(answer) = answer {
            let answer = serde_json::to_string(&answer).expect("an enum serialises");
            head.push_str(&format!(",\"answer\":{answer}"));
        }
        head.push_str(",\"records\":[");
        let mut buffer = head.into_bytes();
        let head = buffer.len();
        buffer.extend_from_slice(b"]}");
        Self {
            head,
            buffer,
            records: Vec::new(),
        }
    }

    /// An empty batch with the same head (tenant, ordering, answer) as this one.
    pub fn empty_like(&self) -> Self {
        let mut buffer = self.buffer[..self.head].to_vec();
        buffer.extend_from_slice(b"]}");
        Self {
            head: self.head,
            buffer,
            records: Vec::new(),
        }
    }

    /// Size of the payload with the envelopes added so far.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether no envelope was added.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Number of envelopes added.
    pub fn count(&self) -> usize {
        self.records.len()
    }

    /// Size of the payload if an envelope of `envelope_len` bytes were added.
    pub fn len_with(&self, envelope_len: usize) -> usize {
        self.len() + envelope_len + usize::from(!self.records.is_empty())
    }

    /// Adds a serialised envelope.
    pub fn push(&mut self, envelope: &[u8]) {
        self.buffer.truncate(self.buffer.len() - 2);
        if !self.records.is_empty() {
            self.buffer.push(b',');
        }
        let start = self.buffer.len();
        self.buffer.extend_from_slice(envelope);
        self.records.push((start, self.buffer.len()));
        self.buffer.extend_from_slice(b"]}");
    }

    /// The `index`th envelope added.
    pub fn record(&self, index: usize) -> &[u8] {
        let (start, end) = self.records[index];
        &self.buffer[start..end]
    }

    /// Keeps only the envelopes for which `keep(index)` holds, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let records = std::mem::take(&mut self.records);
        let old = std::mem::take(&mut self.buffer);
        self.buffer = old[..self.head].to_vec();
        self.buffer.extend_from_slice(b"]}");
        for (index, (start, end)) in records.into_iter().enumerate() {
            if keep(index) {
                self.push(&old[start..end]);
            }
        }
    }

    /// Empties the batch, keeping its tenant.
    pub fn clear(&mut self) {
        self.buffer.truncate(self.head);
        self.buffer.extend_from_slice(b"]}");
        self.records.clear();
    }

    /// The payload, `{"version":1,"tenantId":…,"records":[…]}`, as it is: no copy is made.
    pub fn payload(&self) -> &[u8] {
        &self.buffer
    }

    /// A copy of the payload.
    pub fn to_payload(&self) -> Vec<u8> {
        self.buffer.clone()
    }
}

/// How many records a payload carries, without keeping it: the length of its `records` array
/// (an envelope batch) or of its `Records` array (an event source batch); 1 for anything else.
pub fn records_carried(payload: &[u8]) -> usize {
    #[derive(Deserialize)]
    struct Carried {
        records: Option<Vec<serde::de::IgnoredAny>>,
        #[serde(rename = "Records")]
        event_records: Option<Vec<serde::de::IgnoredAny>>,
    }
    serde_json::from_slice::<Carried>(payload)
        .ok()
        .and_then(|c| c.records.or(c.event_records))
        .map_or(1, |records| records.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn payload_records_are_counted() {
        assert_eq!(records_carried(br#"{"records": [1, 2, 3]}"#), 3);
        assert_eq!(records_carried(br#"{"Records": [{}, {}]}"#), 2);
        assert_eq!(records_carried(br#"{"tenantId": "acme"}"#), 1);
        assert_eq!(records_carried(b"not json"), 1);
    }

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
            ordering_key: None,
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
    fn the_writer_gives_the_bytes_of_serde_serialisation() {
        let mut with_attributes = envelope("a/c=me+x@y z", "x");
        with_attributes.id = "id \"é\\ \u{1}\n".into();
        with_attributes.version = 7;
        with_attributes
            .attributes
            .insert("messageGroupId".into(), json!("g\"1"));
        with_attributes
            .attributes
            .insert("subRecord".into(), json!(3));
        with_attributes.correlation_id = "\u{7f}\u{2028}".into();
        with_attributes.ordering_key = Some("k\"ey\u{2}".into());
        for e in [envelope("acme", "1"), with_attributes] {
            assert_eq!(e.to_payload(), serde_json::to_vec(&e).unwrap());
        }
        // A payload in pieces joins into one value.
        let e = envelope("acme", "2");
        let mut out = Vec::new();
        e.head().write(["{\"n\":", "\"2\"}"], &mut out);
        assert_eq!(out, e.to_payload());
    }

    #[test]
    fn deserialising_refuses_an_invalid_tenant() {
        let bad = json!({
            "version": 1, "tenantId": "a#b", "source": "sqs", "eventSourceArn": "x", "id": "1",
            "idempotencyKey": "x#1", "arrivedAt": "t", "correlationId": "c", "payload": null
        });
        assert!(Envelope::from_payload(bad.to_string().as_bytes()).is_err());
    }

    fn envelope(tenant: &str, id: &str) -> Envelope {
        Envelope {
            version: ENVELOPE_VERSION,
            tenant_id: TenantId::parse(tenant).unwrap(),
            source: Source::Kinesis,
            event_source_arn: "arn:s".into(),
            id: id.into(),
            idempotency_key: Envelope::idempotency_key_for("arn:s", id),
            arrived_at: "2024-01-01T00:00:00Z".into(),
            correlation_id: "c".into(),
            ordering_key: None,
            attributes: Map::new(),
            payload: RawValue::from_string(format!(r#"{{"n":"{id}"}}"#)).unwrap(),
        }
    }

    #[test]
    fn a_batch_head_carries_its_ordering_and_answer_and_parses_back() {
        let tenant = TenantId::parse("acme").unwrap();
        let mut batch = BatchPayload::with(
            &tenant,
            Some(BatchOrdering::Lanes),
            Some(BatchAnswer::PerRecord),
        );
        let mut keyed = envelope("acme", "1");
        keyed.ordering_key = Some("group-1".into());
        let record = keyed.to_payload();
        assert_eq!(record, serde_json::to_vec(&keyed).unwrap());
        batch.push(&record);
        let empty = batch.empty_like();
        assert!(empty.is_empty());
        assert_eq!(
            serde_json::from_slice::<Value>(empty.payload()).unwrap(),
            json!({"version": 1, "tenantId": "acme", "ordering": "lanes",
                "answer": "per-record", "records": []})
        );
        let Delivery::Batch(parsed) = Delivery::from_payload(batch.payload()).unwrap() else {
            panic!("a batch");
        };
        assert_eq!(parsed.ordering, Some(BatchOrdering::Lanes));
        assert_eq!(parsed.answer, Some(BatchAnswer::PerRecord));
        assert_eq!(parsed.records[0].ordering_key.as_deref(), Some("group-1"));
        let Delivery::Batch(plain) =
            Delivery::from_payload(BatchPayload::new(&tenant).payload()).unwrap()
        else {
            panic!("a batch");
        };
        assert_eq!((plain.ordering, plain.answer), (None, None));
    }

    #[test]
    fn batch_payload_knows_its_size_and_parses_back_in_order() {
        let tenant = TenantId::parse("acme").unwrap();
        let mut batch = BatchPayload::new(&tenant);
        assert!(batch.is_empty());
        assert_eq!(batch.len(), batch.to_payload().len());
        for id in ["3", "1", "2"] {
            let record = envelope("acme", id).to_payload();
            let expected = batch.len_with(record.len());
            batch.push(&record);
            assert_eq!(batch.len(), expected);
            assert_eq!(batch.to_payload().len(), expected);
            assert_eq!(batch.record(batch.count() - 1), record.as_slice());
        }
        let Delivery::Batch(parsed) = Delivery::from_payload(&batch.to_payload()).unwrap() else {
            panic!("a batch parses as a batch");
        };
        assert_eq!(parsed.version, ENVELOPE_VERSION);
        assert_eq!(parsed.tenant_id, tenant);
        let ids: Vec<_> = parsed.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["3", "1", "2"]);
        batch.retain(|index| index != 1);
        let Delivery::Batch(kept) = Delivery::from_payload(&batch.to_payload()).unwrap() else {
            panic!("a batch");
        };
        let ids: Vec<_> = kept.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["3", "2"]);
        assert_eq!(batch.len(), batch.to_payload().len());
        assert_eq!(batch.payload(), batch.to_payload().as_slice());
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.len(), batch.to_payload().len());
    }

    #[test]
    fn a_single_envelope_parses_as_one() {
        let payload = envelope("acme", "m1").to_payload();
        assert!(matches!(
            Delivery::from_payload(&payload),
            Ok(Delivery::One(e)) if e.id == "m1"
        ));
        assert!(Delivery::from_payload(br#"{"version":1,"tenantId":"a","records":{}}"#).is_err());
        assert!(Delivery::from_payload(b"[]").is_err());
    }

    #[test]
    fn reading_refuses_unknown_versions_and_empty_ids_or_keys() {
        let good = envelope("acme", "m1");
        assert!(Delivery::read(&good.to_payload()).is_ok());
        let mut newer = good.clone();
        newer.version = 2;
        let mut no_id = good.clone();
        no_id.id.clear();
        let mut no_key = good.clone();
        no_key.idempotency_key.clear();
        for (bad, why) in [
            (&newer, "version 2"),
            (&no_id, "empty id"),
            (&no_key, "empty idempotencyKey"),
        ] {
            let error = Delivery::read(&bad.to_payload()).unwrap_err();
            assert!(error.contains(why), "{error}");
            // Inside a batch, the whole batch is refused, naming the record.
            let tenant = TenantId::parse("acme").unwrap();
            let mut batch = BatchPayload::new(&tenant);
            batch.push(&good.to_payload());
            batch.push(&bad.to_payload());
            let error = Delivery::read(batch.payload()).unwrap_err();
            assert!(error.contains("record 1") && error.contains(why), "{error}");
        }
        let batch = br#"{"version":3,"tenantId":"acme","records":[]}"#;
        assert!(Delivery::read(batch).unwrap_err().contains("version 3"));
    }
}
