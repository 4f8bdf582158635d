//! A record as the batch core sees it, whatever its source: the id to report, the lane that orders
//! it, the original JSON for the quarantine queue, and either the decoded parts or why decoding
//! failed. Per-source modules in [`crate::source`] build these; nothing after them knows the source.

use serde_json::Value;
use serde_json::value::RawValue;
use shared::{Envelope, TenantId};

use crate::outcome::Rejection;

/// One record of a batch, decoded as far as the payload allows.
#[derive(Debug)]
pub struct Record<'a> {
    /// What identifies and orders the record.
    pub meta: RecordMeta<'a>,
    /// The decoded record, or why it is unusable.
    pub decoded: Result<Decoded, Rejection>,
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
    /// The tenant id as found in the record, even if invalid, for logs and the quarantine queue.
    pub claimed_tenant: Option<String>,
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
    let key = last.replace("~1", "/").replace("~0", "~");
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
