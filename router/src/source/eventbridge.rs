//! EventBridge events delivered to the router directly (a rule targeting it: one async invoke per
//! event, no batch). The payload is `detail`; tenant and token pointers apply to it. The event's
//! `id` is the record id, its `source` stands for the event source ARN.
//!
//! The event's `time` is set by whoever calls `PutEvents`, so it proves nothing: tokens and
//! `ROUTER_MAX_RECORD_AGE_SECONDS` are judged at processing time (the envelope's `arrivedAt`), and
//! `time` is passed on only as an attribute. Otherwise a leaked, long-expired token could be
//! replayed by backdating the event.
//!
//! A record that is not delivered — a transient failure, or a rejection that is not in the
//! quarantine queue — makes the invocation fail (`crate::handler`), so Lambda's async retries and
//! the router's on-failure destination keep the event.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shared::Source;

use super::build::{self, Parts};
use crate::config::Config;
use crate::invocation::{BatchError, InvocationInfo};
use crate::outcome::Rejection;
use crate::record::{Pending, Record, RecordMeta, claimed};

/// Decodes one EventBridge event into one record.
pub fn decode<'a>(
    raw: &'a RawValue,
    mut event: Map<String, Value>,
    config: &Config,
    info: &InvocationInfo,
) -> Result<Record<'a>, BatchError> {
    let id = match event.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => {
            return Err(BatchError::Malformed(
                "the EventBridge event has no id".into(),
            ));
        }
    };
    // Processing time, never the producer's `time` (see the module documentation).
    let arrived_at_ms = info.now_ms;
    let source = event
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let source_arn = source.as_str().into();
    let mut attributes = Map::new();
    for key in ["detail-type", "source", "account", "region", "time"] {
        if let Some(value) = event.get(key) {
            attributes.insert(camel(key), value.clone());
        }
    }
    let detail = event.remove("detail").unwrap_or(Value::Null);
    let (decoded, claimed_tenant) = Pending::decode_now(|| {
        if detail.is_object() {
            let parts = Parts {
                source: Source::Eventbridge,
                id: &id,
                event_source_arn: source,
                arrived_at_ms,
                payload: detail,
                attributes,
                trace_header: None,
            };
            build::build(parts, config, info, |_| None, |_| None)
        } else {
            (
                Err(Rejection::new(
                    "malformed-body",
                    "the event's detail is not a JSON object",
                )),
                None,
            )
        }
    });
    Ok(Record {
        meta: RecordMeta {
            id,
            raw,
            lane: None,
            claimed_tenant: claimed(claimed_tenant),
            source_arn,
            user_record: None,
        },
        decoded,
    })
}

fn camel(key: &str) -> String {
    match key {
        "detail-type" => "detailType".into(),
        other => other.into(),
    }
}
