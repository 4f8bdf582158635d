//! Router configuration: read from `ROUTER_*` environment variables, validated once at start, in
//! two steps — raw text, then a [`Config`] of rich types.
//!
//! [`Config::from_lookup`] takes any `name -> value` function so tests need no process
//! environment; [`Config::from_env`] is the same over `std::env`. Every problem names the variable.
//! By concern: `identity` (tenant, token, JWT, allow-list), `per_source` (the per-source syntax),
//! `values` (numbers, lists, pointers), `invocation` (the invocation type, per source and for FIFO
//! queues), `tenants` (the tenant registry, each tenant's share of the in-flight Invokes);
//! delivery, retries and the quarantine queue are here. The
//! README's configuration reference documents each variable; keep the two in step.

mod error;
mod identity;
mod invocation;
mod per_source;
mod tenants;
mod values;

use std::collections::HashSet;
use std::time::Duration;

use shared::TenantId;

pub use error::ConfigError;
pub use identity::{JwtSettings, TenantFrom, TokenFrom, Validation};
pub use invocation::{InvocationType, InvocationTypes};
pub use per_source::PerSource;
pub use tenants::{RegistrySettings, Suspended};

use crate::retry::RetryPolicy;
use values::{Lookup, number_or, payload_pointer, positive, positive_or, required};

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
    /// Most Invokes in flight at once for one tenant (`ROUTER_MAX_IN_FLIGHT_PER_TENANT`).
    pub max_in_flight_per_tenant: usize,
    /// The tenant registry, if any (`ROUTER_TENANT_REGISTRY_TABLE`).
    pub registry: Option<RegistrySettings>,
    /// Queue receiving rejected records.
    pub quarantine_queue_url: Option<String>,
    /// Bucket keeping rejected records too large for a quarantine message.
    pub quarantine_bucket: Option<String>,
    /// `ROUTER_QUARANTINE_MAX_MESSAGE_BYTES`: the quarantine queue's largest message; when
    /// absent it is read from the queue at start (`backend::message_limit`).
    pub quarantine_max_message_bytes: Option<usize>,
    /// Delivery mode.
    pub delivery: Delivery,
    /// The invocation type, per source (`ROUTER_INVOCATION_TYPE`).
    pub invocation: InvocationTypes,
    /// `ROUTER_BATCH_MAX_BYTES` as given: most bytes in one envelope batch (`tenant-batch`);
    /// [`Config::batch_max_bytes`] caps it at each invocation type's payload limit.
    pub batch_max_bytes_setting: Option<usize>,
    /// Most bytes of open envelope batches held at once (`tenant-batch`); past it the largest
    /// is sent early.
    pub batch_hold_bytes: usize,
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
        let backend_function = required(
            &get,
            "ROUTER_BACKEND_FUNCTION",
            ": the name or ARN of the tenant-isolated backend function",
        )?;
        let identity = identity::read(&get)?;
        let invocation = invocation::read(&get)?;
        let (delivery, batch_max_bytes_setting) = delivery(&get, &invocation)?;
        let max_record_age = get("ROUTER_MAX_RECORD_AGE_SECONDS")
            .map(|v| positive::<u64>("ROUTER_MAX_RECORD_AGE_SECONDS", &v))
            .transpose()?
            .map(Duration::from_secs);
        let max_in_flight = positive_or(&get, "ROUTER_MAX_IN_FLIGHT", 64usize)?;
        let correlation_id_pointer = match get("ROUTER_CORRELATION_ID_FROM") {
            None => "/correlationId".to_owned(),
            Some(v) => payload_pointer(&v).map_err(|problem| ConfigError {
                variable: "ROUTER_CORRELATION_ID_FROM",
                problem,
            })?,
        };
        Ok(Config {
            backend_function,
            tenant_from: identity.tenant_from,
            token_from: identity.token_from,
            validation: identity.validation,
            jwt: identity.jwt,
            trusted_tenants: identity.trusted_tenants,
            max_record_age,
            max_in_flight,
            max_in_flight_per_tenant: tenants::max_in_flight_per_tenant(&get, max_in_flight)?,
            registry: tenants::registry(&get)?,
            quarantine_queue_url: quarantine_queue_url(&get)?,
            quarantine_bucket: quarantine_bucket(&get)?,
            quarantine_max_message_bytes: quarantine_max_message_bytes(&get)?,
            delivery,
            invocation,
            batch_max_bytes_setting,
            batch_hold_bytes: positive_or(
                &get,
                "ROUTER_BATCH_HOLD_BYTES",
                DEFAULT_BATCH_HOLD_BYTES,
            )?,
            retry: retry_policy(&get)?,
            deadline_margin: Duration::from_millis(number_or(
                &get,
                "ROUTER_DEADLINE_MARGIN_MS",
                500,
            )?),
            invoke_timeout: Duration::from_millis(positive_or(
                &get,
                "ROUTER_INVOKE_TIMEOUT_MS",
                5_000,
            )?),
            correlation_id_pointer,
            metrics_namespace: get("ROUTER_METRICS_NAMESPACE")
                .unwrap_or_else(|| "TenantRouter".to_owned()),
        })
    }
}

impl Config {
    /// Most bytes in one envelope batch sent with `invocation`: `ROUTER_BATCH_MAX_BYTES`, at most
    /// that invocation type's payload limit (its default).
    pub fn batch_max_bytes(&self, invocation: InvocationType) -> usize {
        let limit = invocation.payload_limit();
        self.batch_max_bytes_setting.map_or(limit, |n| n.min(limit))
    }
}

/// Default of `ROUTER_BATCH_HOLD_BYTES` (1 MiB): one full chunk. Each held byte costs about
/// three in memory while chunks are sent (the chunk, the SDK's copy of the request body, the
/// HTTP buffers), so this keeps a 10,000-record batch of 100 tenants at the memory of `record`
/// mode (BENCHMARKS.md, memory); a larger value trades memory for fewer Invokes when one event
/// carries many tenants.
pub const DEFAULT_BATCH_HOLD_BYTES: usize = 1024 * 1024;

/// `ROUTER_DELIVERY` and `ROUTER_BATCH_MAX_BYTES`: at most the largest payload limit of the
/// invocation types in use (1 MB async, 6 MB sync); with mixed types, the `event` sources' batches
/// stay within the async limit ([`Config::batch_max_bytes`]).
fn delivery(
    get: &impl Lookup,
    invocation: &InvocationTypes,
) -> Result<(Delivery, Option<usize>), ConfigError> {
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
    let Some(text) = get("ROUTER_BATCH_MAX_BYTES") else {
        return Ok((delivery, None));
    };
    let batch_max_bytes: usize = positive("ROUTER_BATCH_MAX_BYTES", &text)?;
    let largest = invocation
        .values()
        .map(InvocationType::payload_limit)
        .max()
        .expect("at least the default");
    if batch_max_bytes > largest {
        let what = if largest == shared::ASYNC_PAYLOAD_LIMIT {
            "the async Invoke payload limit (every source uses event)"
        } else {
            "the sync Invoke payload limit"
        };
        return Err(ConfigError {
            variable: "ROUTER_BATCH_MAX_BYTES",
            problem: format!("{batch_max_bytes} is above {what} of {largest} bytes"),
        });
    }
    Ok((delivery, Some(batch_max_bytes)))
}

/// `ROUTER_RETRY_MAX_ATTEMPTS` (at least 1: the first attempt counts), and the backoff's base and
/// maximum delays (the base no larger than the maximum).
fn retry_policy(get: &impl Lookup) -> Result<RetryPolicy, ConfigError> {
    let max_attempts = number_or(get, "ROUTER_RETRY_MAX_ATTEMPTS", 5u32)?;
    if max_attempts == 0 {
        return Err(ConfigError {
            variable: "ROUTER_RETRY_MAX_ATTEMPTS",
            problem: "must be at least 1 (it counts the first attempt)".into(),
        });
    }
    let base_delay = Duration::from_millis(number_or(get, "ROUTER_RETRY_BASE_DELAY_MS", 50)?);
    let max_delay = Duration::from_millis(number_or(get, "ROUTER_RETRY_MAX_DELAY_MS", 2_000)?);
    if base_delay > max_delay {
        return Err(ConfigError {
            variable: "ROUTER_RETRY_BASE_DELAY_MS",
            problem: format!(
                "{} ms is above ROUTER_RETRY_MAX_DELAY_MS ({} ms)",
                base_delay.as_millis(),
                max_delay.as_millis()
            ),
        });
    }
    Ok(RetryPolicy {
        max_attempts,
        base_delay,
        max_delay,
    })
}

/// `ROUTER_QUARANTINE_QUEUE_URL`: an SQS queue URL over HTTPS, or plain HTTP to a loopback host
/// (the same rule as the JWKS URL, `shared::endpoint`).
fn quarantine_queue_url(get: &impl Lookup) -> Result<Option<String>, ConfigError> {
    let Some(url) = get("ROUTER_QUARANTINE_QUEUE_URL") else {
        return Ok(None);
    };
    if !shared::endpoint::is_allowed(&url) {
        return Err(ConfigError {
            variable: "ROUTER_QUARANTINE_QUEUE_URL",
            problem: format!(
                "expected an https:// SQS queue URL (http:// only to a loopback host), got {url:?}"
            ),
        });
    }
    Ok(Some(url.trim().to_owned()))
}

/// `ROUTER_QUARANTINE_MAX_MESSAGE_BYTES`: what an SQS queue's `MaximumMessageSize` may be,
/// 1,024 to 1,048,576 bytes, only with a quarantine queue.
fn quarantine_max_message_bytes(get: &impl Lookup) -> Result<Option<usize>, ConfigError> {
    const VARIABLE: &str = "ROUTER_QUARANTINE_MAX_MESSAGE_BYTES";
    let Some(text) = get(VARIABLE) else {
        return Ok(None);
    };
    let problem = |problem: String| ConfigError {
        variable: VARIABLE,
        problem,
    };
    let bytes = text
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1024..=shared::SQS_MESSAGE_LIMIT).contains(n))
        .ok_or_else(|| {
            problem(format!(
                "expected an SQS MaximumMessageSize, 1024 to 1048576 bytes, got {text:?}"
            ))
        })?;
    if get("ROUTER_QUARANTINE_QUEUE_URL").is_none() {
        return Err(problem(
            "needs ROUTER_QUARANTINE_QUEUE_URL: it is that queue's message limit".into(),
        ));
    }
    Ok(Some(bytes))
}

/// `ROUTER_QUARANTINE_BUCKET`: an S3 bucket name (3–63 lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit), only with a quarantine queue, whose messages
/// point into it.
fn quarantine_bucket(get: &impl Lookup) -> Result<Option<String>, ConfigError> {
    let Some(bucket) = get("ROUTER_QUARANTINE_BUCKET") else {
        return Ok(None);
    };
    let bucket = bucket.trim().to_owned();
    let problem = |problem: String| ConfigError {
        variable: "ROUTER_QUARANTINE_BUCKET",
        problem,
    };
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(bucket.chars().next())
        && edge(bucket.chars().last());
    if !valid {
        return Err(problem(format!("{bucket:?} is not an S3 bucket name")));
    }
    if get("ROUTER_QUARANTINE_QUEUE_URL").is_none() {
        return Err(problem(
            "needs ROUTER_QUARANTINE_QUEUE_URL: the bucket holds records whose quarantine \
             message points to them"
                .into(),
        ));
    }
    Ok(Some(bucket))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use shared::Source;

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
        assert_eq!(c.batch_max_bytes(InvocationType::Event), 262_144);
        assert_eq!(c.batch_max_bytes(InvocationType::RequestResponse), 262_144);
        assert_eq!(c.batch_hold_bytes, DEFAULT_BATCH_HOLD_BYTES);
        let c = config(&with(&[("ROUTER_BATCH_HOLD_BYTES", "8388608")])).unwrap();
        assert_eq!(c.batch_hold_bytes, 8 * 1024 * 1024);
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
        assert_eq!(
            c.batch_max_bytes(InvocationType::Event),
            shared::ASYNC_PAYLOAD_LIMIT
        );
        assert_eq!(
            c.batch_max_bytes(InvocationType::RequestResponse),
            shared::SYNC_PAYLOAD_LIMIT
        );
        assert_eq!(
            c.invocation.for_batch(Source::Sqs, true),
            InvocationType::Event
        );
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
            (
                "ROUTER_QUARANTINE_QUEUE_URL",
                "http://sqs.us-east-1.amazonaws.com/123456789012/q",
            ),
            (
                "ROUTER_QUARANTINE_QUEUE_URL",
                "http://localhost@evil.example/q",
            ),
            ("ROUTER_RETRY_MAX_ATTEMPTS", "0"),
            ("ROUTER_RETRY_BASE_DELAY_MS", "3000"),
            ("ROUTER_DELIVERY", "bulk"),
            ("ROUTER_BATCH_MAX_BYTES", "0"),
            ("ROUTER_BATCH_MAX_BYTES", "1048577"),
            ("ROUTER_BATCH_HOLD_BYTES", "0"),
            ("ROUTER_BATCH_HOLD_BYTES", "lots"),
            ("ROUTER_INVOKE_TIMEOUT_MS", "0"),
            ("ROUTER_JWT_MAX_TOKEN_BYTES", "0"),
            ("ROUTER_JWT_ISSUER", " , "),
            ("ROUTER_JWT_AUDIENCE", ","),
            ("ROUTER_JWT_ALGORITHMS", "HS256"),
            ("ROUTER_JWT_ALGORITHMS", "none"),
            ("ROUTER_JWT_ALGORITHMS", "ES256,rs256"),
            ("ROUTER_JWT_ALGORITHMS", " , "),
            ("ROUTER_QUARANTINE_BUCKET", "quarantine-bucket"),
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
    fn retry_and_quarantine_rules() {
        let c = config(&with(&[
            ("ROUTER_RETRY_MAX_ATTEMPTS", "1"),
            ("ROUTER_RETRY_BASE_DELAY_MS", "100"),
            ("ROUTER_RETRY_MAX_DELAY_MS", "100"),
            (
                "ROUTER_QUARANTINE_QUEUE_URL",
                "http://127.0.0.1:4566/000000000000/q",
            ),
        ]))
        .unwrap();
        assert_eq!(c.retry.max_attempts, 1);
        assert_eq!(c.retry.base_delay, c.retry.max_delay);
        assert!(c.quarantine_queue_url.is_some());
        let queue = (
            "ROUTER_QUARANTINE_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        );
        let c = config(&with(&[
            queue,
            ("ROUTER_QUARANTINE_BUCKET", "tenant-router.q-1"),
        ]))
        .unwrap();
        assert_eq!(c.quarantine_bucket.as_deref(), Some("tenant-router.q-1"));
        for bad in [
            "Upper",
            "ab",
            "-edge",
            "edge-",
            "under_score",
            "s3://bucket",
        ] {
            let err = config(&with(&[queue, ("ROUTER_QUARANTINE_BUCKET", bad)])).unwrap_err();
            assert_eq!(err.variable, "ROUTER_QUARANTINE_BUCKET", "{bad}");
        }
        let err = config(&with(&[("ROUTER_RETRY_MAX_ATTEMPTS", "0")])).unwrap_err();
        assert!(err.problem.contains("at least 1"), "{err}");
        let err = config(&with(&[
            ("ROUTER_RETRY_BASE_DELAY_MS", "500"),
            ("ROUTER_RETRY_MAX_DELAY_MS", "100"),
        ]))
        .unwrap_err();
        assert!(err.problem.contains("ROUTER_RETRY_MAX_DELAY_MS"), "{err}");
        let c = config(&with(&[(
            "ROUTER_QUARANTINE_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        )]))
        .unwrap();
        assert!(c.quarantine_queue_url.is_some());
    }

    #[test]
    fn accepted_algorithms() {
        let c = config(JWT).unwrap();
        assert_eq!(
            c.jwt.unwrap().key_store.accepted,
            shared::jwks::ASYMMETRIC_ALGORITHMS
        );
        let c = config(&with(&[("ROUTER_JWT_ALGORITHMS", "ES256, PS256,ES256")])).unwrap();
        use shared::jwks::Algorithm;
        assert_eq!(
            c.jwt.unwrap().key_store.accepted,
            [Algorithm::ES256, Algorithm::PS256]
        );
    }

    #[test]
    fn invocation_types_per_source_and_for_fifo_queues() {
        let c = config(&with(&[(
            "ROUTER_INVOCATION_TYPE",
            "event; sqs-fifo=request-response; kinesis=request-response",
        )]))
        .unwrap();
        let of = |source, fifo| c.invocation.for_batch(source, fifo);
        assert_eq!(of(Source::Sqs, false), InvocationType::Event);
        assert_eq!(of(Source::Sqs, true), InvocationType::RequestResponse);
        assert_eq!(of(Source::Kinesis, false), InvocationType::RequestResponse);
        assert_eq!(of(Source::Dynamodb, false), InvocationType::Event);
        // `sqs` covers FIFO queues unless `sqs-fifo` says otherwise.
        let c = config(&with(&[("ROUTER_INVOCATION_TYPE", "sqs=request-response")])).unwrap();
        assert_eq!(
            c.invocation.for_batch(Source::Sqs, true),
            InvocationType::RequestResponse
        );
        let c = config(&with(&[(
            "ROUTER_INVOCATION_TYPE",
            "request-response;sqs-fifo=event",
        )]))
        .unwrap();
        assert_eq!(
            c.invocation.for_batch(Source::Sqs, true),
            InvocationType::Event
        );
        assert_eq!(
            c.invocation.for_batch(Source::Sqs, false),
            InvocationType::RequestResponse
        );
        // The batch limit follows the invocation type in use: 6 MB only with request-response,
        // and the event sources' batches stay within 1 MB.
        let c = config(&with(&[
            ("ROUTER_INVOCATION_TYPE", "event;kinesis=request-response"),
            ("ROUTER_BATCH_MAX_BYTES", "4194304"),
        ]))
        .unwrap();
        assert_eq!(
            c.batch_max_bytes(InvocationType::RequestResponse),
            4_194_304
        );
        assert_eq!(
            c.batch_max_bytes(InvocationType::Event),
            shared::ASYNC_PAYLOAD_LIMIT
        );
        for (types, bytes) in [("event", "4194304"), ("request-response", "6291457")] {
            let err = config(&with(&[
                ("ROUTER_INVOCATION_TYPE", types),
                ("ROUTER_BATCH_MAX_BYTES", bytes),
            ]))
            .unwrap_err();
            assert_eq!(err.variable, "ROUTER_BATCH_MAX_BYTES", "{types}");
        }
        for bad in [
            "sync",
            "sqs-fifo=async",
            "sqs-fifo=event;sqs-fifo=event",
            "kinesis-fifo=event",
        ] {
            let err = config(&with(&[("ROUTER_INVOCATION_TYPE", bad)])).unwrap_err();
            assert_eq!(err.variable, "ROUTER_INVOCATION_TYPE", "{bad}");
        }
    }

    #[test]
    fn issuer_and_audience_lists() {
        let c = config(&with(&[("ROUTER_JWT_AUDIENCE", "a, b")])).unwrap();
        let jwt = c.jwt.unwrap();
        assert_eq!(jwt.policy.audiences, vec!["a", "b"]);
    }
}
