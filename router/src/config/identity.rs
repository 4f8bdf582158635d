//! Identity settings: where the tenant and the token are (`ROUTER_TENANT_FROM`,
//! `ROUTER_TOKEN_FROM`), how a tenant is proven (`ROUTER_VALIDATION`), the token rules and the
//! JWKS (`ROUTER_JWKS`, `ROUTER_JWT_*`, `ROUTER_JWT_ALGORITHMS`), and the trusted allow-list (`ROUTER_TRUSTED_TENANTS`).

use std::collections::HashSet;
use std::time::Duration;

use shared::jwks::{ASYMMETRIC_ALGORITHMS, Algorithm, JwksSource, KeyStoreSettings};
use shared::token::{DEFAULT_MAX_TOKEN_BYTES, TokenPolicy};
use shared::{Source, TenantId};

use super::error::ConfigError;
use super::per_source::PerSource;
use super::values::{Lookup, list, non_empty_attribute, number_or, payload_pointer, positive_or};

/// Where a record's tenant id is read from (`ROUTER_TENANT_FROM`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantFrom {
    /// A JSON pointer into the decoded payload: `payload:/tenantId` (or just `/tenantId`).
    Payload(String),
    /// An SQS message attribute's string value: `attribute:<name>`.
    Attribute(String),
    /// The SQS FIFO `MessageGroupId`: `message-group-id`.
    MessageGroupId,
    /// The Kinesis partition key: `partition-key`.
    PartitionKey,
    /// A DynamoDB key attribute (type S), optionally after a prefix and up to the next `#`:
    /// `key:<attribute>` or `key:<attribute>:<prefix>` (`key:pk:TENANT#` reads `acme` from
    /// `TENANT#acme#order#1`).
    Key {
        /// The key attribute's name.
        attribute: String,
        /// Text the value must start with; the tenant follows it, up to the next `#`.
        prefix: Option<String>,
    },
}

impl TenantFrom {
    /// The one source this setting applies to, if it is source-specific.
    pub fn only_for(&self) -> Option<Source> {
        match self {
            TenantFrom::Payload(_) => None,
            TenantFrom::Attribute(_) | TenantFrom::MessageGroupId => Some(Source::Sqs),
            TenantFrom::PartitionKey => Some(Source::Kinesis),
            TenantFrom::Key { .. } => Some(Source::Dynamodb),
        }
    }
}

/// Where a record's identity token is read from (`ROUTER_TOKEN_FROM`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenFrom {
    /// A JSON pointer into the decoded payload; the token is removed from the forwarded payload.
    Payload(String),
    /// An SQS message attribute's string value.
    Attribute(String),
}

/// How a record's tenant is proven (`ROUTER_VALIDATION`, per source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// A signed JWT whose tenant claim equals the record's tenant.
    Jwt,
    /// No token: the producer is trusted (a platform-owned table). The tenant-id pattern and the
    /// optional allow-list (`ROUTER_TRUSTED_TENANTS`) still apply.
    Trusted,
}

/// Token verification settings.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// Where the JWKS comes from.
    pub jwks: JwksSource,
    /// Token rules.
    pub policy: TokenPolicy,
    /// JWKS refresh rules.
    pub key_store: KeyStoreSettings,
}

/// The identity settings as read.
pub struct IdentitySettings {
    /// `ROUTER_TENANT_FROM`.
    pub tenant_from: PerSource<TenantFrom>,
    /// `ROUTER_TOKEN_FROM`.
    pub token_from: PerSource<TokenFrom>,
    /// `ROUTER_VALIDATION`.
    pub validation: PerSource<Validation>,
    /// Present when some source uses `jwt`.
    pub jwt: Option<JwtSettings>,
    /// `ROUTER_TRUSTED_TENANTS`.
    pub trusted_tenants: Option<HashSet<TenantId>>,
}

/// Reads the identity settings.
pub fn read(get: &impl Lookup) -> Result<IdentitySettings, ConfigError> {
    let tenant_from = per_source(
        get,
        "ROUTER_TENANT_FROM",
        TenantFrom::Payload("/tenantId".into()),
        parse_tenant_from,
    )?;
    let token_from = per_source(
        get,
        "ROUTER_TOKEN_FROM",
        TokenFrom::Payload("/tenantToken".into()),
        parse_token_from,
    )?;
    let validation = per_source(
        get,
        "ROUTER_VALIDATION",
        Validation::Jwt,
        |value, _| match value {
            "jwt" => Ok(Validation::Jwt),
            "trusted" => Ok(Validation::Trusted),
            other => Err(format!("expected \"jwt\" or \"trusted\", got {other:?}")),
        },
    )?;
    let jwt = if validation.values().any(|v| *v == Validation::Jwt) {
        Some(jwt_settings(get)?)
    } else {
        None
    };
    let trusted_tenants = match get("ROUTER_TRUSTED_TENANTS") {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|t| {
                    TenantId::parse(t).map_err(|e| ConfigError {
                        variable: "ROUTER_TRUSTED_TENANTS",
                        problem: format!("{t:?}: {e}"),
                    })
                })
                .collect::<Result<HashSet<_>, _>>()?,
        ),
    };
    Ok(IdentitySettings {
        tenant_from,
        token_from,
        validation,
        jwt,
        trusted_tenants,
    })
}

/// A per-source variable: `default` when unset, else parsed entry by entry with `parse`.
fn per_source<T>(
    get: &impl Lookup,
    variable: &'static str,
    default: T,
    parse: impl Fn(&str, Option<Source>) -> Result<T, String>,
) -> Result<PerSource<T>, ConfigError> {
    match get(variable) {
        None => Ok(PerSource::all(default)),
        Some(v) => PerSource::parse(&v, default, parse)
            .map_err(|problem| ConfigError { variable, problem }),
    }
}

fn jwt_settings(get: &impl Lookup) -> Result<JwtSettings, ConfigError> {
    let required = |name: &'static str, what: &str| {
        get(name).ok_or_else(|| ConfigError {
            variable: name,
            problem: format!("is required when ROUTER_VALIDATION is jwt: {what}"),
        })
    };
    let jwks = JwksSource::parse(&required(
        "ROUTER_JWKS",
        "an https:// URL, a file:// URL or inline JWKS JSON",
    )?)
    .map_err(|e| ConfigError {
        variable: "ROUTER_JWKS",
        problem: e.to_string(),
    })?;
    let non_empty_list = |variable: &'static str, what: &str| {
        let values = list(&required(variable, what)?);
        if values.is_empty() {
            return Err(ConfigError {
                variable,
                problem: "lists no value".into(),
            });
        }
        Ok(values)
    };
    let issuers = non_empty_list("ROUTER_JWT_ISSUER", "the accepted token issuer")?;
    let audiences = non_empty_list("ROUTER_JWT_AUDIENCE", "the accepted token audience")?;
    let tenant_claim = get("ROUTER_TENANT_CLAIM").unwrap_or_else(|| "tenant_id".into());
    let policy = TokenPolicy {
        issuers,
        audiences,
        tenant_claim,
        leeway_seconds: number_or(get, "ROUTER_JWT_LEEWAY_SECONDS", 60)?,
        typ: get("ROUTER_JWT_TYP"),
        max_token_bytes: positive_or(get, "ROUTER_JWT_MAX_TOKEN_BYTES", DEFAULT_MAX_TOKEN_BYTES)?,
        cache_capacity: number_or(get, "ROUTER_JWT_CACHE_SIZE", 10_000)?,
    };
    let key_store = KeyStoreSettings {
        refresh_cooldown: Duration::from_secs(number_or(
            get,
            "ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS",
            60,
        )?),
        max_age: Duration::from_secs(positive_or(get, "ROUTER_JWKS_MAX_AGE_SECONDS", 600)?),
        accepted: algorithms(get)?,
        ..KeyStoreSettings::default()
    };
    Ok(JwtSettings {
        jwks,
        policy,
        key_store,
    })
}

/// `ROUTER_JWT_ALGORITHMS`: the accepted JWS algorithms (default: every asymmetric one). Each
/// key verifies one algorithm (`shared::jwks`); a key bound to one not listed is not used.
fn algorithms(get: &impl Lookup) -> Result<Vec<Algorithm>, ConfigError> {
    let Some(text) = get("ROUTER_JWT_ALGORITHMS") else {
        return Ok(ASYMMETRIC_ALGORITHMS.to_vec());
    };
    let problem = |problem: String| ConfigError {
        variable: "ROUTER_JWT_ALGORITHMS",
        problem,
    };
    let names = list(&text);
    if names.is_empty() {
        return Err(problem("lists no algorithm".into()));
    }
    let mut accepted = Vec::new();
    for name in names {
        let alg = ASYMMETRIC_ALGORITHMS
            .into_iter()
            .find(|alg| format!("{alg:?}") == name)
            .ok_or_else(|| {
                problem(format!(
                    "{name:?} is not an accepted algorithm; expected some of RS256, RS384, \
                     RS512, PS256, PS384, PS512, ES256, ES384, EdDSA (symmetric algorithms \
                     and none are never accepted)"
                ))
            })?;
        if !accepted.contains(&alg) {
            accepted.push(alg);
        }
    }
    Ok(accepted)
}

fn parse_tenant_from(value: &str, scope: Option<Source>) -> Result<TenantFrom, String> {
    let parsed = if value == "message-group-id" {
        TenantFrom::MessageGroupId
    } else if value == "partition-key" {
        TenantFrom::PartitionKey
    } else if let Some(name) = value.strip_prefix("attribute:") {
        TenantFrom::Attribute(non_empty_attribute(name)?)
    } else if let Some(spec) = value.strip_prefix("key:") {
        let (attribute, prefix) = match spec.split_once(':') {
            Some((attribute, prefix)) => (attribute, Some(prefix.to_owned())),
            None => (spec, None),
        };
        TenantFrom::Key {
            attribute: non_empty_attribute(attribute)?,
            prefix: prefix.filter(|p| !p.is_empty()),
        }
    } else {
        payload_pointer(value)
            .map(TenantFrom::Payload)
            .map_err(|_| {
                format!(
                    "expected payload:<json-pointer>, attribute:<name>, message-group-id, \
                 partition-key or key:<attribute>[:<prefix>], got {value:?}"
                )
            })?
    };
    if let (Some(scope), Some(only)) = (scope, parsed.only_for())
        && scope != only
    {
        return Err(format!(
            "{value:?} applies to {} records only",
            only.as_str()
        ));
    }
    Ok(parsed)
}

fn parse_token_from(value: &str, scope: Option<Source>) -> Result<TokenFrom, String> {
    if let Some(name) = value.strip_prefix("attribute:") {
        if scope.is_some_and(|s| s != Source::Sqs) {
            return Err(format!("{value:?} applies to sqs records only"));
        }
        return non_empty_attribute(name).map(TokenFrom::Attribute);
    }
    payload_pointer(value)
        .map(TokenFrom::Payload)
        .map_err(|_| format!("expected payload:<json-pointer> or attribute:<name>, got {value:?}"))
}
