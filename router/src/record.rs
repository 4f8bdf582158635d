//! A record as the routing engine sees it, whatever its source: the id to report, the lane that
//! orders it, the original JSON for the quarantine queue, and either the decoded parts or how to
//! decode them when the record's turn comes. Also the batch's [`Ordering`] and the one comparison
//! of stream sequence numbers. Per-source modules in `crate::source` build these; nothing after
//! them knows the source.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shared::{ENVELOPE_VERSION, EnvelopeHead, Source, TenantId};

use crate::config::Config;
use crate::invocation::InvocationInfo;
use crate::outcome::{Outcome, Rejection, Verdict};

/// The ordering rules of a batch's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordering {
    /// SQS standard: no order; every record runs on its own.
    Independent,
    /// SQS FIFO: records of a lane (message group) in order; a failure stops the rest of its lane.
    Lanes,
    /// Kinesis and DynamoDB Streams: as `Lanes` (partition key), and in addition, once a record
    /// has failed, no record with a sequence number at or above it is started, in any lane.
    Stream,
}

/// One record of a batch, decoded as far as the payload allows.
#[derive(Debug)]
pub struct Record<'a> {
    /// What identifies and orders the record.
    pub meta: RecordMeta<'a>,
    /// The decoded record, or why it is unusable, or how to decode it when its turn comes.
    pub decoded: Pending<'a>,
}

/// Decodes one record from its JSON: the decoded record (or why it is unusable) and the tenant
/// id it claims. Receives the record's id.
pub type DecodeFn = fn(&RawValue, &str, &Config, &InvocationInfo) -> DecodeResult;

/// What a [`DecodeFn`] returns.
pub type DecodeResult = (Result<Decoded, Rejection>, Option<String>);

/// A record's decoding: done, or deferred until the record is routed, so that a large batch
/// never holds every decoded record at once (the event's text is already in memory; the decoded
/// payloads, tokens and envelopes would double it).
pub enum Pending<'a> {
    /// Decoded when the batch was read (boxed: a batch holds many pending records, most of them
    /// deferred, and a decoded record is large).
    Ready(Box<Result<Decoded, Verdict>>),
    /// Decoded by `decode` when the record is routed (the routing engine isolates a panic in it
    /// to the record).
    Deferred {
        /// The record's JSON.
        raw: &'a RawValue,
        /// Its source's decoder.
        decode: DecodeFn,
    },
}

impl std::fmt::Debug for Pending<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Ready(decoded) => f.debug_tuple("Ready").field(decoded).finish(),
            Pending::Deferred { .. } => f.write_str("Deferred"),
        }
    }
}

impl Pending<'_> {
    /// A record decoded when the batch was read.
    pub fn ready(decoded: Result<Decoded, Rejection>) -> Self {
        Pending::Ready(Box::new(decoded.map_err(Verdict::Reject)))
    }

    /// A record whose decoding panicked while `what`: it fails alone (`internal-error`).
    pub fn panicked(what: &str) -> Self {
        Pending::Ready(Box::new(Err(Verdict::Fail(Outcome::internal_error(what)))))
    }

    /// Decodes a record now, when the batch is read, with the same isolation the engine gives a
    /// deferred decoding: a panic fails this record (`internal-error`) and nothing else.
    /// Returns the record and the tenant it claims.
    pub fn decode_now(decode: impl FnOnce() -> DecodeResult) -> (Self, Option<String>) {
        match contain(decode) {
            Some((decoded, claimed)) => (Self::ready(decoded), claimed),
            None => (Self::panicked("decoding the record"), None),
        }
    }

    /// The tenant the record claims, without keeping what decoding it produced (a deferred
    /// record is decoded and the result dropped; a panic there is `None`, and the record fails
    /// alone when it is routed). The engine's fair start (`engine::fair`) orders lanes by it.
    pub fn peek_tenant(
        &self,
        meta: &RecordMeta<'_>,
        config: &Config,
        info: &InvocationInfo,
    ) -> Option<TenantId> {
        match self {
            Pending::Ready(decoded) => decoded.as_ref().as_ref().ok().map(|d| d.tenant.clone()),
            Pending::Deferred { raw, decode } => contain(|| decode(raw, &meta.id, config, info))
                .and_then(|(decoded, _)| decoded.ok())
                .map(|decoded| decoded.tenant),
        }
    }

    /// The decoded record, decoding it now if it was deferred (and recording the tenant it
    /// claims in `meta`).
    pub fn resolve(
        self,
        meta: &RecordMeta<'_>,
        config: &Config,
        info: &InvocationInfo,
    ) -> Result<Decoded, Verdict> {
        match self {
            Pending::Ready(decoded) => *decoded,
            Pending::Deferred { raw, decode } => {
                let (decoded, claimed) = decode(raw, &meta.id, config, info);
                if let Some(claimed) = claimed {
                    let _ = meta.claimed_tenant.set(claimed);
                }
                decoded.map_err(Verdict::Reject)
            }
        }
    }
}

/// Runs one record's synchronous decoding step, `None` if it panicked: the one place where a
/// panic while decoding is kept to its record (every source's decoding, KPL de-aggregation, the
/// deferred decoding and the fair start's tenant peek go through it; the engine's asynchronous
/// steps through `engine::isolation`).
pub fn contain<T>(step: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(AssertUnwindSafe(step)).ok()
}

/// The parts of a record that outlive its routing: identity, order and the original JSON.
#[derive(Debug)]
pub struct RecordMeta<'a> {
    /// Identifier reported in `batchItemFailures` (SQS `messageId`, stream sequence number).
    pub id: String,
    /// The record exactly as the event source sent it.
    pub raw: &'a RawValue,
    /// Records sharing a lane are processed in order, one at a time (FIFO group, partition key).
    pub lane: Option<String>,
    /// The tenant id as found in the record, even if invalid, for logs and the quarantine queue
    /// (set when the record is decoded).
    pub claimed_tenant: OnceLock<String>,
    /// ARN of the queue, stream or table (for an EventBridge event, its `source`): with `id`,
    /// what identifies the record beyond its batch — two streams or tables can share sequence
    /// numbers. Shared by the records of one source (`ArnCache`).
    pub source_arn: Arc<str>,
    /// For a user record of a KPL aggregate (`raw`): which one, and how to cut it out.
    pub user_record: Option<UserRecord>,
}

/// The envelope id of user record `index` of the aggregate with sequence number `id`.
pub fn user_record_id(id: &str, index: usize) -> String {
    format!("{id}:{index}")
}

/// Cuts user record `index` out of its aggregate `raw`, as a source record of its own (the
/// quarantine queue keeps it alone); `None` when `raw` holds no such user record.
pub type CutFn = fn(&RawValue, usize) -> Option<Box<RawValue>>;

/// One user record of an aggregate, as its source hands it to the engine.
#[derive(Debug, Clone, Copy)]
pub struct UserRecord {
    /// Its index in the aggregate.
    pub index: usize,
    /// The source's way to cut it out of the aggregate.
    pub cut: CutFn,
}

impl UserRecord {
    /// This user record alone, cut out of `raw`.
    pub fn alone(&self, raw: &RawValue) -> Option<Box<RawValue>> {
        (self.cut)(raw, self.index)
    }
}

/// Hands out one shared [`RecordMeta::source_arn`] per distinct ARN of a batch (an event source
/// mapping's batch has one), so 10,000 records do not hold 10,000 copies.
#[derive(Default)]
pub struct ArnCache(Option<Arc<str>>);

impl ArnCache {
    /// `arn`, shared with the previous record's when it is the same.
    pub fn get(&mut self, arn: &str) -> Arc<str> {
        match &self.0 {
            Some(last) if **last == *arn => last.clone(),
            _ => {
                let shared: Arc<str> = Arc::from(arn);
                self.0 = Some(shared.clone());
                shared
            }
        }
    }
}

/// A `claimed_tenant` holding `tenant`, if any.
pub fn claimed(tenant: Option<String>) -> OnceLock<String> {
    let cell = OnceLock::new();
    if let Some(tenant) = tenant {
        let _ = cell.set(tenant);
    }
    cell
}

/// What routing needs from a well-formed record.
#[derive(Debug)]
pub struct Decoded {
    /// The tenant id the record claims (pattern-checked; not yet proven).
    pub tenant: TenantId,
    /// The identity token, removed from the payload.
    pub token: Option<String>,
    /// Arrival time at the source service, in milliseconds since the epoch.
    pub arrived_at_ms: i64,
    /// The envelope to send once the tenant is proven.
    pub envelope: Outgoing,
    /// X-Ray trace header for the Invoke: the record's own (SQS `AWSTraceHeader`), else the
    /// invocation's.
    pub trace_header: Option<String>,
}

/// An envelope ready to be written for the record's tenant: its fields, and its payload as JSON
/// text from which the token was cut.
#[derive(Debug)]
pub struct Outgoing {
    /// The record's source.
    pub source: Source,
    /// ARN of the queue, stream or table.
    pub event_source_arn: String,
    /// The record's id at its source.
    pub id: String,
    /// `<eventSourceArn>#<id>`.
    pub idempotency_key: String,
    /// Arrival time, RFC 3339.
    pub arrived_at: String,
    /// The correlation id.
    pub correlation_id: String,
    /// Source-specific facts.
    pub attributes: Map<String, Value>,
    /// The decoded record, token removed.
    pub payload: PayloadText,
}

impl Outgoing {
    /// The Invoke payload: the envelope for `tenant` with `ordering_key` (`shared::Envelope`'s
    /// format, written by `shared::EnvelopeHead`).
    pub fn to_payload(&self, tenant: &TenantId, ordering_key: Option<&str>) -> Vec<u8> {
        let head = EnvelopeHead {
            version: ENVELOPE_VERSION,
            tenant_id: tenant,
            source: self.source,
            event_source_arn: &self.event_source_arn,
            id: &self.id,
            idempotency_key: &self.idempotency_key,
            arrived_at: &self.arrived_at,
            correlation_id: &self.correlation_id,
            ordering_key,
            attributes: &self.attributes,
        };
        let mut out = Vec::with_capacity(256 + self.payload.len());
        head.write(self.payload.pieces(), &mut out);
        out
    }
}

/// One JSON value as text with byte ranges cut out of it (the token's member): the pieces left
/// join into one valid JSON value. Only the source modules build it, from text they have read as
/// JSON, cutting whole members.
#[derive(Debug)]
pub struct PayloadText {
    text: String,
    cuts: Vec<std::ops::Range<usize>>,
}

impl PayloadText {
    /// `text` (one JSON value) whole.
    pub(crate) fn whole(text: String) -> Self {
        Self {
            text,
            cuts: Vec::new(),
        }
    }

    /// `text` without `cuts` (in order, not overlapping).
    pub(crate) fn cut(text: String, cuts: Vec<std::ops::Range<usize>>) -> Self {
        Self { text, cuts }
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.cuts
            .iter()
            .map(move |cut| {
                let piece = &self.text[start..cut.start];
                start = cut.end;
                piece
            })
            .chain(std::iter::once(
                &self.text[self.cuts.last().map_or(0, |cut| cut.end)..],
            ))
    }

    /// Bytes once joined.
    pub fn len(&self) -> usize {
        self.text.len() - self.cuts.iter().map(|cut| cut.len()).sum::<usize>()
    }

    /// Whether it is empty (never, for a JSON value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The joined text.
    pub fn joined(&self) -> String {
        self.pieces().collect()
    }
}

/// Compares two stream sequence numbers: decimal strings of up to 129 digits, compared as
/// numbers without converting them to machine integers.
pub fn compare_sequence_numbers(a: &str, b: &str) -> std::cmp::Ordering {
    let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit()) && !s.is_empty();
    if !(digits(a) && digits(b)) {
        return a.cmp(b);
    }
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::*;

    use super::compare_sequence_numbers as cmp;

    #[test]
    fn sequence_numbers_compare_as_decimal_numbers() {
        let n40a = "4967112958773434937100000000000000000001";
        let n40b = "4967112958773434937100000000000000000010";
        assert_eq!(cmp(n40a, n40b), Less);
        let n129 = "9".repeat(129);
        let n128 = "9".repeat(128);
        assert_eq!(cmp(&n128, &n129), Less);
        assert_eq!(cmp(&n129, &n129), Equal);
        // Longer is larger even when lexicographically smaller.
        assert_eq!(cmp("100", "99"), Greater);
        assert_eq!(cmp("00099", "100"), Less);
        let mut big = "1".to_owned() + &"0".repeat(128);
        assert_eq!(cmp(&big, &n128), Greater);
        big.push('0');
        assert_eq!(cmp(&big, &n129), Greater);
    }
}

#[cfg(test)]
mod isolation_tests {
    use super::*;

    #[test]
    fn a_panic_while_decoding_now_fails_that_record() {
        let (pending, claimed) = Pending::decode_now(|| panic!("on purpose"));
        assert!(claimed.is_none());
        let Pending::Ready(decoded) = pending else {
            panic!("decoded now")
        };
        match *decoded {
            Err(Verdict::Fail(outcome)) => assert_eq!(outcome.reason(), Some("internal-error")),
            other => panic!("{other:?}"),
        }
    }
}
