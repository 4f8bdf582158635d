//! Router configuration: read from `ROUTER_*` environment variables, validated once at start.
//!
//! [`Config::from_lookup`] takes any `name -> value` function so tests need no process
//! environment; [`Config::from_env`] is the same over `std::env`. Every problem names the variable.
//! The README's configuration reference documents each variable; keep the two in step.

use std::collections::HashSet;
use std::time::Duration;

use shared::jwks::{JwksSource, KeyStoreSettings};
use shared::token::{DEFAULT_MAX_TOKEN_BYTES, TokenPolicy};
use shared::{Source, TenantId};

use crate::retry::RetryPolicy;

/// A configuration problem, naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// A setting that may differ per event source: a default plus optional per-source overrides.
///
/// Syntax: entries separated by `;`; an entry is `<value>` (the default) or `<source>=<value>`
/// with source `sqs`, `kinesis`, `dynamodb` or `eventbridge`. Example:
/// `payload:/tenantId;dynamodb=key:pk:TENANT#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerSource<T> {
    default: T,
    overrides: Vec<(Source, T)>,
}

impl<T> PerSource<T> {
    /// The same value for every source.
    pub fn all(value: T) -> Self {
        Self {
            default: value,
            overrides: Vec::new(),
        }
    }

    /// The value in force for `source`.
    pub fn get(&self, source: Source) -> &T {
        self.overrides
            .iter()
            .find(|(s, _)| *s == source)
            .map(|(_, v)| v)
            .unwrap_or(&self.default)
    }

    /// Every value that some source may use.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.default).chain(self.overrides.iter().map(|(_, v)| v))
    }

    fn parse(
        text: &str,
        default: T,
        parse: impl Fn(&str, Option<Source>) -> Result<T, String>,
    ) -> Result<Self, String> {
        let mut result = Self::all(default);
        let mut default_seen = false;
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let scoped = [
                Source::Sqs,
                Source::Kinesis,
                Source::Dynamodb,
                Source::Eventbridge,
            ]
            .into_iter()
            .find_map(|source| {
                entry
                    .strip_prefix(source.as_str())
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(|value| (source, value))
            });
            match scoped {
                Some((source, value)) => {
                    if result.overrides.iter().any(|(s, _)| *s == source) {
                        return Err(format!("{} is given twice", source.as_str()));
                    }
                    let value = parse(value, Some(source))
                        .map_err(|e| format!("{}: {e}", source.as_str()))?;
                    result.overrides.push((source, value));
                }
                None => {
                    if default_seen {
                        return Err("more than one default entry".into());
                    }
                    default_seen = true;
                    result.default = parse(entry, None)?;
                }
            }
        }
        Ok(result)
    }
}

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

/// How records are delivered to the backend (`ROUTER_DELIVERY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// One async Invoke per record.
    Record,
    /// The records of one tenant within one batch in as few Invokes as the async payload limit
    /// allows, each an envelope batch.
    TenantBatch,
}

/// The validated router configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Name or ARN of the tenant-isolated backend function.
    pub backend_function: String,
    /// Where the tenant id is read from, per source.
    pub tenant_from: PerSource<TenantFrom>,
    /// Where the token is read from, per source.
    pub token_from: PerSource<TokenFrom>,
    /// How the tenant is proven, per source.
    pub validation: PerSource<Validation>,
    /// Token rules, present when some source uses `jwt`.
    pub jwt: Option<JwtSettings>,
    /// Tenants accepted from `trusted` sources, if restricted.
    pub trusted_tenants: Option<HashSet<TenantId>>,
    /// Records older than this at processing time are rejected.
    pub max_record_age: Option<Duration>,
    /// Most records being worked on (and so Invokes in flight) at once.
    pub max_in_flight: usize,
    /// Queue receiving rejected records.
    pub quarantine_queue_url: Option<String>,
    /// Delivery mode.
    pub delivery: Delivery,
    /// Most bytes in one envelope batch (`tenant-batch`); at most the async payload limit.
    pub batch_max_bytes: usize,
    /// Retry policy for transient Invoke failures.
    pub retry: RetryPolicy,
    /// No record is started, and no retry is waited for, within this margin of the deadline.
    pub deadline_margin: Duration,
    /// Time limit of one Invoke attempt.
    pub invoke_timeout: Duration,
    /// JSON pointer of the correlation id in the payload.
    pub correlation_id_pointer: String,
    /// CloudWatch namespace of the router's metrics.
    pub metrics_namespace: String,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`; unset and empty values are treated alike.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let backend_function = get("ROUTER_BACKEND_FUNCTION").ok_or_else(|| ConfigError {
            variable: "ROUTER_BACKEND_FUNCTION",
            problem: "is required: the name or ARN of the tenant-isolated backend function".into(),
        })?;

        let tenant_from = match get("ROUTER_TENANT_FROM") {
            None => PerSource::all(TenantFrom::Payload("/tenantId".into())),
            Some(v) => PerSource::parse(
                &v,
                TenantFrom::Payload("/tenantId".into()),
                parse_tenant_from,
            )
            .map_err(|problem| ConfigError {
                variable: "ROUTER_TENANT_FROM",
                problem,
            })?,
        };
        let token_from = match get("ROUTER_TOKEN_FROM") {
            None => PerSource::all(TokenFrom::Payload("/tenantToken".into())),
            Some(v) => PerSource::parse(
                &v,
                TokenFrom::Payload("/tenantToken".into()),
                parse_token_from,
            )
            .map_err(|problem| ConfigError {
                variable: "ROUTER_TOKEN_FROM",
                problem,
            })?,
        };
        let validation = match get("ROUTER_VALIDATION") {
            None => PerSource::all(Validation::Jwt),
            Some(v) => PerSource::parse(&v, Validation::Jwt, |value, _| match value {
                "jwt" => Ok(Validation::Jwt),
                "trusted" => Ok(Validation::Trusted),
                other => Err(format!("expected \"jwt\" or \"trusted\", got {other:?}")),
            })
            .map_err(|problem| ConfigError {
                variable: "ROUTER_VALIDATION",
                problem,
            })?,
        };
        let jwt = if validation.values().any(|v| *v == Validation::Jwt) {
            Some(jwt_settings(&get)?)
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

        let max_record_age = get("ROUTER_MAX_RECORD_AGE_SECONDS")
            .map(|v| positive::<u64>("ROUTER_MAX_RECORD_AGE_SECONDS", &v))
            .transpose()?
            .map(Duration::from_secs);
        let max_in_flight = number_or(&get, "ROUTER_MAX_IN_FLIGHT", 64usize)?;
        if max_in_flight == 0 {
            return Err(ConfigError {
                variable: "ROUTER_MAX_IN_FLIGHT",
                problem: "must be at least 1".into(),
            });
        }
        let quarantine_queue_url = get("ROUTER_QUARANTINE_QUEUE_URL");
        if let Some(url) = &quarantine_queue_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError {
                variable: "ROUTER_QUARANTINE_QUEUE_URL",
                problem: format!("expected an SQS queue URL, got {url:?}"),
            });
        }
        let delivery = match get("ROUTER_DELIVERY").as_deref() {
            None | Some("record") => Delivery::Record,
            Some("tenant-batch") => Delivery::TenantBatch,
            Some(other) => {
                return Err(ConfigError {
                    variable: "ROUTER_DELIVERY",
                    problem: format!("expected \"record\" or \"tenant-batch\", got {other:?}"),
                });
            }
        };

        let batch_max_bytes =
            positive_or(&get, "ROUTER_BATCH_MAX_BYTES", shared::ASYNC_PAYLOAD_LIMIT)?;
        if batch_max_bytes > shared::ASYNC_PAYLOAD_LIMIT {
            return Err(ConfigError {
                variable: "ROUTER_BATCH_MAX_BYTES",
                problem: format!(
                    "{batch_max_bytes} is above the async Invoke payload limit of {} bytes",
                    shared::ASYNC_PAYLOAD_LIMIT
                ),
            });
        }

        let retry = RetryPolicy {
            max_attempts: number_or(&get, "ROUTER_RETRY_MAX_ATTEMPTS", 5u32)?.max(1),
            base_delay: Duration::from_millis(number_or(&get, "ROUTER_RETRY_BASE_DELAY_MS", 50)?),
            max_delay: Duration::from_millis(number_or(&get, "ROUTER_RETRY_MAX_DELAY_MS", 2_000)?),
        };
        let deadline_margin =
            Duration::from_millis(number_or(&get, "ROUTER_DEADLINE_MARGIN_MS", 500)?);
        let invoke_timeout =
            Duration::from_millis(positive_or(&get, "ROUTER_INVOKE_TIMEOUT_MS", 5_000)?);
        let correlation_id_pointer = match get("ROUTER_CORRELATION_ID_FROM") {
            None => "/correlationId".to_owned(),
            Some(v) => payload_pointer(&v).map_err(|problem| ConfigError {
                variable: "ROUTER_CORRELATION_ID_FROM",
                problem,
            })?,
        };

        let metrics_namespace =
            get("ROUTER_METRICS_NAMESPACE").unwrap_or_else(|| "TenantRouter".to_owned());
        Ok(Config {
            metrics_namespace,
            backend_function,
            tenant_from,
            token_from,
            validation,
            jwt,
            trusted_tenants,
            max_record_age,
            max_in_flight,
            quarantine_queue_url,
            delivery,
            batch_max_bytes,
            retry,
            deadline_margin,
            invoke_timeout,
            correlation_id_pointer,
        })
    }
}

fn jwt_settings(get: &impl Fn(&str) -> Option<String>) -> Result<JwtSettings, ConfigError> {
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
        ..KeyStoreSettings::default()
    };
    Ok(JwtSettings {
        jwks,
        policy,
        key_store,
    })
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn number_or<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError {
            variable,
            problem: format!("expected a non-negative whole number, got {v:?}"),
        }),
    }
}

fn positive_or<T: std::str::FromStr + PartialEq + Default>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => positive(variable, &v),
    }
}

fn positive<T: std::str::FromStr + PartialEq + Default>(
    variable: &'static str,
    v: &str,
) -> Result<T, ConfigError> {
    match v.trim().parse::<T>() {
        Ok(n) if n != T::default() => Ok(n),
        _ => Err(ConfigError {
            variable,
            problem: format!("expected a positive whole number, got {v:?}"),
        }),
    }
}

/// `payload:/a/b` or `/a/b` → `/a/b`.
fn payload_pointer(value: &str) -> Result<String, String> {
    let pointer = value.strip_prefix("payload:").unwrap_or(value);
    if pointer.starts_with('/') {
        Ok(pointer.to_owned())
    } else {
        Err(format!(
            "expected a JSON pointer such as payload:/tenantId, got {value:?}"
        ))
    }
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

fn non_empty_attribute(name: &str) -> Result<String, String> {
    if name.is_empty() {
        Err("the attribute name is empty".into())
    } else {
        Ok(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const JWT: &[(&str, &str)] = &[
        ("ROUTER_BACKEND_FUNCTION", "backend"),
        ("ROUTER_JWKS", "https://issuer.example/jwks.json"),
        ("ROUTER_JWT_ISSUER", "https://issuer.example"),
        ("ROUTER_JWT_AUDIENCE", "tenant-router"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = JWT.to_vec();
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn tenant_batch_delivery_and_its_chunk_size() {
        let c = config(&with(&[
            ("ROUTER_DELIVERY", "tenant-batch"),
            ("ROUTER_BATCH_MAX_BYTES", "262144"),
        ]))
        .unwrap();
        assert_eq!(c.delivery, Delivery::TenantBatch);
        assert_eq!(c.batch_max_bytes, 262_144);
        let err = config(&with(&[("ROUTER_DELIVERY", "batch")])).unwrap_err();
        assert!(
            err.to_string().contains("\"record\" or \"tenant-batch\""),
            "{err}"
        );
    }

    #[test]
    fn defaults() {
        let c = config(JWT).unwrap();
        assert_eq!(
            c.tenant_from,
            PerSource::all(TenantFrom::Payload("/tenantId".into()))
        );
        assert_eq!(
            c.token_from,
            PerSource::all(TokenFrom::Payload("/tenantToken".into()))
        );
        assert_eq!(c.validation, PerSource::all(Validation::Jwt));
        assert_eq!(c.max_in_flight, 64);
        assert_eq!(c.delivery, Delivery::Record);
        assert_eq!(c.batch_max_bytes, shared::ASYNC_PAYLOAD_LIMIT);
        let jwt = c.jwt.expect("jwt is the default");
        assert_eq!(jwt.policy.tenant_claim, "tenant_id");
        assert_eq!(jwt.policy.max_token_bytes, 8192);
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for missing in [
            "ROUTER_BACKEND_FUNCTION",
            "ROUTER_JWKS",
            "ROUTER_JWT_ISSUER",
            "ROUTER_JWT_AUDIENCE",
        ] {
            let vars: Vec<_> = JWT.iter().copied().filter(|(k, _)| *k != missing).collect();
            assert_eq!(config(&vars).unwrap_err().variable, missing);
        }
    }

    #[test]
    fn malformed_values_are_named() {
        for (variable, value) in [
            ("ROUTER_TENANT_FROM", "header:x"),
            ("ROUTER_TOKEN_FROM", "message-group-id"),
            ("ROUTER_VALIDATION", "none"),
            ("ROUTER_JWKS", "http://example.com/jwks"),
            ("ROUTER_JWT_LEEWAY_SECONDS", "-1"),
            ("ROUTER_MAX_RECORD_AGE_SECONDS", "0"),
            ("ROUTER_MAX_IN_FLIGHT", "0"),
            ("ROUTER_MAX_IN_FLIGHT", "many"),
            ("ROUTER_QUARANTINE_QUEUE_URL", "quarantine"),
            ("ROUTER_DELIVERY", "bulk"),
            ("ROUTER_BATCH_MAX_BYTES", "0"),
            ("ROUTER_BATCH_MAX_BYTES", "1048577"),
            ("ROUTER_INVOKE_TIMEOUT_MS", "0"),
            ("ROUTER_JWT_MAX_TOKEN_BYTES", "0"),
            ("ROUTER_JWT_ISSUER", " , "),
            ("ROUTER_JWT_AUDIENCE", ","),
        ] {
            let err = config(&with(&[(variable, value)])).unwrap_err();
            assert_eq!(err.variable, variable, "{value:?}: {err}");
            assert!(err.to_string().starts_with(variable));
        }
    }

    #[test]
    fn from_syntax() {
        let c = config(&with(&[
            ("ROUTER_TENANT_FROM", "attribute:tenant"),
            ("ROUTER_TOKEN_FROM", "attribute:token"),
        ]))
        .unwrap();
        assert_eq!(
            *c.tenant_from.get(Source::Sqs),
            TenantFrom::Attribute("tenant".into())
        );
        assert_eq!(
            *c.token_from.get(Source::Sqs),
            TokenFrom::Attribute("token".into())
        );
        let c = config(&with(&[
            ("ROUTER_TENANT_FROM", "message-group-id"),
            ("ROUTER_TOKEN_FROM", "payload:/auth/jwt"),
        ]))
        .unwrap();
        assert_eq!(*c.tenant_from.get(Source::Sqs), TenantFrom::MessageGroupId);
        assert_eq!(
            *c.token_from.get(Source::Kinesis),
            TokenFrom::Payload("/auth/jwt".into())
        );
        let c = config(&with(&[("ROUTER_TENANT_FROM", "/org/id")])).unwrap();
        assert_eq!(
            *c.tenant_from.get(Source::Dynamodb),
            TenantFrom::Payload("/org/id".into())
        );
    }

    #[test]
    fn trusted_mode_needs_no_jwt_settings_and_checks_its_allow_list() {
        let c = config(&[
            ("ROUTER_BACKEND_FUNCTION", "backend"),
            ("ROUTER_VALIDATION", "trusted"),
            ("ROUTER_TRUSTED_TENANTS", "acme,globex"),
        ])
        .unwrap();
        assert!(c.jwt.is_none());
        assert_eq!(c.trusted_tenants.map(|l| l.len()), Some(2));
        let err = config(&[
            ("ROUTER_BACKEND_FUNCTION", "backend"),
            ("ROUTER_VALIDATION", "trusted"),
            ("ROUTER_TRUSTED_TENANTS", "acme,bad#one"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "ROUTER_TRUSTED_TENANTS");
    }

    #[test]
    fn per_source_settings() {
        let c = config(&with(&[
            (
                "ROUTER_TENANT_FROM",
                "payload:/tenantId; dynamodb=key:pk:TENANT#; kinesis=partition-key",
            ),
            ("ROUTER_VALIDATION", "jwt;dynamodb=trusted"),
        ]))
        .unwrap();
        assert_eq!(
            *c.tenant_from.get(Source::Sqs),
            TenantFrom::Payload("/tenantId".into())
        );
        assert_eq!(
            *c.tenant_from.get(Source::Kinesis),
            TenantFrom::PartitionKey
        );
        assert_eq!(
            *c.tenant_from.get(Source::Dynamodb),
            TenantFrom::Key {
                attribute: "pk".into(),
                prefix: Some("TENANT#".into())
            }
        );
        assert_eq!(*c.validation.get(Source::Dynamodb), Validation::Trusted);
        assert_eq!(*c.validation.get(Source::Sqs), Validation::Jwt);
        // A dynamodb-only setting cannot be given to another source, nor a source twice.
        for bad in [
            "kinesis=key:pk",
            "sqs=partition-key",
            "sqs=/a;sqs=/b",
            "/a;/b",
            "dynamodb=key:",
        ] {
            let err = config(&with(&[("ROUTER_TENANT_FROM", bad)])).unwrap_err();
            assert_eq!(err.variable, "ROUTER_TENANT_FROM", "{bad}");
        }
        let err = config(&with(&[("ROUTER_TOKEN_FROM", "kinesis=attribute:t")])).unwrap_err();
        assert_eq!(err.variable, "ROUTER_TOKEN_FROM");
        // Only trusted sources: no JWT settings needed.
        let c = config(&[
            ("ROUTER_BACKEND_FUNCTION", "backend"),
            ("ROUTER_VALIDATION", "trusted;sqs=trusted"),
        ])
        .unwrap();
        assert!(c.jwt.is_none());
    }

    #[test]
    fn issuer_and_audience_lists() {
        let c = config(&with(&[("ROUTER_JWT_AUDIENCE", "a, b")])).unwrap();
        let jwt = c.jwt.unwrap();
        assert_eq!(jwt.policy.audiences, vec!["a", "b"]);
    }
}
