//! The rules every source shares once its module has found a record's parts ([`Parts`]): where
//! the tenant and the token are ([`build`]: `ROUTER_TENANT_FROM`, `ROUTER_TOKEN_FROM`), the
//! tenant-id check, removing the token from the payload, the correlation id, and assembling the
//! [`Envelope`]; also unwrapping SNS and EventBridge messages carried in a body, and the rejection
//! of a record that does not parse at all ([`unreadable_record`]).

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shared::{Envelope, Source, TenantId};

use super::document::{Document, JsonText};
use crate::config::{Config, TenantFrom, TokenFrom};
use crate::invocation::{BatchError, InvocationInfo};
use crate::outcome::Rejection;
use crate::record::{Decoded, Outgoing, Pending, Record, RecordMeta};

/// What a source module found in a record, before the shared rules run.
pub(crate) struct Parts<'a, D> {
    pub source: Source,
    pub id: &'a str,
    pub event_source_arn: String,
    pub arrived_at_ms: i64,
    pub payload: D,
    pub attributes: Map<String, Value>,
    /// A trace header carried by the record (SQS `AWSTraceHeader`).
    pub trace_header: Option<String>,
}

/// A tenant or token looked up outside the payload: `None` if this source has no such place.
pub(crate) type Elsewhere = Option<Option<String>>;

/// Applies the shared rules to a record's parts. `tenant_elsewhere` and `token_elsewhere` answer
/// the source-specific settings (message attribute, partition key, key attribute …).
pub(crate) fn build<D: Document>(
    parts: Parts<'_, D>,
    config: &Config,
    info: &InvocationInfo,
    tenant_elsewhere: impl FnOnce(&TenantFrom) -> Elsewhere,
    token_elsewhere: impl FnOnce(&TokenFrom) -> Elsewhere,
) -> (Result<Decoded, Rejection>, Option<String>) {
    let Parts {
        source,
        id,
        event_source_arn,
        arrived_at_ms,
        mut payload,
        attributes,
        trace_header,
    } = parts;
    let tenant_from = config.tenant_from.get(source);
    let (claimed, from) = match tenant_from {
        TenantFrom::Payload(pointer) => match payload.string_at(pointer) {
            Ok(found) => (found.map(Cow::into_owned), format!("payload {pointer}")),
            Err(()) => {
                return (
                    Err(Rejection::new(
                        "missing-tenant",
                        format!(
                            "the value at payload {pointer} is not one string (another type, \
                             or a key on its path given twice)"
                        ),
                    )),
                    None,
                );
            }
        },
        other => match tenant_elsewhere(other) {
            Some(found) => (found, describe_tenant_from(other)),
            None => {
                return (
                    Err(Rejection::new(
                        "missing-tenant",
                        format!(
                            "ROUTER_TENANT_FROM ({}) does not apply to {} records",
                            describe_tenant_from(other),
                            source.as_str()
                        ),
                    )),
                    None,
                );
            }
        },
    };
    let tenant = match tenant_id(claimed.as_deref(), &from) {
        Ok(tenant) => tenant,
        Err(rejection) => return (Err(rejection), claimed),
    };

    // Read before the token is taken out (each read of a payload costs a pass over it), and
    // never from inside the token: the correlation id is logged, the token never is.
    let token_pointer = match config.token_from.get(source) {
        TokenFrom::Payload(pointer) => Some(pointer.as_str()),
        TokenFrom::Attribute(_) => None,
    };
    let correlation_pointer = config.correlation_id_pointer.as_str();
    let in_token = token_pointer.is_some_and(|token| {
        correlation_pointer == token
            || correlation_pointer
                .strip_prefix(token)
                .is_some_and(|rest| rest.starts_with('/'))
    });
    let trace_header = trace_header.or_else(|| info.trace_id.clone());
    let correlation_id = (!in_token)
        .then(|| payload.string_at(correlation_pointer).ok().flatten())
        .flatten()
        .map(Cow::into_owned)
        .or_else(|| trace_header.clone())
        .unwrap_or_else(new_correlation_id);

    // The token never travels further than the router, whatever the validation mode.
    let token = match config.token_from.get(source) {
        TokenFrom::Payload(pointer) => match payload.take_string_at(pointer) {
            Ok(token) => token,
            Err(()) => {
                return (
                    Err(Rejection::new(
                        "token-malformed",
                        format!(
                            "the token at payload {pointer} is not one string (another type, \
                             or a key on its path given twice)"
                        ),
                    )),
                    claimed,
                );
            }
        },
        other => token_elsewhere(other).flatten(),
    };

    let envelope = Outgoing {
        source,
        idempotency_key: Envelope::idempotency_key_for(&event_source_arn, id),
        event_source_arn,
        id: id.to_owned(),
        arrived_at: rfc3339_ms(arrived_at_ms),
        correlation_id,
        attributes,
        payload: payload.into_text(),
    };
    (
        Ok(Decoded {
            tenant,
            token,
            arrived_at_ms,
            envelope,
            trace_header,
        }),
        claimed,
    )
}

fn describe_tenant_from(from: &TenantFrom) -> String {
    match from {
        TenantFrom::Payload(pointer) => format!("payload {pointer}"),
        TenantFrom::Attribute(name) => format!("message attribute {name}"),
        TenantFrom::MessageGroupId => "MessageGroupId".into(),
        TenantFrom::PartitionKey => "the partition key".into(),
        TenantFrom::Key { attribute, prefix } => match prefix {
            Some(prefix) => format!("key attribute {attribute} after {prefix:?}"),
            None => format!("key attribute {attribute}"),
        },
    }
}

/// Checks a tenant id found in a record and explains a refusal.
pub(crate) fn tenant_id(found: Option<&str>, from: &str) -> Result<TenantId, Rejection> {
    let Some(found) = found else {
        return Err(Rejection::new(
            "missing-tenant",
            format!("no tenant id at {from}"),
        ));
    };
    TenantId::parse(found).map_err(|e| Rejection::new("invalid-tenant-id", e.to_string()))
}

/// RFC 3339 in UTC with milliseconds.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Unwraps a message published through SNS or EventBridge and carried in an SQS body, returning
/// the inner payload and what it was unwrapped from.
pub(crate) fn unwrap_carried(
    body: JsonText,
) -> Result<(JsonText, Option<&'static str>), Rejection> {
    let is_sns = matches!(body.string_at("/Type"), Ok(Some(t)) if t == "Notification")
        && body.member("TopicArn").is_some();
    if is_sns && let Ok(Some(message)) = body.string_at("/Message") {
        let inner = JsonText::new(message.into_owned()).map_err(|e| {
            Rejection::new(
                "malformed-body",
                format!("the SNS Message is not JSON: {e}"),
            )
        })?;
        return Ok((inner, Some("sns")));
    }
    if let (Some(_), Some(_), Some(detail)) = (
        body.member("detail-type"),
        body.member("source"),
        body.member("detail"),
    ) {
        let detail = JsonText::new(detail.to_owned()).expect("a member's value is JSON");
        return Ok((detail, Some("eventbridge")));
    }
    Ok((body, None))
}

/// A new random correlation id in UUID v4 form. It only has to be unique enough to follow one
/// record through the logs, so it comes from a fast non-cryptographic generator rather than a
/// system call per record.
fn new_correlation_id() -> String {
    let uuid = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid.hyphenated().encode_lower(&mut text).to_owned()
}

/// The identifier of a record that could not be parsed, read loosely: `record[outer][field]`
/// (`outer` empty for a top-level field). `None` if absent or empty.
pub(crate) fn stream_id(raw: &RawValue, outer: &str, field: &str) -> Option<String> {
    let value: Value = serde_json::from_str(raw.get()).ok()?;
    let holder = if outer.is_empty() {
        &value
    } else {
        value.get(outer)?
    };
    holder
        .get(field)?
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// A record that does not parse as its source's record type: rejected on its own
/// (`malformed-record`) when its identifier (`record[outer][field]`) can still be read, else the
/// whole batch is malformed, since the record could not be reported.
pub(crate) fn unreadable_record<'a>(
    raw: &'a RawValue,
    index: usize,
    (outer, field): (&str, &str),
    what: &str,
    error: &serde_json::Error,
) -> Result<Record<'a>, BatchError> {
    let id = stream_id(raw, outer, field).ok_or_else(|| {
        BatchError::Malformed(format!(
            "record {index} is not {what} and has no {field}: {error}"
        ))
    })?;
    // Its source's ARN, when it can still be read (a record of each source carries it as
    // `eventSourceARN`), for the quarantine's identities.
    let source_arn = stream_id(raw, "", "eventSourceARN").unwrap_or_default();
    Ok(Record {
        meta: RecordMeta {
            id,
            raw,
            lane: None,
            claimed_tenant: std::sync::OnceLock::new(),
            source_arn: source_arn.into(),
            user_record: None,
        },
        decoded: Pending::ready(Err(Rejection::new(
            "malformed-record",
            format!("not {what}: {error}"),
        ))),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unwraps_sns_and_eventbridge() {
        let text = |v: serde_json::Value| JsonText::new(v.to_string()).unwrap();
        let unwrapped = |v| {
            let (inner, by) = unwrap_carried(text(v)).unwrap();
            (inner.into_text().joined(), by)
        };
        let sns = json!({"Type": "Notification", "TopicArn": "arn:t", "Message": "{\"a\": 1}"});
        assert_eq!(unwrapped(sns), ("{\"a\": 1}".to_owned(), Some("sns")));
        let eb = json!({"detail-type": "x", "source": "y", "detail": {"b": 2}});
        assert_eq!(unwrapped(eb), ("{\"b\":2}".to_owned(), Some("eventbridge")));
        let plain = json!({"c": 3});
        assert_eq!(unwrapped(plain), ("{\"c\":3}".to_owned(), None));
        let bad = json!({"Type": "Notification", "TopicArn": "arn:t", "Message": "not json"});
        assert_eq!(
            unwrap_carried(text(bad)).unwrap_err().reason,
            "malformed-body"
        );
    }
}
