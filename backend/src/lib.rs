//! The shipped tenant logic of the backend, from the SaaS to-do example: it enriches a newly
//! added to-do item with the tenant's own rules (priority, due date, tags, title prefix).
//!
//! The tenant guard (tenant from the invocation context, environment pinned to one tenant,
//! envelopes for other tenants refused, duplicates recognised) is `shared::function`; this crate
//! is only the tenant's business logic. The tenant configuration is loaded once per execution
//! environment and cached — safe only because the environment serves one tenant for life.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use shared::function::TenantContext;
use shared::{Envelope, TenantId};

/// Environment variable naming the directory of per-tenant configuration files (`<tenant>.json`).
pub const CONFIG_DIR_VARIABLE: &str = "BACKEND_TENANT_CONFIG_DIR";

/// One tenant's rules for new to-do items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantConfig {
    /// Name shown in results.
    pub display_name: String,
    /// Priority of items that carry none.
    pub default_priority: String,
    /// Days from arrival until an item without a due date is due.
    pub due_in_days: i64,
    /// Tags added to every item.
    pub tags: Vec<String>,
    /// Text put in front of every title.
    #[serde(default)]
    pub title_prefix: String,
    /// A secret by reference (`ssm:/tenants/<tenant>/<name>` or
    /// `secretsmanager:<id>[:<json-key>]`), resolved with the tenant's own session
    /// (`BACKEND_TENANT_ROLE_ARN`): each enriched item then carries `signedWith`, the key's
    /// [`fingerprint`] — which tenant's secret the handler read, never its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

impl TenantConfig {
    /// Rules for a tenant without its own file.
    pub fn default_for(tenant: &TenantId) -> Self {
        Self {
            display_name: tenant.to_string(),
            default_priority: "normal".into(),
            due_in_days: 7,
            tags: Vec::new(),
            title_prefix: String::new(),
            signing_key: None,
        }
    }

    /// Loads `<dir>/<tenant>.json`, or the defaults when there is no such file. A file that exists
    /// but cannot be read is an error: a tenant must not silently lose its rules.
    pub fn load(dir: Option<&Path>, tenant: &TenantId) -> Result<Self, String> {
        let Some(dir) = dir else {
            return Ok(Self::default_for(tenant));
        };
        // Tenant ids may contain '/', so they are never used as a path as they are.
        let file: PathBuf = dir.join(format!("{}.json", file_stem(tenant)));
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not a tenant configuration: {e}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default_for(tenant)),
            Err(e) => Err(format!("cannot read {}: {e}", file.display())),
        }
    }
}

/// A file name for a tenant: lowercase letters, digits, `_` and `-` kept, anything else (upper
/// case too, so that `ACME` and `acme` never share a file on a case-insensitive file system)
/// hex-escaped.
fn file_stem(tenant: &TenantId) -> String {
    tenant
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-') {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32)
            }
        })
        .collect()
}

/// The first 12 hex digits of `secret`'s SHA-256: enough to tell whose key it is, nothing of the
/// key itself.
pub fn fingerprint(secret: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why an item cannot be enriched (a function error: Lambda retries, then the failure destination
/// receives it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrichError {
    /// The payload holds no to-do item object.
    #[error("the payload holds no to-do item (an object at /item, or the payload itself)")]
    NoItem,
}

/// Enriches the to-do item of `envelope` (its `payload.item`, or the payload itself when it has
/// no `item`) with `config`, and returns the enriched item.
pub fn enrich(
    config: &TenantConfig,
    context: &TenantContext,
    envelope: &Envelope,
) -> Result<Value, EnrichError> {
    let payload: Value =
        serde_json::from_str(envelope.payload.get()).map_err(|_| EnrichError::NoItem)?;
    let mut item: Map<String, Value> = match payload {
        Value::Object(mut map) => match map.remove("item") {
            Some(Value::Object(item)) => item,
            Some(_) => return Err(EnrichError::NoItem),
            None => map,
        },
        _ => return Err(EnrichError::NoItem),
    };
    item.remove("tenantId");
    if let Some(Value::String(title)) = item.get("title")
        && !title.starts_with(&config.title_prefix)
    {
        let prefixed = format!("{}{title}", config.title_prefix);
        item.insert("title".into(), Value::String(prefixed));
    }
    item.entry("priority")
        .or_insert_with(|| Value::String(config.default_priority.clone()));
    if !item.contains_key("dueDate") {
        let arrived = chrono::DateTime::parse_from_rfc3339(&envelope.arrived_at)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|_| chrono::Utc::now());
        let due = arrived + chrono::Duration::days(config.due_in_days);
        item.insert(
            "dueDate".into(),
            Value::String(due.format("%Y-%m-%d").to_string()),
        );
    }
    let mut tags: Vec<Value> = match item.remove("tags") {
        Some(Value::Array(tags)) => tags,
        _ => Vec::new(),
    };
    for tag in &config.tags {
        if !tags.iter().any(|t| t.as_str() == Some(tag)) {
            tags.push(Value::String(tag.clone()));
        }
    }
    item.insert("tags".into(), Value::Array(tags));
    item.insert("tenantId".into(), json!(context.tenant_id));
    Ok(json!({
        "item": item,
        "tenantName": config.display_name,
        "environment": std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    fn envelope(payload: &str) -> Envelope {
        Envelope {
            version: 1,
            tenant_id: TenantId::parse("acme").unwrap(),
            source: shared::Source::Sqs,
            event_source_arn: "arn:q".into(),
            id: "m1".into(),
            idempotency_key: "arn:q#m1".into(),
            arrived_at: "2026-01-01T00:00:00.000Z".into(),
            correlation_id: "c1".into(),
            ordering_key: None,
            attributes: Map::new(),
            payload: RawValue::from_string(payload.into()).unwrap(),
        }
    }

    fn context() -> TenantContext {
        TenantContext::new(TenantId::parse("acme").unwrap(), "r1")
    }

    fn acme() -> TenantConfig {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        TenantConfig::load(Some(&dir), &TenantId::parse("acme").unwrap()).unwrap()
    }

    #[test]
    fn enriches_with_the_tenants_rules() {
        let out = enrich(
            &acme(),
            &context(),
            &envelope(r#"{"tenantId":"acme","item":{"id":1,"title":"Ship it","tags":["x"]}}"#),
        )
        .unwrap();
        assert_eq!(
            out["item"],
            json!({"id": 1, "title": "[ACME] Ship it", "priority": "high", "dueDate": "2026-01-03",
                   "tags": ["x", "acme", "sla-gold"], "tenantId": "acme"})
        );
        assert_eq!(out["tenantName"], "ACME Corporation");
    }

    #[test]
    fn keeps_what_the_item_already_says() {
        let out = enrich(
            &acme(),
            &context(),
            &envelope(r#"{"title":"[ACME] x","priority":"low","dueDate":"2030-01-01"}"#),
        )
        .unwrap();
        assert_eq!(out["item"]["title"], "[ACME] x");
        assert_eq!(out["item"]["priority"], "low");
        assert_eq!(out["item"]["dueDate"], "2030-01-01");
    }

    #[test]
    fn refuses_a_payload_without_an_item() {
        for payload in ["[1]", r#"{"item": 5}"#, "\"text\""] {
            assert_eq!(
                enrich(&acme(), &context(), &envelope(payload)),
                Err(EnrichError::NoItem),
                "{payload}"
            );
        }
    }

    #[test]
    fn unknown_tenants_get_defaults_and_odd_ids_stay_inside_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let odd = TenantId::parse("../acme").unwrap();
        assert_eq!(file_stem(&odd), "%2E%2E%2Facme");
        assert_eq!(file_stem(&TenantId::parse("ACME").unwrap()), "%41%43%4D%45");
        assert_eq!(
            TenantConfig::load(Some(&dir), &odd).unwrap(),
            TenantConfig::default_for(&odd)
        );
    }
}
