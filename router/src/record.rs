//! A record as the batch core sees it, whatever its source: the id to report, the lane that orders
//! it, the original JSON for the quarantine queue, and either the decoded parts or why decoding
//! failed. Per-source modules in [`crate::source`] build these; nothing after them knows the source.

use std::sync::OnceLock;

use serde_json::Value;
use serde_json::value::RawValue;
use shared::{Envelope, TenantId};

use crate::config::Config;
use crate::handler::InvocationInfo;
use crate::outcome::Rejection;

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
    Ready(Box<Result<Decoded, Rejection>>),
    /// Decoded by `decode` when the record is routed.
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
        Pending::Ready(Box::new(decoded))
    }

    /// The decoded record, decoding it now if it was deferred (and recording the tenant it
    /// claims in `meta`).
    pub fn resolve(
        self,
        meta: &RecordMeta<'_>,
        config: &Config,
        info: &InvocationInfo,
    ) -> Result<Decoded, Rejection> {
        match self {
            Pending::Ready(decoded) => *decoded,
            Pending::Deferred { raw, decode } => {
                let (decoded, claimed) = decode(raw, &meta.id, config, info);
                if let Some(claimed) = claimed {
                    let _ = meta.claimed_tenant.set(claimed);
                }
                decoded
            }
        }
    }
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
    pub envelope: Envelope,
    /// X-Ray trace header for the Invoke: the record's own (SQS `AWSTraceHeader`), else the
    /// invocation's.
    pub trace_header: Option<String>,
}

/// Reads a string at a JSON pointer.
pub fn string_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Removes and returns the value at a JSON pointer (RFC 6901; `~1` is `/`, `~0` is `~`).
pub fn take_at(value: &mut Value, pointer: &str) -> Option<Value> {
    let (parent, last) = pointer.rsplit_once('/')?;
    let key = if last.contains('~') {
        last.replace("~1", "/").replace("~0", "~")
    } else {
        last.to_owned()
    };
    match value.pointer_mut(parent)? {
        Value::Object(map) => map.remove(&key),
        Value::Array(items) => {
            let index: usize = key.parse().ok()?;
            (index < items.len()).then(|| items.remove(index))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn take_at_removes_nested_and_escaped_keys() {
        let mut v = json!({"a": {"b/c": 1, "d~e": 2, "keep": 3}, "t": "x"});
        assert_eq!(take_at(&mut v, "/a/b~1c"), Some(json!(1)));
        assert_eq!(take_at(&mut v, "/a/d~0e"), Some(json!(2)));
        assert_eq!(take_at(&mut v, "/t"), Some(json!("x")));
        assert_eq!(take_at(&mut v, "/missing"), None);
        assert_eq!(v, json!({"a": {"keep": 3}}));
    }
}
