//! Per-source decoding: each module turns one event source's batch into [`Record`]s and, at the
//! end, turns outcomes into the response that source's event source mapping expects.
//!
//! [`Record`]: crate::record::Record

pub mod sqs;

use serde_json::Value;
use shared::TenantId;

use crate::outcome::Rejection;

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

/// Unwraps a message published through SNS or EventBridge and carried in an SQS body, returning
/// the inner payload and what it was unwrapped from.
pub(crate) fn unwrap_carried(body: Value) -> Result<(Value, Option<&'static str>), Rejection> {
    let Value::Object(mut map) = body else {
        return Ok((body, None));
    };
    let is_sns = map.get("Type").and_then(Value::as_str) == Some("Notification")
        && map.get("Message").is_some_and(Value::is_string)
        && map.contains_key("TopicArn");
    if is_sns {
        let Some(Value::String(message)) = map.remove("Message") else {
            unreachable!("checked above")
        };
        let inner = serde_json::from_str(&message).map_err(|e| {
            Rejection::new(
                "malformed-body",
                format!("the SNS Message is not JSON: {e}"),
            )
        })?;
        return Ok((inner, Some("sns")));
    }
    let is_eventbridge =
        map.contains_key("detail-type") && map.contains_key("source") && map.contains_key("detail");
    if is_eventbridge {
        let detail = map.remove("detail").expect("checked above");
        return Ok((detail, Some("eventbridge")));
    }
    Ok((Value::Object(map), None))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unwraps_sns_and_eventbridge() {
        let sns = json!({"Type": "Notification", "TopicArn": "arn:t", "Message": "{\"a\":1}"});
        assert_eq!(unwrap_carried(sns).unwrap(), (json!({"a": 1}), Some("sns")));
        let eb = json!({"detail-type": "x", "source": "y", "detail": {"b": 2}});
        assert_eq!(
            unwrap_carried(eb).unwrap(),
            (json!({"b": 2}), Some("eventbridge"))
        );
        let plain = json!({"c": 3});
        assert_eq!(unwrap_carried(plain.clone()).unwrap(), (plain, None));
        let bad = json!({"Type": "Notification", "TopicArn": "arn:t", "Message": "not json"});
        assert_eq!(unwrap_carried(bad).unwrap_err().reason, "malformed-body");
    }
}
