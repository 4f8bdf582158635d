//! DynamoDB Streams batches.
//!
//! The payload is the item image converted from attribute-value JSON to plain JSON
//! ([`write_plain`]), exactly: numbers are copied as the text DynamoDB sent, so
//! `{"N": "12345678901234567890.123"}` arrives as `12345678901234567890.123`. Which image:
//! - `INSERT` and `MODIFY` use `NewImage`, `REMOVE` uses `OldImage`;
//! - when that image is absent (a `KEYS_ONLY` stream, a `NEW_IMAGE` stream's `REMOVE`, or a
//!   `REMOVE` without `OldImage`) the payload is the item's `Keys`, and the envelope attribute
//!   `image` says `keys` — tenant and token are then looked up in the keys like in any image.
//!
//! Arrival time is `ApproximateCreationDateTime`; records are ordered by their `Keys`; failures are
//! reported by `SequenceNumber` (lowest first,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>).
//! Deletions by TTL (`userIdentity` of type `Service`, principal `dynamodb.amazonaws.com`) are
//! marked with the attribute `ttlDeletion: true`.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_dynamo::AttributeValue;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shared::Source;

use super::build::{self, Parts};
use super::document::Document;
use crate::config::{Config, TenantFrom};
use crate::invocation::{BatchError, InvocationInfo};
use crate::record::{ArnCache, DecodeResult, Pending, Record, RecordMeta, claimed};

/// Decodes every record of a DynamoDB Streams batch.
pub fn decode<'a>(
    raw: &[&'a RawValue],
    config: &Config,
    info: &InvocationInfo,
) -> Result<Vec<Record<'a>>, BatchError> {
    let mut records = Vec::with_capacity(raw.len());
    let mut arns = ArnCache::default();
    for (index, raw) in raw.iter().enumerate() {
        let record = match serde_json::from_str::<EventRecord>(raw.get()) {
            Ok(record) => record,
            Err(error) => {
                // Unreadable, but reportable if its identifier can be found.
                records.push(build::unreadable_record(
                    raw,
                    index,
                    ("dynamodb", "SequenceNumber"),
                    "a DynamoDB stream record",
                    &error,
                )?);
                continue;
            }
        };
        // Streams always carry a SequenceNumber; a record without one can still be routed, but
        // if it fails the handler must fail the whole batch (see `Router::route_event`).
        let id = record.change.sequence_number.clone().unwrap_or_default();
        let envelope_id = if id.is_empty() {
            record.event_id.clone()
        } else {
            id.clone()
        };
        let lane = Some(plain_text(&record.change.keys));
        let source_arn = arns.get(record.event_source_arn.as_deref().unwrap_or_default());
        let (decoded, claimed_tenant) =
            Pending::decode_now(|| decode_record(record, &envelope_id, config, info));
        records.push(Record {
            meta: RecordMeta {
                id,
                raw,
                lane,
                claimed_tenant: claimed(claimed_tenant),
                source_arn,
                user_record: None,
            },
            decoded,
        });
    }
    Ok(records)
}

fn decode_record(
    record: EventRecord,
    id: &str,
    config: &Config,
    info: &InvocationInfo,
) -> DecodeResult {
    let EventRecord {
        change,
        event_name,
        event_source_arn,
        user_identity,
        ..
    } = record;
    let keys: HashMap<String, AttributeValue> = change.keys.into_inner();
    let (image, image_name) = match event_name.as_str() {
        "REMOVE" => (change.old_image.into_inner(), "old"),
        _ => (change.new_image.into_inner(), "new"),
    };
    let (image, image_name) = if image.is_empty() {
        (keys.clone(), "keys")
    } else {
        (image, image_name)
    };

    let mut attributes = Map::new();
    attributes.insert("eventName".into(), Value::String(event_name));
    attributes.insert("image".into(), Value::String(image_name.into()));
    let ttl = user_identity
        .as_ref()
        .is_some_and(|u| u.type_ == "Service" && u.principal_id == "dynamodb.amazonaws.com");
    if ttl {
        attributes.insert("ttlDeletion".into(), Value::Bool(true));
    }
    let created_ms = change.approximate_creation_date_time.timestamp_millis();
    let arrived_at_ms = if created_ms > 0 {
        created_ms
    } else {
        info.now_ms
    };

    let parts = Parts {
        source: Source::Dynamodb,
        id,
        event_source_arn: event_source_arn.unwrap_or_default(),
        arrived_at_ms,
        payload: Image(image),
        attributes,
        trace_header: None,
    };
    build::build(
        parts,
        config,
        info,
        |from| match from {
            TenantFrom::Key { attribute, prefix } => {
                Some(tenant_from_key(&keys, attribute, prefix.as_deref()))
            }
            _ => None,
        },
        |_| None,
    )
}

/// Reads the tenant from a key attribute: the text after `prefix`, up to the next `#`.
fn tenant_from_key(
    keys: &HashMap<String, AttributeValue>,
    attribute: &str,
    prefix: Option<&str>,
) -> Option<String> {
    let value = match keys.get(attribute)? {
        AttributeValue::S(s) => s.as_str(),
        AttributeValue::N(n) => n.as_str(),
        _ => return None,
    };
    match prefix {
        None => Some(value.to_owned()),
        Some(prefix) => {
            let rest = value.strip_prefix(prefix)?;
            Some(rest.split('#').next().unwrap_or_default().to_owned())
        }
    }
}

/// An item image; JSON pointers walk maps (`M`) and lists (`L`).
pub(crate) struct Image(pub HashMap<String, AttributeValue>);

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn walk<'v>(mut value: &'v AttributeValue, tokens: &[&str]) -> Option<&'v AttributeValue> {
    for token in tokens {
        value = match value {
            AttributeValue::M(map) => map.get(&unescape(token))?,
            AttributeValue::L(list) => list.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

impl Document for Image {
    fn string_at(&self, pointer: &str) -> Result<Option<std::borrow::Cow<'_, str>>, ()> {
        let Some(rest) = pointer.strip_prefix('/') else {
            return Ok(None);
        };
        let tokens: Vec<&str> = rest.split('/').collect();
        let Some(first) = self.0.get(&unescape(tokens[0])) else {
            return Ok(None);
        };
        match walk(first, &tokens[1..]) {
            None => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s.as_str().into())),
            Some(_) => Err(()),
        }
    }

    fn take_string_at(&mut self, pointer: &str) -> Result<Option<String>, ()> {
        let Some(rest) = pointer.strip_prefix('/') else {
            return Ok(None);
        };
        let tokens: Vec<&str> = rest.split('/').collect();
        let (last, parents) = tokens
            .split_last()
            .expect("split yields one token at least");
        let taken = if parents.is_empty() {
            self.0.remove(&unescape(last))
        } else {
            let Some(first) = self.0.get_mut(&unescape(parents[0])) else {
                return Ok(None);
            };
            let mut parent = first;
            for token in &parents[1..] {
                parent = match parent {
                    AttributeValue::M(map) => match map.get_mut(&unescape(token)) {
                        Some(v) => v,
                        None => return Ok(None),
                    },
                    AttributeValue::L(list) => match token.parse::<usize>().ok() {
                        Some(i) if i < list.len() => &mut list[i],
                        _ => return Ok(None),
                    },
                    _ => return Ok(None),
                };
            }
            match parent {
                AttributeValue::M(map) => map.remove(&unescape(last)),
                AttributeValue::L(list) => match last.parse::<usize>().ok() {
                    Some(i) if i < list.len() => Some(list.remove(i)),
                    _ => None,
                },
                _ => None,
            }
        };
        match taken {
            None => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s)),
            Some(_) => Err(()),
        }
    }

    fn into_text(self) -> crate::record::PayloadText {
        crate::record::PayloadText::whole(plain_text(&self.0))
    }
}

/// Converts an attribute-value map to plain JSON text, keys sorted (so equal items give equal
/// text, which orders records by key).
pub fn plain_text(item: &HashMap<String, AttributeValue>) -> String {
    let mut out = String::with_capacity(64);
    write_map(item, &mut out);
    out
}

fn write_map(map: &HashMap<String, AttributeValue>, out: &mut String) {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write_plain(value, out);
    }
    out.push('}');
}

/// Writes one attribute value as plain JSON: `S` → string, `N` → the number's own text, `B` →
/// base64 string, `BOOL` → boolean, `NULL` → null, `M` → object, `L` → array, `SS`/`NS`/`BS` →
/// arrays of strings / numbers / base64 strings.
pub fn write_plain(value: &AttributeValue, out: &mut String) {
    match value {
        AttributeValue::S(s) => write_string(s, out),
        AttributeValue::N(n) => write_number(n, out),
        AttributeValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttributeValue::Null(_) => out.push_str("null"),
        AttributeValue::B(bytes) => write_string(&STANDARD.encode(bytes), out),
        AttributeValue::M(map) => write_map(map, out),
        AttributeValue::L(list) => write_list(list.iter(), out, write_plain),
        AttributeValue::Ss(list) => write_list(list.iter(), out, |s, out| write_string(s, out)),
        AttributeValue::Ns(list) => write_list(list.iter(), out, |n, out| write_number(n, out)),
        AttributeValue::Bs(list) => write_list(list.iter(), out, |b, out| {
            write_string(&STANDARD.encode(b), out)
        }),
    }
}

fn write_list<T>(items: impl Iterator<Item = T>, out: &mut String, write: impl Fn(T, &mut String)) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(item, out);
    }
    out.push(']');
}

fn write_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).expect("a string serialises"));
}

/// DynamoDB numbers are decimal text; copied verbatim when they are valid JSON numbers (they
/// always are when DynamoDB wrote them), else kept as a string rather than producing bad JSON.
fn write_number(n: &str, out: &mut String) {
    if is_json_number(n) {
        out.push_str(n);
    } else {
        write_string(n, out);
    }
}

fn is_json_number(n: &str) -> bool {
    let b = n.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: &str) -> HashMap<String, AttributeValue> {
        serde_json::from_str::<serde_dynamo::Item>(json)
            .unwrap()
            .into_inner()
    }

    #[test]
    fn every_type_converts_exactly() {
        let image = item(
            r#"{
            "s": {"S": "text \"quoted\""},
            "n": {"N": "12345678901234567890.123"},
            "neg": {"N": "-1E+5"},
            "b": {"B": "AAEC"},
            "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "2.50"]},
            "bs": {"BS": ["AA==", "AQ=="]},
            "m": {"M": {"z": {"BOOL": true}, "a": {"NULL": true}}},
            "l": {"L": [{"S": "x"}, {"N": "0"}, {"L": []}]},
            "t": {"BOOL": false}
        }"#,
        );
        assert_eq!(
            plain_text(&image),
            r#"{"b":"AAEC","bs":["AA==","AQ=="],"l":["x",0,[]],"m":{"a":null,"z":true},"n":12345678901234567890.123,"neg":-1E+5,"ns":[1,2.50],"s":"text \"quoted\"","ss":["a","b"],"t":false}"#
        );
        // And it is valid JSON.
        let _: Value = serde_json::from_str(&plain_text(&image)).unwrap();
    }

    #[test]
    fn numbers_that_are_not_json_stay_strings() {
        for (n, json) in [
            ("1", "1"),
            ("-0.5", "-0.5"),
            (".5", "\".5\""),
            ("1.", "\"1.\""),
            ("01", "\"01\""),
            ("NaN", "\"NaN\""),
        ] {
            let mut out = String::new();
            write_number(n, &mut out);
            assert_eq!(out, json, "{n}");
        }
    }

    #[test]
    fn pointers_walk_maps_and_lists_and_take_tokens_out() {
        let mut image = Image(item(
            r#"{"tenantId": {"S": "acme"}, "auth": {"M": {"token": {"S": "t"}}},
                "list": {"L": [{"S": "zero"}, {"N": "1"}]}, "n": {"N": "5"}}"#,
        ));
        assert_eq!(image.string_at("/tenantId"), Ok(Some("acme".into())));
        assert_eq!(image.string_at("/list/0"), Ok(Some("zero".into())));
        assert_eq!(image.string_at("/list/1"), Err(()));
        assert_eq!(image.string_at("/n"), Err(()));
        assert_eq!(image.string_at("/missing"), Ok(None));
        assert_eq!(image.take_string_at("/auth/token"), Ok(Some("t".into())));
        assert_eq!(image.take_string_at("/auth/token"), Ok(None));
        assert_eq!(image.take_string_at("/n"), Err(()));
        assert_eq!(
            image.into_text().joined(),
            r#"{"auth":{},"list":["zero",1],"tenantId":"acme"}"#
        );
    }

    #[test]
    fn tenant_from_a_prefixed_key() {
        let keys = item(r#"{"pk": {"S": "TENANT#acme#order#1"}, "n": {"N": "7"}}"#);
        assert_eq!(
            tenant_from_key(&keys, "pk", Some("TENANT#")),
            Some("acme".into())
        );
        assert_eq!(
            tenant_from_key(&keys, "pk", None),
            Some("TENANT#acme#order#1".into())
        );
        assert_eq!(tenant_from_key(&keys, "pk", Some("USER#")), None);
        assert_eq!(tenant_from_key(&keys, "n", None), Some("7".into()));
        assert_eq!(tenant_from_key(&keys, "sk", None), None);
    }
}
